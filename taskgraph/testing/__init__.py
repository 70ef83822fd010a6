"""Test support shipped with the package: fake evaluators, CI availability, study audits,
injected faults and written test data.

One importable package (tests, Ray workers and users' own plug-in tests import it by name)
instead of copies of a loader in every test file.  It imports the trainer's callback types,
not torch.  One module per concept:

- :mod:`~taskgraph.testing.fakes`: the evaluator whose answers are known in advance
  (:class:`FakeEvaluator`), its search spaces and the factories Ray workers build it with;
- :mod:`~taskgraph.testing.availability`: :func:`unavailable`, the one way a test gives up on
  missing data, a service or an extra (skipped locally, failed under ``CI=true``);
- :mod:`~taskgraph.testing.studies`: running a fake study and reading back its records,
  trials and tables (:func:`audit_study`);
- :mod:`~taskgraph.testing.faults`: a training run killed at a step, processes to kill, a
  filesystem to fill;
- :mod:`~taskgraph.testing.tables`: long score tables, a small sst2 data directory and a
  small encoder directory.
- :mod:`~taskgraph.testing.queueing`: the queue planner outside an engine (imported by name:
  it loads the search layer).
"""

from __future__ import annotations

from types import ModuleType

from taskgraph.testing.availability import in_ci, postgres_or_unavailable, unavailable
from taskgraph.testing.fakes import (
    EFFECTS,
    SHARING_SPACES,
    TRIAL_SECONDS_ENV,
    FakeEvaluator,
    PacedEvaluator,
    complete_result,
    fake_evaluator_factory,
    known_objective,
    noop_evaluator_factory,
)
from taskgraph.testing.faults import (
    KillAtStep,
    descendant_processes,
    limit_file_size,
    processes_naming,
    small_filesystem,
)
from taskgraph.testing.studies import (
    SMALL_BERT,
    OptunaRecords,
    RunWriter,
    StudyAudit,
    audit_study,
    optuna_trial_counts,
    run_fake_study,
    spec_check_error,
    synthetic_spec,
    table_names,
    tiny_training_spec,
    tiny_trial_config,
    trial_states,
)
from taskgraph.testing.tables import (
    write_long_rows,
    write_pair_table,
    write_rising_table,
    write_sst2_data,
    write_tiny_encoder,
)

__all__ = [
    "EFFECTS",
    "SHARING_SPACES",
    "SMALL_BERT",
    "TRIAL_SECONDS_ENV",
    "FakeEvaluator",
    "KillAtStep",
    "OptunaRecords",
    "PacedEvaluator",
    "RunWriter",
    "StudyAudit",
    "audit_study",
    "complete_result",
    "descendant_processes",
    "fake_evaluator_factory",
    "in_ci",
    "known_objective",
    "limit_file_size",
    "load_fakes",
    "noop_evaluator_factory",
    "optuna_trial_counts",
    "postgres_or_unavailable",
    "processes_naming",
    "run_fake_study",
    "small_filesystem",
    "spec_check_error",
    "synthetic_spec",
    "table_names",
    "tiny_training_spec",
    "tiny_trial_config",
    "trial_states",
    "unavailable",
    "write_long_rows",
    "write_pair_table",
    "write_rising_table",
    "write_sst2_data",
    "write_tiny_encoder",
]


def load_fakes() -> ModuleType:
    """Return this module (what the tests' old per-file ``load_fakes()`` returned)."""
    import sys

    return sys.modules[__name__]
