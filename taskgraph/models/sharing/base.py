"""The base class of every sharing architecture: an encoder trunk and one head per task.

Each task has its own dataset, so a model is called with one task's batch at a time:
``model(task, batch)`` encodes the batch the way the architecture routes that task and hands
the hidden states to the task's head.  Which parameters a task's forward pass uses is the
architecture's business (:meth:`MultiTaskModel.trunk_parameters`); from it the base class
derives :meth:`~MultiTaskModel.shared_parameters` (used by two or more tasks: what PCGrad and
lookahead affinity operate on) and :meth:`~MultiTaskModel.task_parameters` (used by that task
alone).  A contract test checks these sets against the gradients each task really produces.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from taskgraph.errors import ConfigError
from taskgraph.models.encoders import EncoderBundle
from taskgraph.models.heads import Batch, HeadOutput, HeadSpec, TaskHead, build_head

__all__ = ["MultiTaskModel", "module_key"]


def module_key(task: str) -> str:
    """Return ``task`` as a valid submodule name (``nn.ModuleDict`` keys may not hold dots)."""
    return task.replace(".", ":")


class MultiTaskModel(nn.Module):
    """A shared encoder trunk, routed per task, with one head per task.

    Subclasses set ``name``, ``PARAMS`` (parameter -> default) and implement :meth:`encode`,
    :meth:`trunk_parameters` and :meth:`word_embeddings`; they may override
    :meth:`regularization_loss`, :meth:`learning_rate_scales`, :meth:`make_head` and
    :meth:`search_space`.
    """

    name: ClassVar[str] = ""
    #: the architecture's own parameters and their defaults (``None``: derived from the encoder)
    PARAMS: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        *,
        encoder: EncoderBundle,
        heads: Sequence[HeadSpec],
        params: Mapping[str, Any] | None = None,
    ) -> None:
        """Build the trunk from ``encoder`` (its modules are used, not copied) and the heads."""
        super().__init__()
        specs = list(heads)
        check_head_specs(specs)
        self.specs: dict[str, HeadSpec] = {spec.task: spec for spec in specs}
        self.encoder_name = encoder.name
        self.hidden_size = encoder.hidden_size
        self.num_layers = encoder.num_layers
        self.layer_norm_eps = float(getattr(encoder.model.config, "layer_norm_eps", 1e-12))
        self.params: dict[str, Any] = self.resolve_params(
            params or {}, specs=specs, num_layers=encoder.num_layers
        )
        self.build_trunk(encoder)
        self.heads = nn.ModuleDict({module_key(spec.task): self.make_head(spec) for spec in specs})

    # -- what subclasses provide ---------------------------------------------------------------

    def build_trunk(self, encoder: EncoderBundle) -> None:  # pragma: no cover - abstract
        """Create the encoder modules (called before the heads are built)."""
        raise NotImplementedError

    def encode(self, task: str, batch: Batch) -> Tensor:  # pragma: no cover - abstract
        """Return the hidden states (B, L, H) the head of ``task`` reads."""
        raise NotImplementedError

    def trunk_parameters(self, task: str) -> Iterable[nn.Parameter]:  # pragma: no cover - abstract
        """Yield the non-head parameters that ``task``'s forward pass uses."""
        raise NotImplementedError

    def word_embeddings(self) -> nn.Embedding:  # pragma: no cover - abstract
        """Return the input word embeddings (the masked-LM head ties its output to them)."""
        raise NotImplementedError

    def make_head(self, spec: HeadSpec) -> TaskHead:
        """Return the head for ``spec`` (label embedding sharing overrides this)."""
        return build_head(
            spec,
            hidden_size=self.hidden_size,
            word_embeddings=self.word_embeddings(),
            layer_norm_eps=self.layer_norm_eps,
        )

    @classmethod
    def search_space(cls, *, num_layers: int = 6) -> dict[str, dict[str, Any]]:
        """Return the architecture's searchable parameters as plain data (none by default).

        Each entry is ``{"type": "int"|"float"|"categorical", "low", "high", "log"}`` or
        ``{"type": "categorical", "choices": [...]}``.  ``num_layers`` is the encoder depth the
        ranges are written for: a study passes its encoder's (MiniLM's 6 when called without
        it).  A layer count above an encoder's depth, as a spec's own range may give, means
        its full depth.
        """
        return {}

    @classmethod
    def allowed_params(cls, specs: Sequence[HeadSpec]) -> list[str]:
        """Return the parameter names this architecture accepts for these tasks."""
        return list(cls.PARAMS)

    @classmethod
    def resolve_params(
        cls, params: Mapping[str, Any], *, specs: Sequence[HeadSpec], num_layers: int
    ) -> dict[str, Any]:
        """Return ``PARAMS`` updated with ``params``; an unknown key is a ConfigError."""
        check_param_names(cls.name, params, allowed=cls.allowed_params(specs))
        return {**cls.PARAMS, **params}

    # -- the public interface ------------------------------------------------------------------

    @property
    def tasks(self) -> list[str]:
        """Return the task names, in the order the heads were given."""
        return list(self.specs)

    def head(self, task: str) -> TaskHead:
        """Return the head of ``task``."""
        self._check_task(task)
        module = self.heads[module_key(task)]
        assert isinstance(module, TaskHead)
        return module

    def forward(self, task: str, batch: Batch) -> HeadOutput:
        """Return the head output of ``task`` on ``batch`` (with a loss when labels are given)."""
        head = self.head(task)
        return head(self.encode(task, batch), batch)

    def predict(self, task: str, batch: Batch, **decode_options: Any) -> list[Any]:
        """Return plain Python predictions for ``batch`` (eval mode, no gradients).

        Tagging: a list of tag ids per sentence; parsing: a ``ParsePrediction`` per sentence;
        QA: a ``QAPrediction`` per window; classification: a class id per example; masked LM: a
        list of token ids per sequence.  ``decode_options`` go to the head's ``decode`` (QA:
        ``top_k``, ``max_answer_length``).  The model's train/eval mode is restored afterwards.
        """
        head = self.head(task)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                output = head(self.encode(task, batch), batch)
                return head.decode(output, batch, **decode_options)
        finally:
            self.train(was_training)

    def regularization_loss(self) -> Tensor:
        """Return the architecture's own penalty to add to the training loss (0 by default)."""
        return self._zero()

    def learning_rate_scales(self) -> dict[nn.Parameter, float]:
        """Return {parameter: learning-rate multiplier} for parameters that need their own rate.

        Empty by default.  The optimizer gives each listed parameter the run's learning rate
        times its multiplier (under the same warmup and decay) and no weight decay; an
        architecture lists here what its paper trains at another rate (cross-stitch units).
        """
        return {}

    def parameters_used_by(self, task: str) -> list[nn.Parameter]:
        """Return every parameter ``task``'s forward pass uses (trunk and head), once each."""
        self._check_task(task)
        return _unique([*self.trunk_parameters(task), *self.head(task).parameters()])

    def shared_parameters(self) -> list[nn.Parameter]:
        """Return the parameters used by more than one task (empty for a single task)."""
        counts = self._usage_counts()
        return [p for p in self._all_parameters() if counts.get(id(p), 0) > 1]

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        """Return the parameters used by ``task`` and by no other task (its head, its copies)."""
        counts = self._usage_counts()
        return [p for p in self.parameters_used_by(task) if counts[id(p)] == 1]

    def encoder_parameters(self) -> list[nn.Parameter]:
        """Return every parameter outside the heads (for a separate encoder learning rate)."""
        in_heads = {id(p) for p in self.heads.parameters()}
        return [p for p in self._all_parameters() if id(p) not in in_heads]

    def head_parameters(self, task: str) -> list[nn.Parameter]:
        """Return the parameters of ``task``'s head (tied embeddings and shared label spaces included)."""
        return _unique(self.head(task).parameters())

    # -- helpers -------------------------------------------------------------------------------

    def _check_task(self, task: str) -> None:
        if task not in self.specs:
            raise ConfigError(f"unknown task {task!r}; this model has: {', '.join(self.specs)}")

    def _usage_counts(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for task in self.specs:
            for parameter in self.parameters_used_by(task):
                counts[id(parameter)] = counts.get(id(parameter), 0) + 1
        return counts

    def _all_parameters(self) -> list[nn.Parameter]:
        return list(self.parameters())  # nn.Module.parameters() already skips duplicates

    def _zero(self) -> Tensor:
        reference = next(self.parameters())
        return reference.new_zeros((), dtype=torch.float32)


def check_head_specs(specs: Sequence[HeadSpec]) -> None:
    """Raise ConfigError when ``specs`` is empty or names a task twice."""
    if not specs:
        raise ConfigError("a multi-task model needs at least one task head, but got none")
    seen: set[str] = set()
    for spec in specs:
        if not isinstance(spec, HeadSpec):
            raise ConfigError(f"heads must be HeadSpec objects, but got {type(spec).__name__}")
        key = module_key(spec.task)
        if key in seen:
            raise ConfigError(f"task {spec.task!r} is given more than once")
        seen.add(key)


def check_param_names(
    architecture: str, params: Mapping[str, Any], *, allowed: Iterable[str]
) -> None:
    """Raise ConfigError naming the first parameter ``architecture`` does not accept."""
    allowed = sorted(allowed)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        listed = ", ".join(allowed) or "(none)"
        raise ConfigError(
            f"sharing architecture {architecture!r}: unknown parameter {unknown[0]!r}; allowed: {listed}"
        )


def _unique(parameters: Iterable[nn.Parameter]) -> list[nn.Parameter]:
    seen: set[int] = set()
    result = []
    for parameter in parameters:
        if id(parameter) not in seen:
            seen.add(id(parameter))
            result.append(parameter)
    return result
