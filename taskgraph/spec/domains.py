"""Parameter domains of a study spec: a fixed value, a list of choices, or a numeric range.

In YAML a searchable setting is written the way one would say it::

    learning_rate: 5.0e-5                              # fixed
    batch_size: [16, 32]                               # choices (categorical)
    temperature: {low: 1.0, high: 5.0}                 # float range
    lambda: {low: 1.0e-4, high: 1.0, log: true}        # log-scale float range
    max_examples: {low: 200, high: 1000, step: 200}    # int range (both ends are ints)

:class:`Domain` is the normalised form; :func:`as_domain` turns the YAML shorthand into it.
The search engine compiles a domain into one Optuna suggestion (or none, when fixed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_serializer, model_validator

__all__ = ["Domain", "DomainInput", "Scalar", "as_domain"]

Scalar = bool | int | float | str | None

DOMAIN_HELP = "a value, a list of choices, or {low, high[, log, step, type]}"


class Domain(BaseModel):
    """One searchable setting: exactly one of ``value``, ``choices`` or ``low``/``high``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: Scalar = None
    choices: tuple[Scalar, ...] | None = None
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    type: Literal["int", "float"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        # YAML shorthand: a bare scalar is fixed, a bare list is a set of choices.
        if isinstance(data, Domain):
            return data
        if isinstance(data, Mapping):
            return data
        if isinstance(data, (list, tuple)):
            return {"choices": tuple(data)}
        return {"value": data}

    @model_validator(mode="after")
    def _one_form(self) -> Domain:
        is_range = self.low is not None or self.high is not None
        if self.choices is not None:
            if is_range or self.value is not None:
                raise ValueError(f"give either choices or low/high, not both ({DOMAIN_HELP})")
            if not self.choices:
                raise ValueError("choices must not be empty")
            for choice in self.choices:
                if isinstance(choice, (list, dict)):
                    raise ValueError(f"choices must be scalars, got {choice!r}")
        elif is_range:
            if self.low is None or self.high is None:
                raise ValueError(f"a range needs both low and high ({DOMAIN_HELP})")
            if self.value is not None:
                raise ValueError(f"give either value or low/high, not both ({DOMAIN_HELP})")
            if self.low > self.high:
                raise ValueError(f"low must be <= high, got low={self.low} high={self.high}")
            if self.log and self.low <= 0:
                raise ValueError(f"a log range needs low > 0, got low={self.low}")
            if self.log and self.step is not None:
                raise ValueError("a range cannot have both log and step")
        elif self.log or self.step is not None or self.type is not None:
            raise ValueError(f"log/step/type only apply to ranges ({DOMAIN_HELP})")
        return self

    @property
    def kind(self) -> Literal["fixed", "choice", "int", "float"]:
        """Return what this domain compiles into."""
        if self.choices is not None:
            return "choice"
        if self.low is None:
            return "fixed"
        if self.type is not None:
            return self.type
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (self.low, self.high))
        step_int = self.step is None or isinstance(self.step, int)
        return "int" if ints and step_int else "float"

    @property
    def is_fixed(self) -> bool:
        """Return whether the domain holds one value (nothing to search)."""
        return self.kind == "fixed" or (self.choices is not None and len(self.choices) == 1)

    def fixed_value(self) -> Scalar:
        """Return the value of a fixed domain (a one-element choice counts as fixed)."""
        if self.choices is not None:
            return self.choices[0]
        return self.value

    def values(self) -> Sequence[Scalar]:
        """Return the allowed values of a fixed or categorical domain (ranges: low and high)."""
        if self.choices is not None:
            return self.choices
        if self.low is None:
            return (self.value,)
        return (self.low, self.high)

    def describe(self) -> Any:
        """Return the domain in its shortest YAML form (for messages and docs)."""
        if self.kind == "fixed":
            return self.value
        if self.choices is not None:
            return list(self.choices)
        out: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        if self.type is not None:
            out["type"] = self.type
        return out

    @model_serializer
    def _serialize(self) -> Any:
        # Dump in the shorthand the user wrote; validating the dump gives the same domain.
        return self.describe()


DomainInput = Domain | Scalar | Sequence[Scalar] | Mapping[str, Any]


def as_domain(value: DomainInput) -> Domain:
    """Return ``value`` (YAML shorthand or a :class:`Domain`) as a validated :class:`Domain`."""
    if isinstance(value, Domain):
        return value
    return Domain.model_validate(value)
