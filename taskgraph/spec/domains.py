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

import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Strict,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

__all__ = ["Domain", "DomainInput", "Scalar", "as_domain", "check_numbers", "reject_non_finite"]

Scalar = bool | int | float | str | None
# A range end or step is a number, never a boolean (`low: true` is not 1).
Bound = Annotated[int, Strict()] | Annotated[float, Strict()]

DOMAIN_HELP = "a value, a list of choices, or {low, high[, log, step, type]}"


class Domain(BaseModel):
    """One searchable setting: exactly one of ``value``, ``choices`` or ``low``/``high``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: Scalar = None
    choices: tuple[Scalar, ...] | None = None
    low: Bound | None = None
    high: Bound | None = None
    log: bool = False
    step: Bound | None = None
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

    @field_validator("value", "choices", mode="before")
    @classmethod
    def _scalars(cls, data: Any, info: ValidationInfo) -> Any:
        # Said here: after this, pydantic would try each scalar type in turn and report the
        # last failure ("Input should be a valid boolean, got [8, 16]").
        items = data if info.field_name == "choices" and isinstance(data, (list, tuple)) else [data]
        for item in items:
            if isinstance(item, (list, tuple, Mapping)):
                what = "each choice" if info.field_name == "choices" else "a fixed value"
                raise ValueError(
                    f"{what} must be a number, a string or true/false, got {item!r} (a list "
                    "is a set of choices; a nested list or a mapping is no value a setting takes)"
                )
        return data

    @model_validator(mode="after")
    def _one_form(self) -> Domain:
        # `.inf` and `.nan` are YAML floats but no setting can use them (and NaN compares
        # false with everything, so `low <= high` below would not catch it).
        for number in (self.value, *(self.choices or ()), self.low, self.high, self.step):
            if isinstance(number, float) and not math.isfinite(number):
                raise ValueError(f"numbers must be finite, got {number}")
        if self.step is not None and self.step <= 0:
            raise ValueError(f"step must be > 0, got {self.step}")
        is_range = self.low is not None or self.high is not None
        if self.choices is not None:
            if is_range or self.value is not None:
                raise ValueError(f"give either choices or low/high, not both ({DOMAIN_HELP})")
            if not self.choices:
                raise ValueError("choices must not be empty")
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


def check_numbers(
    domain: Domain,
    *,
    integer: bool,
    low: float,
    high: float,
    low_open: bool = False,
    allow_none: bool = False,
) -> Domain:
    """Return ``domain`` when every value it can take is a number in the bounds, else raise.

    For a fixed value or choices every value is checked; for a range its ends (and, for an
    integer setting, that the range gives integers).  ``low_open`` makes ``low`` exclusive.
    The ValueError names the bad value; pydantic adds the field path.
    """
    kind = "an integer" if integer else "a number"
    if integer and domain.kind == "float":
        raise ValueError(f"expected {kind}, got the float range {domain.describe()}")
    for value in domain.values():
        if value is None and allow_none:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            hint = ""
            if isinstance(value, str) and _is_number(value):
                hint = f" (YAML reads {value} as text{_yaml_float_hint(value)})"
            raise ValueError(f"expected {kind}, got {value!r}{hint}")
        if integer and not isinstance(value, int):
            raise ValueError(f"expected {kind}, got {value!r}")
        too_low = value <= low if low_open else value < low
        if too_low or value > high:
            bound = f"> {low:g}" if low_open else f">= {low:g}"
            raise ValueError(f"must be {bound} and <= {high:g}, got {value!r}")
    return domain


def reject_non_finite(value: Any) -> None:
    """Raise ValueError when ``value`` (a JSON-like tree) holds an infinite or NaN float."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"numbers must be finite, got {value}")
    if isinstance(value, Mapping):
        for item in value.values():
            reject_non_finite(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            reject_non_finite(item)


def _yaml_float_hint(text: str) -> str:
    # YAML 1.1 floats need a dot in the mantissa and a sign in the exponent: 1.0e-5, 1.0e+3.
    mantissa, e, exponent = text.strip().lower().partition("e")
    if not e:
        return ""
    if "." not in mantissa:
        mantissa += ".0"
    if exponent[:1] not in ("+", "-"):
        exponent = "+" + exponent
    return f"; write {mantissa}e{exponent}"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def as_domain(value: DomainInput) -> Domain:
    """Return ``value`` (YAML shorthand or a :class:`Domain`) as a validated :class:`Domain`."""
    if isinstance(value, Domain):
        return value
    return Domain.model_validate(value)
