"""Several writer processes at once: exactly one run per (study, trial, seed), no errors.

4 processes x 250 runs (spawned, so each has its own connections), started together on a
brand-new database (so they also race to create the schema).  Every worker additionally
re-writes 25 trials owned by its neighbour while the neighbour writes them: a retried write
racing the original must not duplicate.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from sqlalchemy import func, select

from taskgraph.search.progress import CONFIG_ATTR
from taskgraph.search.space import BASELINE_ROLE, ROLE_ATTR
from taskgraph.storage import VERSION_TABLE, open_repository
from taskgraph.storage.schema import RunRow, ScoreRow
from taskgraph.storage.testing import synthetic_trial, write_trials
from taskgraph.trial import config_hash

TASKGRAPH = str(Path(sys.executable).with_name("taskgraph"))
WORKERS = 4
RUNS_PER_WORKER = 250
OVERLAP = 25


@pytest.mark.slow
def test_four_processes_write_1000_runs_exactly_once(storage_url):
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS)
    report = context.Queue()
    processes = []
    for worker in range(WORKERS):
        own = list(range(worker * RUNS_PER_WORKER, (worker + 1) * RUNS_PER_WORKER))
        neighbour = (worker + 1) % WORKERS * RUNS_PER_WORKER
        numbers = own + list(range(neighbour, neighbour + OVERLAP))
        process = context.Process(
            target=write_trials, args=(storage_url, "race", numbers, barrier, report)
        )
        process.start()
        processes.append(process)
    outcomes = [report.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert [kind for kind, _ in outcomes] == ["ok"] * WORKERS, [
        detail for kind, detail in outcomes if kind != "ok"
    ]
    assert all(process.exitcode == 0 for process in processes)

    total = WORKERS * RUNS_PER_WORKER
    expected_scores = sum(
        sum(len(m) for splits in synthetic_trial(n)[1].scores.values() for m in splits.values())
        for n in range(total)
    )
    with open_repository(storage_url) as repo:
        with repo.engine.connect() as connection:
            assert (
                connection.execute(select(func.count()).select_from(RunRow)).scalar_one() == total
            )
            assert (
                connection.execute(select(func.count()).select_from(ScoreRow)).scalar_one()
                == expected_scores
            )
            versions = connection.exec_driver_sql(
                f"SELECT count(*) FROM {VERSION_TABLE}"
            ).scalar_one()
            assert versions == 1
        assert repo.trial_numbers("race") == set(range(total))
        sample = repo.runs(study="race", task_set=synthetic_trial(777)[0].task_set, limit=1000)
        assert 777 in {run.trial_number for run in sample}
        assert (
            repo.run(next(r.id for r in sample if r.trial_number == 777)).trial_result().scores
            == synthetic_trial(777)[1].scores
        )


DRIVERS = 4


@pytest.mark.slow
def test_drivers_started_together_on_a_new_database_all_run_and_enqueue_one_baseline(
    storage_url: str, tabular_spec: Callable[..., Path], tmp_path: Path
) -> None:
    """Real `taskgraph study run` processes, started at once on a database that does not
    exist yet: they race to create Optuna's schema and the records schema, to create the
    study, to enqueue the baseline and to pop it (issue 10, item 5)."""
    spec = tabular_spec(trials=8)
    env = {k: v for k, v in os.environ.items() if k != "TASKGRAPH_STORAGE"}
    drivers = [
        subprocess.Popen(
            [TASKGRAPH, "study", "run", str(spec), "--storage", storage_url, "--quiet"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(DRIVERS)
    ]
    outputs = [driver.communicate(timeout=600) for driver in drivers]
    for driver, (_, stderr) in zip(drivers, outputs, strict=True):
        assert driver.returncode == 0, stderr[-3000:]
        assert "Traceback" not in stderr, stderr[-3000:]

    storage = optuna.storages.RDBStorage(storage_url)
    try:
        trials = optuna.load_study(study_name="bench", storage=storage).get_trials()
    finally:
        storage.engine.dispose()
    baselines = [t for t in trials if t.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE]
    assert len(baselines) == 1, [t.number for t in baselines]
    assert all(t.state is TrialState.COMPLETE for t in trials)
    with open_repository(storage_url, create=False) as repo:
        runs = repo.runs(study="bench")
        with repo.engine.connect() as connection:
            versions = connection.exec_driver_sql("SELECT count(*) FROM alembic_version")
            assert versions.scalar_one() == 1  # Optuna's own schema version, stamped once
    # At most one run per trial: no trial was popped (and run) by two drivers.  A trial
    # without a run repeats a configuration that is recorded (its runs are not written twice).
    numbers = [run.trial_number for run in runs]
    assert len(numbers) == len(set(numbers)) and set(numbers) <= {t.number for t in trials}
    recorded = {config_hash(run.trial_config().to_dict()) for run in runs}
    for trial in trials:
        if trial.number not in numbers:
            assert config_hash(trial.user_attrs[CONFIG_ATTR]) in recorded, trial.number
