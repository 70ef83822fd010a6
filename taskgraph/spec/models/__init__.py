"""The study spec: pydantic models that reject unknown keys.

A spec says what to search (target, candidate auxiliary tasks, the search space), how (sampler,
pruner, runner, budget) and where to keep the results (storage).  Every model forbids extra
keys, so a typo is an error naming the field path, never a silently ignored setting.  Names
that live in registries (sharing architectures, loss weightings, samplers) are checked against
those registries by :func:`taskgraph.search.checks.check_spec` so that new plug-ins need no
change here.  See docs/search.md for the reference with every field.

One module per concept:

- :mod:`~taskgraph.spec.models.study`: the study itself (:class:`StudySpec`), its tasks,
  objective and rows;
- :mod:`~taskgraph.spec.models.space`: the search space (``search:``);
- :mod:`~taskgraph.spec.models.runners`: where trials run (``runner:``);
- :mod:`~taskgraph.spec.models.settings`: the fixed settings (encoder, training, budget,
  sampler, pruner, recovery);
- :mod:`~taskgraph.spec.models.base`: the strict base model and field types they share.
"""

from __future__ import annotations

from taskgraph.spec.models.runners import (
    LocalRunnerSpec,
    RayRunnerSpec,
    RunnerSpec,
    TabularRunnerSpec,
)
from taskgraph.spec.models.settings import (
    BudgetSpec,
    EncoderSpec,
    PrunerSpec,
    RecoverySpec,
    SamplerSpec,
    TrainingSpec,
    parse_duration,
)
from taskgraph.spec.models.space import (
    AuxiliarySpace,
    DataSelectionSpace,
    MixingSpace,
    SearchSpaceSpec,
)
from taskgraph.spec.models.study import InlineTaskSpec, ObjectiveSpec, RowSpec, StudySpec

__all__ = [
    "AuxiliarySpace",
    "BudgetSpec",
    "DataSelectionSpace",
    "EncoderSpec",
    "InlineTaskSpec",
    "LocalRunnerSpec",
    "MixingSpace",
    "ObjectiveSpec",
    "PrunerSpec",
    "RayRunnerSpec",
    "RecoverySpec",
    "RowSpec",
    "RunnerSpec",
    "SamplerSpec",
    "SearchSpaceSpec",
    "StudySpec",
    "TabularRunnerSpec",
    "TrainingSpec",
    "parse_duration",
]
