"""Cross-stitch networks: per-task columns mixed after every layer by learned alpha matrices.

Misra et al. (2016), "Cross-stitch Networks for Multi-task Learning", CVPR; in NLP, sluice
networks, Ruder et al. (2019), "Latent Multi-task Architecture Learning", AAAI.  Each task has
its own column (a copy of the top ``top_k_layers`` layers, all by default; embeddings and any
lower layers are shared, see :mod:`taskgraph.models.sharing.columns`).  After layer l, the
hidden states of the T columns are mixed by a learned T x T matrix:

    h_t^l  <-  sum_s alpha^l[t, s] * h_s^l

so the network learns how much information flows between the task-specific models; alpha =
identity gives independent columns, alpha = uniform gives hard sharing.  alpha starts near the
identity: ``alpha_self`` on the diagonal (default 0.9, Misra et al.'s best initialisation) and
``(1 - alpha_self) / (T - 1)`` elsewhere.  What is implemented is the layer-level cross-stitch
unit (sluice networks' alpha without their subspace split and without their beta layer mixing).

Every task's output depends on every column through the alphas, so all encoder parameters and
the alphas are shared parameters; a forward pass for one task runs all T columns (T times the
compute of the copied layers: lower ``top_k_layers`` to trade accuracy for speed).

**Learning rate of the alphas.**  Misra et al. ("Design decisions for cross-stitching":
initialization and learning rates) train the cross-stitch units at 10^2 to 10^3 times the
learning rate of the base network.  Here too the units would hardly move otherwise: under a
fine-tuning rate (5e-5) an AdamW step moves an alpha by at most about ``lr``, 0.01 in 200 steps.
So the alphas train at ``ALPHA_LR_SCALE`` = 100 times the run's rate (the low end of the paper's
range: AdamW's steps, unlike the paper's SGD ones, do not shrink with small gradients), under
the same warmup and decay, and without weight decay (which would pull the mix towards zero
rather than towards either sharing extreme); see :meth:`CrossStitchSharing.learning_rate_scales`.

**A single task** (a baseline trial that drew this architecture) has nothing to mix: its 1 x 1
alphas are fixed at 1 (buffers, not parameters), since a trainable one would be a free output
scale per layer, trained at 100 times the rate without decay, and the model would not be the
plain one a baseline should be.  They keep the state-dict keys (``alphas.0``, ...).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from taskgraph.errors import ConfigError
from taskgraph.models.encoders import EncoderBundle
from taskgraph.models.heads import Batch, HeadSpec
from taskgraph.models.sharing.columns import ColumnSharing

__all__ = ["CrossStitchSharing", "initial_alpha"]


def initial_alpha(num_tasks: int, alpha_self: float) -> Tensor:
    """Return the T x T starting mix: ``alpha_self`` on the diagonal, the rest spread evenly."""
    if num_tasks == 1:
        return torch.ones(1, 1)
    off = (1.0 - alpha_self) / (num_tasks - 1)
    return torch.full((num_tasks, num_tasks), off).fill_diagonal_(alpha_self)


class _FixedAlphas(nn.Module):
    """The alphas of a single-task model: ``count`` 1 x 1 ones, held as buffers."""

    def __init__(self, count: int) -> None:
        super().__init__()
        for index in range(count):
            self.register_buffer(str(index), torch.ones(1, 1))

    def __len__(self) -> int:
        return len(self._buffers)

    def __iter__(self) -> Iterator[Tensor]:
        return self.buffers(recurse=False)


class CrossStitchSharing(ColumnSharing):
    """Per-task columns of the top layers, mixed after each layer by learned alpha matrices."""

    name = "cross_stitch"
    PARAMS: ClassVar[dict[str, Any]] = {"top_k_layers": None, "alpha_self": 0.9}
    #: the alphas' learning rate over the run's (Misra et al. 2016: 10^2 to 10^3)
    ALPHA_LR_SCALE: ClassVar[float] = 100.0

    @classmethod
    def search_space(cls, *, num_layers: int = 6) -> dict[str, dict[str, Any]]:
        """Return the number of stitched top layers and the initial self weight of alpha."""
        return {
            "top_k_layers": {"type": "int", "low": 1, "high": num_layers},
            "alpha_self": {"type": "float", "low": 0.5, "high": 0.95},
        }

    @classmethod
    def resolve_params(
        cls, params: Mapping[str, Any], *, specs: Sequence[HeadSpec], num_layers: int
    ) -> dict[str, Any]:
        """Return the parameters; ``alpha_self`` must lie in (0, 1)."""
        resolved = super().resolve_params(params, specs=specs, num_layers=num_layers)
        value = resolved["alpha_self"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
            raise ConfigError(
                f"sharing architecture 'cross_stitch': alpha_self must be in (0, 1), but got {value!r}"
            )
        resolved["alpha_self"] = float(value)
        return resolved

    def build_trunk(self, encoder: EncoderBundle) -> None:
        """Build the columns and one alpha matrix per copied layer (fixed for a single task)."""
        super().build_trunk(encoder)
        count = int(self.params["top_k_layers"])
        self.alphas: nn.ParameterList | _FixedAlphas
        if len(self.specs) == 1:
            self.alphas = _FixedAlphas(count)
        else:
            start = initial_alpha(len(self.specs), float(self.params["alpha_self"]))
            self.alphas = nn.ParameterList(nn.Parameter(start.clone()) for _ in range(count))
        self.task_index = {task: index for index, task in enumerate(self.specs)}

    def encode(self, task: str, batch: Batch) -> Tensor:
        """Return ``task``'s column output after the last cross-stitch mix."""
        hidden, bias = self.encode_shared(batch)
        columns = [self.column(name) for name in self.specs]
        states = [hidden] * len(columns)
        last = len(self.alphas) - 1
        for depth, alpha in enumerate(self.alphas):
            outputs = torch.stack(
                [column[depth](state, bias) for column, state in zip(columns, states, strict=True)]
            )
            mix = alpha.to(outputs.dtype)
            if depth == last:  # only this task's row of the final mix is needed
                return torch.einsum("s,sblh->blh", mix[self.task_index[task]], outputs)
            states = list(torch.einsum("ts,sblh->tblh", mix, outputs).unbind(0))
        raise AssertionError("unreachable: top_k_layers >= 1")  # pragma: no cover

    def trunk_parameters(self, task: str) -> Iterable[nn.Parameter]:
        """Yield everything in the trunk: every column feeds every task through alpha."""
        yield from self.shared_trunk_parameters()
        yield from self.columns.parameters()
        yield from self.alphas.parameters()

    def learning_rate_scales(self) -> dict[nn.Parameter, float]:
        """Return every alpha with :attr:`ALPHA_LR_SCALE`: the units train at a higher rate.

        Empty for a single task, whose alphas are fixed.
        """
        return {alpha: self.ALPHA_LR_SCALE for alpha in self.alphas.parameters()}
