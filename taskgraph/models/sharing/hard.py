"""Hard parameter sharing: one encoder for all tasks, one head per task.

Caruana (1997), "Multitask Learning", Machine Learning 28; the standard multi-task baseline
(Ruder 2017, "An Overview of Multi-Task Learning in Deep Neural Networks").  Every encoder
parameter is shared by all tasks; only the heads are task-specific.  The encoder is called as
one Hugging Face module, so this architecture works with any encoder ``AutoModel`` loads and
costs nothing over a plain single-model training loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from torch import Tensor, nn

from taskgraph.models.encoders import EncoderBundle
from taskgraph.models.frozen import FROZEN_KEY, run_prefix, run_top
from taskgraph.models.heads import Batch
from taskgraph.models.sharing.base import MultiTaskModel

__all__ = ["ENCODER_INPUTS", "HardSharing"]

# Passed only when present: not every encoder accepts token_type_ids (DistilBERT does not).
ENCODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class HardSharing(MultiTaskModel):
    """One shared encoder (``self.encoder``, the Hugging Face model) and a head per task."""

    name = "hard"

    def build_trunk(self, encoder: EncoderBundle) -> None:
        """Use the encoder model as the single shared trunk."""
        self.encoder = encoder.model

    def encode(self, task: str, batch: Batch) -> Tensor:
        """Return the encoder's last hidden states; the same for every task."""
        if FROZEN_KEY in batch:
            # The frozen bottom layers' output was computed once (taskgraph.models.frozen).
            return run_top(self, batch, architecture=self.name)
        if getattr(self, "frozen_layers", 0):
            # No stored output (masked LM is re-masked every step): run the frozen layers now,
            # without dropout, as they run for the stored outputs.
            prefix = run_prefix(self, batch, architecture=self.name)
            return run_top(self, {**batch, FROZEN_KEY: prefix}, architecture=self.name)
        inputs = {key: batch[key] for key in ENCODER_INPUTS if key in batch}
        output = self.encoder(**inputs)
        return cast(Tensor, output.last_hidden_state)

    def trunk_parameters(self, task: str) -> Iterable[nn.Parameter]:
        """Yield every encoder parameter: all of them serve every task."""
        return self.encoder.parameters()

    def word_embeddings(self) -> nn.Embedding:
        """Return the encoder's input embeddings."""
        return cast(nn.Embedding, self.encoder.get_input_embeddings())
