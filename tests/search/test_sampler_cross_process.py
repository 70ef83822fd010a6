"""The subset samplers of several driver processes on one storage: choosing a set and
recording it is one step across the processes (the database's setup lock), so two drivers
proposing at the same moment never pick the same set while an unproposed one is left.

Each spawned driver has its own sampler (the same seed: left alone, both would choose the
same set from the same trials) and asks its trials in lockstep with the other: a barrier
before each suggestion, which samples the set.
"""

from __future__ import annotations

import multiprocessing
import runpy
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
import pytest

from taskgraph.search import subset_sampler
from taskgraph.search.graph_sampler import GraphGuidedSampler
from taskgraph.storage.locks import setup_lock

DRIVERS = 2
CANDIDATES = ["a", "b", "c"]  # any size: 8 valid sets (the empty one included)
SETS = 2 ** len(CANDIDATES)

# Run in each spawned process by runpy.run_path (test modules are not importable by name
# under --import-mode=importlib); url, name, rounds, barrier and report are its globals.
DRIVER = """
import traceback
import warnings

import optuna

from taskgraph.search.bandit_sampler import BanditSampler
from taskgraph.search.graph_sampler import GraphGuidedSampler

try:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    # (the graph sampler warns once every set was proposed max_repeats times)
    warnings.simplefilter("ignore")
    candidates = ["a", "b", "c"]
    if name == "graph":
        sampler = GraphGuidedSampler(target="t", candidates=candidates, max_repeats=1, seed=0)
    else:
        sampler = BanditSampler(target="t", candidates=candidates, seed=0)
    study = optuna.load_study(study_name="s", storage=url, sampler=sampler)
    sets = []
    for _ in range(rounds):
        trial = study.ask()
        barrier.wait(timeout=120)
        trial.suggest_float("lr", 1e-4, 1e-2, log=True)  # samples the set
        chosen = [t for t in candidates if trial.suggest_categorical(f"aux/{t}", [False, True])]
        sets.append(sorted(chosen))
        # Both proposals of the round are in before either trial finishes.
        barrier.wait(timeout=120)
        study.tell(trial, 0.5 + 0.05 * len(chosen) - 0.1 * ("c" in chosen))
    report.put(("ok", sets))
except BaseException:
    report.put(("error", traceback.format_exc()))
    raise
"""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Return the URL of a fresh, empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    server = request.getfixturevalue("postgres_server")
    return str(server.create_database(f"t_{uuid.uuid4().hex[:16]}"))


def _run_drivers(name: str, rounds: int, url: str, tmp_path: Path) -> list[frozenset[str]]:
    """Run ``DRIVERS`` spawned drivers of one study on ``url`` for ``rounds`` lockstep rounds;
    return the sets of the study's trials, by trial number."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    # Created here: the drivers only load it (Optuna creates its tables without a lock).
    optuna.create_study(study_name="s", storage=url, direction="maximize")
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(DRIVERS)
    report = context.Queue()
    globals_ = {"url": url, "name": name, "rounds": rounds, "barrier": barrier, "report": report}
    processes = [
        context.Process(
            target=runpy.run_path, args=(str(script),), kwargs={"init_globals": globals_}
        )
        for _ in range(DRIVERS)
    ]
    for process in processes:
        process.start()
    try:
        outcomes = [report.get(timeout=300) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=60)
            if process.is_alive():
                process.kill()
    errors = [detail for kind, detail in outcomes if kind != "ok"]
    assert not errors, errors[0]
    assert all(process.exitcode == 0 for process in processes)
    trials = optuna.load_study(study_name="s", storage=url).get_trials(deepcopy=False)
    assert len(trials) == DRIVERS * rounds
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    return [
        frozenset(k[4:] for k, v in t.params.items() if k.startswith("aux/") and v) for t in trials
    ]


def test_graph_sampler_drivers_in_two_processes_propose_each_set_once_per_pass(
    database: str, tmp_path: Path
) -> None:
    # 8 rounds of 2 trials, 8 sets, max_repeats=1: the first 4 rounds (start-up sets, then
    # the model's) propose every set once; the next 4, once more each (the least proposed).
    sets = _run_drivers("graph", 2 * SETS // DRIVERS, database, tmp_path)
    first = sets[:SETS]  # trials are numbered by round: the first 4 rounds
    assert len(set(first)) == SETS, Counter(first)
    assert set(Counter(sets).values()) == {2}, Counter(sets)


def test_bandit_sampler_drivers_in_two_processes_propose_no_set_twice(
    database: str, tmp_path: Path
) -> None:
    sets = _run_drivers("bandit", SETS // DRIVERS, database, tmp_path)
    assert len(set(sets)) == SETS, Counter(sets)


def test_a_proposal_made_under_the_setup_lock_does_not_wait_on_it(tmp_path: Path) -> None:
    # The engine asks under the setup lock; a trial sampled there (Optuna samples in ask when
    # given fixed distributions) takes the lock again in the same thread, for free.  A second
    # flock of the file would wait forever.
    url = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sampler = GraphGuidedSampler(target="t", candidates=CANDIDATES, seed=0)
    study = optuna.create_study(study_name="s", storage=url, direction="maximize", sampler=sampler)
    chosen: list[frozenset[str]] = []

    def ask() -> None:
        with setup_lock(url):
            trial = study.ask()
            trial.suggest_float("lr", 1e-4, 1e-2, log=True)  # samples the set
            chosen.append(frozenset(t for t in CANDIDATES if trial.params.get(f"aux/{t}")))

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "a proposal under the setup lock waited on it"
    assert chosen == [frozenset()]  # the start-up baseline, proposed


def test_the_graph_sampler_fits_before_the_proposal_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    # Other drivers wait on the lock: the estimator fit runs before it, and the proposal
    # under it reuses that fit (the trials it reads again are the same).
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    locked = threading.Event()
    real_lock = subset_sampler.proposal_lock

    @contextmanager
    def watched_lock(storage: Any) -> Iterator[None]:
        with real_lock(storage):
            locked.set()
            try:
                yield
            finally:
                locked.clear()

    monkeypatch.setattr(subset_sampler, "proposal_lock", watched_lock)
    sampler = GraphGuidedSampler(target="t", candidates=CANDIDATES, seed=0)
    fits: list[bool] = []  # whether each fit ran under the lock
    real_fit = sampler._fit_new

    def counted_fit(records: list[Any]) -> Any:
        fits.append(locked.is_set())
        return real_fit(records)

    monkeypatch.setattr(sampler, "_fit_new", counted_fit)

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("lr", 1e-4, 1e-2, log=True)
        chosen = [t for t in CANDIDATES if trial.suggest_categorical(f"aux/{t}", [False, True])]
        return 0.5 + 0.05 * len(chosen) - 0.1 * ("c" in chosen)

    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=SETS)
    sets = {
        frozenset(k[4:] for k, v in t.params.items() if k.startswith("aux/") and v)
        for t in study.trials
    }
    assert len(sets) == SETS
    # Start-up (the empty set and each task alone) fits nothing; each later trial fits once.
    assert fits == [False] * (SETS - 1 - len(CANDIDATES)), fits
