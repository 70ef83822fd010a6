"""Hierarchical sharing: each task reads the encoder layer chosen for it.

Søgaard and Goldberg (2016), "Deep multi-task learning with low level tasks supervised at lower
layers", ACL; Hashimoto et al. (2017), "A Joint Many-Task Model: Growing a Neural Network for
Multiple NLP Tasks", EMNLP.  Low-level tasks (POS tagging, chunking) are supervised at lower
layers and higher-level ones (parsing, then sentence tasks) higher up, so the lower layers are
shaped by all tasks and the upper layers only by the tasks that read them.

Layer choice (1-based; layer k is the output of the k-th transformer layer):

* ``tagging_layer`` for token-tagging tasks, default ``ceil(N / 2)`` for an N-layer encoder;
* ``parsing_layer`` for dependency parsing, default ``ceil(2N / 3)``;
* sentence(-pair) classification, extractive QA and masked LM read the top layer;
* ``layer:<task>`` sets one task's layer explicitly and wins over the rules above.

These are the searchable parameters (:meth:`HierarchicalSharing.search_space`).  A value above
the encoder's depth means its top layer, so one search space serves encoders of any depth.
The encoder is run layer by layer only as far as the task needs, so a task reading layer 2 of
6 pays for 2 layers.  Parameters of layers only one task reads count as that task's own
(:meth:`~taskgraph.models.sharing.base.MultiTaskModel.task_parameters`); layers above every
task's choice are used by none.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, cast

from torch import Tensor, nn

from taskgraph.errors import ConfigError
from taskgraph.models.encoders import EncoderBundle
from taskgraph.models.heads import Batch, HeadSpec
from taskgraph.models.layerwise import attention_bias, embed, run_layers, split_encoder
from taskgraph.models.sharing.base import MultiTaskModel, check_param_names
from taskgraph.tasks.types import TaskType

__all__ = ["HierarchicalSharing", "default_layer"]

TASK_LAYER_PREFIX = "layer:"


def default_layer(task_type: TaskType, num_layers: int) -> int:
    """Return the layer a task of ``task_type`` reads when nothing is configured."""
    if task_type is TaskType.TOKEN_TAGGING:
        return max(1, math.ceil(num_layers / 2))
    if task_type is TaskType.DEPENDENCY_PARSING:
        return max(1, math.ceil(2 * num_layers / 3))
    return num_layers


class HierarchicalSharing(MultiTaskModel):
    """One encoder; task t's head reads the output of layer ``layer_of[t]``."""

    name = "hierarchical"
    PARAMS: ClassVar[dict[str, Any]] = {"tagging_layer": None, "parsing_layer": None}

    @classmethod
    def search_space(cls, *, num_layers: int = 6) -> dict[str, dict[str, Any]]:
        """Return the layer read by tagging tasks and by parsing tasks, each 1..num_layers."""
        return {
            "tagging_layer": {"type": "int", "low": 1, "high": num_layers},
            "parsing_layer": {"type": "int", "low": 1, "high": num_layers},
        }

    @classmethod
    def allowed_params(cls, specs: Sequence[HeadSpec]) -> list[str]:
        """Return ``tagging_layer``, ``parsing_layer`` and ``layer:<task>`` for each task."""
        return [*cls.PARAMS, *(TASK_LAYER_PREFIX + spec.task for spec in specs)]

    @classmethod
    def resolve_params(
        cls, params: Mapping[str, Any], *, specs: Sequence[HeadSpec], num_layers: int
    ) -> dict[str, Any]:
        """Return the parameters with every task's layer resolved under ``layer:<task>``."""
        check_param_names(cls.name, params, allowed=cls.allowed_params(specs))
        resolved: dict[str, Any] = {**cls.PARAMS, **params}
        for key, value in list(resolved.items()):
            if value is not None:
                resolved[key] = _layer_value(key, value, num_layers)
        by_type = {
            TaskType.TOKEN_TAGGING: resolved["tagging_layer"],
            TaskType.DEPENDENCY_PARSING: resolved["parsing_layer"],
        }
        for spec in specs:
            key = TASK_LAYER_PREFIX + spec.task
            if resolved.get(key) is None:
                chosen = by_type.get(spec.type)
                resolved[key] = (
                    chosen if chosen is not None else default_layer(spec.type, num_layers)
                )
        return resolved

    def build_trunk(self, encoder: EncoderBundle) -> None:
        """Keep the encoder whole (same state-dict keys as hard sharing), run it layer by layer."""
        split_encoder(encoder.model, architecture=self.name)  # fails early if not BERT-like
        self.encoder = encoder.model
        self.layer_of = {task: int(self.params[TASK_LAYER_PREFIX + task]) for task in self.specs}

    def encode(self, task: str, batch: Batch) -> Tensor:
        """Return the output of the layer chosen for ``task`` (higher layers are not run)."""
        parts = split_encoder(self.encoder, architecture=self.name)
        hidden = embed(parts.embeddings, batch)
        bias = attention_bias(parts.config, hidden, batch.get("attention_mask"))
        return run_layers(parts.layers[: self.layer_of[task]], hidden, bias)

    def trunk_parameters(self, task: str) -> Iterable[nn.Parameter]:
        """Yield the embeddings and the layers up to ``task``'s layer."""
        parts = split_encoder(self.encoder, architecture=self.name)
        yield from parts.embeddings.parameters()
        for layer in parts.layers[: self.layer_of[task]]:
            yield from layer.parameters()

    def word_embeddings(self) -> nn.Embedding:
        """Return the encoder's input embeddings."""
        return cast(nn.Embedding, self.encoder.get_input_embeddings())


def _layer_value(key: str, value: Any, num_layers: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(
            f"sharing architecture 'hierarchical': {key} must be a layer number >= 1, but got {value!r}"
        )
    return min(int(value), num_layers)
