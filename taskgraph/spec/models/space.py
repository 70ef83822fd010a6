"""The search space: what the sampler chooses per trial (``search:`` of a spec).

The auxiliary subset's constraints, task-level mixing, example-level data selection and the
searched training settings, each a :class:`~taskgraph.spec.domains.Domain` (fixed, categorical
or a range).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Discriminator, Field, Tag, field_validator, model_validator

from taskgraph.spec.domains import Domain, check_numbers
from taskgraph.spec.limits import (
    MAX_BATCH_SIZE,
    MAX_CAP_EXAMPLES,
    MAX_COUNT,
    MAX_EPOCHS,
    MAX_LEARNING_RATE,
    MAX_STEPS,
)
from taskgraph.spec.models.base import Count, _Strict
from taskgraph.spec.pretraining import PretrainingSpace

__all__ = ["AuxiliarySpace", "DataSelectionSpace", "MixingSpace", "SearchSpaceSpec"]


class AuxiliarySpace(_Strict):
    """Constraints on the auxiliary subset S \\ {target}: size bounds, always/never included."""

    min_size: Count = Field(default=0, ge=0, le=MAX_COUNT)
    max_size: Count | None = Field(default=None, ge=0, le=MAX_COUNT)
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> AuxiliarySpace:
        if self.max_size is not None and self.min_size > self.max_size:
            raise ValueError(f"min_size ({self.min_size}) must be <= max_size ({self.max_size})")
        both = sorted(set(self.include) & set(self.exclude))
        if both:
            raise ValueError(f"tasks both included and excluded: {', '.join(both)}")
        if self.max_size is not None and len(self.include) > self.max_size:
            raise ValueError(
                f"include lists {len(self.include)} tasks but max_size is {self.max_size}"
            )
        return self


def _domain_or_map(value: Any) -> str:
    # A mapping whose keys are all a domain's (`{low: 1, high: -1}`) is one domain, anything
    # else a mapping of names to domains: only that branch's error is reported (a plain union
    # read a reversed range as the names `low` and `high`).
    if isinstance(value, Mapping) and not isinstance(value, Domain):
        return "Domain" if value and set(value) <= set(Domain.model_fields) else "dict"
    return "Domain"


def _mixing_weight(domain: Domain) -> Domain:
    return check_numbers(domain, integer=False, low=0.0, high=1e6)


def _mixing_cap(domain: Domain) -> Domain:
    return check_numbers(domain, integer=True, low=1, high=MAX_CAP_EXAMPLES, allow_none=True)


def _selection_weight(domain: Domain) -> Domain:
    return check_numbers(domain, integer=False, low=-1e3, high=1e3)


# Each value is checked where it sits, so an error names the task or feature of a mapping
# (`search.mixing.weights.ud_tr_imst_upos: must be >= 0 ...`).
MixingWeight = Annotated[Domain, AfterValidator(_mixing_weight)]
MixingWeights = Annotated[
    Annotated[MixingWeight, Tag("Domain")] | Annotated[dict[str, MixingWeight], Tag("dict")],
    Discriminator(_domain_or_map),
]
MixingCap = Annotated[Domain, AfterValidator(_mixing_cap)]
MixingCaps = Annotated[
    Annotated[MixingCap, Tag("Domain")] | Annotated[dict[str, MixingCap], Tag("dict")],
    Discriminator(_domain_or_map),
]
SelectionWeight = Annotated[Domain, AfterValidator(_selection_weight)]
SelectionWeights = Annotated[
    Annotated[SelectionWeight, Tag("Domain")] | Annotated[dict[str, SelectionWeight], Tag("dict")],
    Discriminator(_domain_or_map),
]


class MixingSpace(_Strict):
    """Task-level data selection: sampling scheme, temperature, per-task weights and caps.

    ``weights`` and ``max_examples`` take one domain for every task, or a mapping from task
    name to domain where the key ``"*"`` stands for every task not named (for ``weights``,
    every auxiliary not named: the target keeps weight 1 unless named).
    """

    scheme: Domain = Domain(value="proportional")
    temperature: Domain = Domain(value=2.0)
    weights: MixingWeights = Domain(value=1.0)
    max_examples: MixingCaps | None = None

    @field_validator("temperature")
    @classmethod
    def _temperature(cls, value: Domain) -> Domain:
        return check_numbers(value, integer=False, low=0.0, high=1e6, low_open=True)


class DataSelectionSpace(_Strict):
    """Example-level data selection of the auxiliaries (Ruder and Plank 2017).

    Each auxiliary example is scored ``w · z`` (``z``: its ``features``, standardised over its
    dataset) and the top ``keep`` share of each auxiliary is trained on.  ``weights`` is one
    domain for every feature or a mapping feature -> domain (``"*"``: every feature not named;
    without it a feature not named has weight 0, which ``taskgraph.search.checks`` warns of);
    the sampler searches each weight and ``keep``
    (Optuna parameters ``selection/<feature>`` and ``selection/keep``).  Feature names are
    checked by ``taskgraph.search.checks``.
    """

    features: tuple[str, ...]
    weights: SelectionWeights = Domain(low=-1.0, high=1.0)
    keep: Domain = Domain(low=0.1, high=1.0)

    @field_validator("features")
    @classmethod
    def _features(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one selection feature")
        twice = sorted({f for f in value if value.count(f) > 1})
        if twice:
            raise ValueError(f"features listed twice: {', '.join(twice)}")
        return value

    @field_validator("keep")
    @classmethod
    def _keep(cls, value: Domain) -> Domain:
        return check_numbers(value, integer=False, low=0.0, high=1.0, low_open=True)

    @model_validator(mode="after")
    def _weights_named(self) -> DataSelectionSpace:
        if isinstance(self.weights, dict):
            unknown = sorted(set(self.weights) - set(self.features) - {"*"})
            if unknown:
                raise ValueError(
                    f"weights: {unknown[0]!r} is not one of the features "
                    f"({', '.join(self.features)})"
                )
        return self


def _hard_only() -> dict[str, dict[str, Domain]]:
    return {"hard": {}}


class SearchSpaceSpec(_Strict):
    """Everything the sampler chooses per trial (each setting fixed, categorical or a range)."""

    auxiliaries: AuxiliarySpace = AuxiliarySpace()
    # architecture name -> its parameter ranges (overriding the architecture's own defaults)
    sharing: dict[str, dict[str, Domain]] = Field(default_factory=_hard_only)
    mixing: MixingSpace = MixingSpace()
    loss_weighting: Domain = Domain(value="equal")
    transfer_mode: Domain = Domain(value="joint")
    pretraining: PretrainingSpace = PretrainingSpace()  # masked-LM stage (spec/pretraining.py)
    learning_rate: Domain = Domain(value=5e-5)
    epochs: Domain = Domain(value=3.0)
    max_steps: Domain = Domain(value=None)
    batch_size: Domain = Domain(value=16)
    hyperparameters: dict[str, Domain] = Field(default_factory=dict)
    # Example-level selection of the auxiliaries' examples (None: all of them).
    data_selection: DataSelectionSpace | None = None
    # What `max_steps` and `epochs` count: `target` steps (steps that train the target; the
    # target sees as many of its own batches in every trial, auxiliary steps come on top) or
    # `total` steps of every task.  Not searched: trials with different budgets would not
    # compare like with like.
    step_budget: Literal["target", "total"] = "target"

    @field_validator("sharing", mode="before")
    @classmethod
    def _sharing_list(cls, value: Any) -> Any:
        # `sharing: [hard, soft]` means every listed architecture with its own default ranges.
        if isinstance(value, str):
            return {value: {}}
        if isinstance(value, (list, tuple)):
            return {str(name): {} for name in value}
        if isinstance(value, Mapping):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value

    @field_validator("sharing")
    @classmethod
    def _sharing_nonempty(cls, value: dict[str, dict[str, Domain]]) -> dict[str, dict[str, Domain]]:
        if not value:
            raise ValueError("name at least one sharing architecture")
        return value

    @field_validator("learning_rate")
    @classmethod
    def _learning_rate(cls, value: Domain) -> Domain:
        return check_numbers(value, integer=False, low=0.0, high=MAX_LEARNING_RATE, low_open=True)

    @field_validator("epochs")
    @classmethod
    def _epochs(cls, value: Domain) -> Domain:
        return check_numbers(value, integer=False, low=0.0, high=MAX_EPOCHS, low_open=True)

    @field_validator("max_steps")
    @classmethod
    def _max_steps(cls, value: Domain) -> Domain:
        return check_numbers(value, integer=True, low=1, high=MAX_STEPS, allow_none=True)

    @field_validator("batch_size")
    @classmethod
    def _batch_size(cls, value: Domain) -> Domain:
        return check_numbers(value, integer=True, low=1, high=MAX_BATCH_SIZE)

    @field_validator("transfer_mode")
    @classmethod
    def _transfer_modes(cls, value: Domain) -> Domain:
        for mode in value.values():
            if mode not in ("joint", "sequential"):
                raise ValueError(f"allowed: joint, sequential; got {mode!r}")
        return value
