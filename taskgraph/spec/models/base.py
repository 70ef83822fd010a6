"""The strict base model of the spec models and the strict field types they share.

A model built on ``_Strict`` forbids extra keys, so a typo is an error naming the field path,
never a silently ignored setting.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict

__all__ = ["Count", "Number"]

# Counts are strict integers: YAML's `true` is not 1 and `1.0e+300` is not a step count.
# Bounds come from taskgraph.spec.limits and are set per field where a model uses them.
Count = Annotated[int, Strict()]
# Numbers are finite: `.inf` and `.nan` are YAML floats but never a usable setting; ints are
# accepted (`cpu: 1`), booleans are not.
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _shorthand_name(data: Any) -> Any:
    # `sampler: tpe` means `sampler: {name: tpe}` (and the same for pruner, runner, encoder).
    return {"name": data} if isinstance(data, str) else data
