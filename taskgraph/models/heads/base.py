"""What every task head shares: its spec, its typed output and its interface.

A head turns the encoder's hidden states ``(B, L, H)`` and the task's batch into a
:class:`HeadOutput`: the loss (only when the batch carries the task's label keys, as in
transformers) and the raw scores.  ``decode`` turns such an output into plain Python
predictions for the metrics.  Heads never move tensors to a fixed device: every tensor they
create is made ``like`` an input, so a model follows ``.to(device)`` and bf16 autocast.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import Tensor, nn

from taskgraph.errors import ConfigError
from taskgraph.tasks.types import TaskType

__all__ = ["Batch", "HeadOutput", "HeadSpec", "TaskHead", "validate_options"]

Batch = Mapping[str, Tensor]


@dataclass(frozen=True)
class HeadSpec:
    """What head a task needs: its name, type, label count and head options.

    ``num_labels`` is the number of tags (tagging), classes (classification) or dependency
    relations (parsing); it is ignored for extractive QA and masked LM (the vocabulary comes
    from the encoder).  ``options`` are the head's own settings, e.g. ``{"crf": True}``; each
    head lists the ones it accepts in ``OPTIONS``.
    """

    task: str
    type: TaskType
    num_labels: int
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Accept the enum's value as well ("token_tagging"), as study specs are plain YAML.
        if not isinstance(self.type, TaskType):
            try:
                object.__setattr__(self, "type", TaskType(self.type))
            except ValueError:
                allowed = ", ".join(t.value for t in TaskType)
                raise ConfigError(
                    f"task {self.task!r}: unknown task type {self.type!r}; allowed: {allowed}"
                ) from None
        needs_labels = self.type not in (TaskType.EXTRACTIVE_QA, TaskType.MASKED_LM)
        if needs_labels and int(self.num_labels) < 1:
            raise ConfigError(
                f"task {self.task!r}: num_labels must be >= 1 for {self.type.value}, but got {self.num_labels}"
            )


@dataclass
class HeadOutput:
    """One head's output for one batch.

    ``loss`` is ``None`` unless the batch carried labels.  ``logits`` is the head's main score
    tensor, or a tuple of them (parsing: arc and label scores; QA: start and end logits).
    ``extra`` holds intermediate tensors that ``decode`` needs (e.g. the parser's label
    representations) or that callers may find useful (e.g. word positions).
    """

    loss: Tensor | None
    logits: Tensor | tuple[Tensor, ...]
    extra: dict[str, Tensor] = field(default_factory=dict)


class TaskHead(nn.Module):
    """Base class: ``forward(hidden, batch) -> HeadOutput`` and ``decode(output, batch)``."""

    #: option name -> default value; anything else in ``HeadSpec.options`` is an error.
    OPTIONS: ClassVar[dict[str, Any]] = {}
    #: the batch keys holding this head's labels; the loss is computed when they are present.
    LABEL_KEYS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, spec: HeadSpec) -> None:
        super().__init__()
        self.spec = spec
        self.options = validate_options(spec, type(self).OPTIONS)

    def has_labels(self, batch: Batch) -> bool:
        """Return whether ``batch`` carries every label key of this head."""
        return all(key in batch for key in self.LABEL_KEYS)

    def forward(self, hidden: Tensor, batch: Batch) -> HeadOutput:  # pragma: no cover - abstract
        """Return the head's output (with a loss when ``batch`` has labels)."""
        raise NotImplementedError

    def decode(self, output: HeadOutput, batch: Batch) -> list[Any]:  # pragma: no cover - abstract
        """Return one plain Python prediction per example of the batch."""
        raise NotImplementedError


def validate_options(spec: HeadSpec, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``defaults`` updated with ``spec.options``; unknown options are a ConfigError."""
    unknown = sorted(set(spec.options) - set(defaults))
    if unknown:
        allowed = ", ".join(sorted(defaults)) or "(none)"
        raise ConfigError(
            f"task {spec.task!r}: unknown {spec.type.value} head option(s) {', '.join(unknown)}; "
            f"allowed: {allowed}"
        )
    return {**defaults, **spec.options}
