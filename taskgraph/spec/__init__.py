"""Study specs: pydantic models (unknown keys rejected) and YAML loading with ``${ENV}`` expansion."""

from __future__ import annotations

from taskgraph.spec.domains import Domain, as_domain
from taskgraph.spec.loading import expand_env, load_spec, spec_from_dict
from taskgraph.spec.models import (
    AuxiliarySpace,
    BudgetSpec,
    EncoderSpec,
    InlineTaskSpec,
    LocalRunnerSpec,
    MixingSpace,
    ObjectiveSpec,
    PrunerSpec,
    RayRunnerSpec,
    RecoverySpec,
    RunnerSpec,
    SamplerSpec,
    SearchSpaceSpec,
    StudySpec,
    TabularRunnerSpec,
    TrainingSpec,
    parse_duration,
)

__all__ = [
    "AuxiliarySpace",
    "BudgetSpec",
    "Domain",
    "EncoderSpec",
    "InlineTaskSpec",
    "LocalRunnerSpec",
    "MixingSpace",
    "ObjectiveSpec",
    "PrunerSpec",
    "RayRunnerSpec",
    "RecoverySpec",
    "RunnerSpec",
    "SamplerSpec",
    "SearchSpaceSpec",
    "StudySpec",
    "TabularRunnerSpec",
    "TrainingSpec",
    "as_domain",
    "expand_env",
    "load_spec",
    "parse_duration",
    "spec_from_dict",
]
