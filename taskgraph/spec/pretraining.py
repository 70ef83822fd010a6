"""``search.pretraining``: the masked-LM pretraining stage as a search dimension.

Written in a spec either as before, a domain of schemes (``pretraining: null``,
``pretraining: [none, random]``), or as a mapping whose settings are each a domain::

    pretraining:
      scheme: [none, random, adaptive]      # none (or null): no stage
      steps: {low: 100, high: 400, step: 100}
      corpus: [squad2]                      # task names or text files; default: the trial's tasks
      learning_rate: 1.0e-4
      batch_size: 16
      max_length: 64                        # window length (default: encoder.max_length)
      max_sequences: 2000                   # fixed random subset of the windows
      options:                              # each scheme's own parameters (searchable)
        adaptive: {q_end: [0.8, 0.95], explore: 0.1}

A spec that only names ``null`` dumps as ``null``, so old studies keep their search hash.
Scheme and option names are checked against ``MASKING_SCHEMES`` by
:func:`taskgraph.search.checks.check_spec` (the registry lives with the trainer).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    field_validator,
    model_serializer,
    model_validator,
)

from taskgraph.spec.domains import Domain, check_numbers
from taskgraph.spec.limits import (
    MAX_BATCH_SIZE,
    MAX_CAP_EXAMPLES,
    MAX_ENCODER_LENGTH,
    MAX_LEARNING_RATE,
    MAX_STEPS,
)

__all__ = ["NO_PRETRAINING", "PretrainingSpace"]

NO_PRETRAINING = (None, "none")
_DOMAIN_KEYS = frozenset({"value", "choices", "low", "high", "log", "step", "type"})
Count = Annotated[int, Strict()]


class PretrainingSpace(BaseModel):
    """The pretraining stage's search space (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scheme: Domain = Domain(value=None)
    steps: Domain = Domain(value=200)
    corpus: tuple[str, ...] = ()
    learning_rate: Domain = Domain(value=5e-5)
    batch_size: Domain = Domain(value=16)
    max_length: Count | None = Field(default=None, ge=8, le=MAX_ENCODER_LENGTH)
    max_sequences: Count | None = Field(default=None, ge=2, le=MAX_CAP_EXAMPLES)
    options: dict[str, dict[str, Domain]] = Field(default_factory=dict)  # scheme -> name -> domain

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        # The old form, a domain of schemes, is the `scheme` of the new one.
        if isinstance(data, PretrainingSpace):
            return data
        if isinstance(data, Mapping) and not (set(data) & _DOMAIN_KEYS):
            return data
        return {"scheme": data}

    @field_validator("scheme")
    @classmethod
    def _scheme(cls, value: Domain) -> Domain:
        if value.kind in ("int", "float"):
            raise ValueError(f"expected scheme names, got the range {value.describe()}")
        for name in value.values():
            if name is not None and not isinstance(name, str):
                raise ValueError(f"expected a scheme name (none, random, adaptive), got {name!r}")
        return value

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: Domain) -> Domain:
        return check_numbers(value, integer=True, low=1, high=MAX_STEPS)

    @field_validator("learning_rate")
    @classmethod
    def _learning_rate(cls, value: Domain) -> Domain:
        return check_numbers(value, integer=False, low=0.0, high=MAX_LEARNING_RATE, low_open=True)

    @field_validator("batch_size")
    @classmethod
    def _batch_size(cls, value: Domain) -> Domain:
        return check_numbers(value, integer=True, low=1, high=MAX_BATCH_SIZE)

    @field_validator("corpus")
    @classmethod
    def _corpus(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            if not entry.strip():
                raise ValueError("corpus entries must be task names or file paths, got ''")
        return value

    @property
    def enabled(self) -> bool:
        """Return whether some trial may pretrain (a scheme other than none is allowed)."""
        return any(name not in NO_PRETRAINING for name in self.scheme.values())

    @model_serializer(mode="wrap")
    def _serialize(self, handler: Any) -> Any:
        data = handler(self)
        if self == PretrainingSpace(scheme=self.scheme):
            return data["scheme"]  # the old form: keeps the search hash of old studies
        return data
