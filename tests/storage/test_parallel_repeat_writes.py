"""Parallel drivers writing one measurement: it is stored once, on every backend.

A study's repeated trials write with ``skip_repeat=True``: a complete run of a configuration
and seed already held on the same data is not written again.  Drivers running the study in
parallel may finish the same measurement at the same moment; each spawned writer here waits
at a barrier and then writes the same configuration, seed and fingerprints under its own
trial number.  On PostgreSQL at READ COMMITTED, without a lock, every writer saw no earlier
run and inserted one.
"""

from __future__ import annotations

import multiprocessing
import runpy
from pathlib import Path

from taskgraph.storage import open_repository
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus

WRITERS = 4
ROUNDS = 4
FINGERPRINTS = {"ner": "a" * 64, "pos": "b" * 64}

# Run in each spawned process by runpy.run_path (test modules are not importable by name
# under --import-mode=importlib); url, study, number, barrier and report are its globals.
WRITER = """
import traceback
from datetime import datetime, timezone

from taskgraph.storage import open_repository
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus

try:
    config = TrialConfig(target="ner", auxiliaries=("pos",), encoder="tiny-bert", max_steps=10)
    result = TrialResult(
        status=TrialStatus.COMPLETE,
        objective=0.81,
        cost=Cost(seconds=1.0),
        scores={"ner": {"dev": {"f1": 0.81}}, "pos": {"dev": {"f1": 0.95}}},
    )
    now = datetime.now(timezone.utc)
    with open_repository(url) as repo:
        repo.trial_numbers(study)  # connected before the barrier: the writes start together
        barrier.wait(timeout=120)
        run_id = repo.add_run_result(
            study=study,
            trial_number=number,
            config=config,
            result=result,
            started_at=now,
            finished_at=now,
            task_fingerprints=fingerprints,
            skip_repeat=True,
        )
    report.put(("ok", number, run_id))
except BaseException:
    report.put(("error", number, traceback.format_exc()))
    raise
"""


def test_parallel_writers_of_one_measurement_store_it_once(storage_url, tmp_path: Path):
    script = tmp_path / "repeat_writer.py"
    script.write_text(WRITER)
    context = multiprocessing.get_context("spawn")
    for round_ in range(ROUNDS):
        study = f"parallel{round_}"
        with open_repository(storage_url) as repo:
            # Trial 0, another configuration, makes the study exist before the race.
            first = TrialConfig(target="ner", auxiliaries=(), encoder="tiny-bert", max_steps=10)
            repo.add_run_result(
                study=study,
                trial_number=0,
                config=first,
                result=TrialResult(
                    status=TrialStatus.COMPLETE,
                    objective=0.8,
                    cost=Cost(seconds=1.0),
                    scores={"ner": {"dev": {"f1": 0.8}}},
                ),
                task_fingerprints={"ner": FINGERPRINTS["ner"]},
            )
        barrier = context.Barrier(WRITERS)
        report = context.Queue()
        processes = []
        for number in range(1, WRITERS + 1):
            globals_ = {
                "url": storage_url,
                "study": study,
                "number": number,
                "barrier": barrier,
                "report": report,
                "fingerprints": FINGERPRINTS,
            }
            process = context.Process(
                target=runpy.run_path, args=(str(script),), kwargs={"init_globals": globals_}
            )
            process.start()
            processes.append(process)
        outcomes = [report.get(timeout=300) for _ in processes]
        for process in processes:
            process.join(timeout=60)
        errors = [detail for kind, _, detail in outcomes if kind != "ok"]
        assert not errors, errors[0]
        assert all(process.exitcode == 0 for process in processes)

        with open_repository(storage_url) as repo:
            runs = repo.runs(study=study)
        repeated = [run for run in runs if run.trial_number != 0]
        # One run of the measurement (whichever writer came first), and every writer got it.
        assert len(repeated) == 1, (round_, sorted(run.trial_number for run in runs))
        assert {run_id for _, _, run_id in outcomes} == {repeated[0].id}, (round_, outcomes)
        assert repeated[0].task_fingerprints == FINGERPRINTS
