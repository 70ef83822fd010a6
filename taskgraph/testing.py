"""Test fakes: an evaluator whose answers are known in advance, and its search spaces.

One importable module (tests, Ray workers and users' own plug-in tests import it by name)
instead of copies of a loader in every test file.  It imports the trainer's callback types,
not torch.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

from taskgraph.training.callbacks import TrainerCallback, TrainerControl, TrainerState
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus

__all__ = [
    "EFFECTS",
    "SHARING_SPACES",
    "FakeEvaluator",
    "KillAtStep",
    "OptunaRecords",
    "PacedEvaluator",
    "StudyAudit",
    "audit_study",
    "complete_result",
    "descendant_processes",
    "fake_evaluator_factory",
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
    "table_names",
    "unavailable",
    "write_pair_table",
    "write_rising_table",
    "write_sst2_data",
]


def in_ci() -> bool:
    """Return whether ``CI`` is set to a true value (the CI run sets ``CI=true``)."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> NoReturn:
    """Skip the calling test outside CI, fail it under ``CI=true``: for data, services and
    extras that CI must provide (a test must never skip there for want of them)."""
    import pytest

    if in_ci():
        pytest.fail(f"{reason} (CI=true: this must be available in CI)")
    pytest.skip(reason)


# Architectures' own parameters, in the shape `search_space()` returns them.
SHARING_SPACES: dict[str, dict[str, dict[str, Any]]] = {
    "hard": {},
    "soft": {"lambda": {"type": "float", "low": 1e-4, "high": 1.0, "log": True}},
}

EFFECTS = {"good": 0.2, "bad": -0.15, "meh": 0.01}


@contextmanager
def postgres_or_unavailable() -> Iterator[Any]:
    """Yield a PostgreSQL server started for tests (127.0.0.1, a free port; an empty
    ``taskgraph`` database), stopped and its directory deleted afterwards; when none can start,
    :func:`unavailable` (skipped locally, failed under ``CI=true``)."""
    from taskgraph.errors import StorageError
    from taskgraph.storage.testing import start_postgres

    try:
        server = start_postgres()
    except StorageError as error:
        unavailable(f"PostgreSQL cannot start: {error}")
    try:
        yield server
    finally:
        server.stop()


def known_objective(config: TrialConfig) -> float:
    """Return the objective the fake reports: 0.5 plus each auxiliary's known effect."""
    return 0.5 + sum(EFFECTS.get(t, 0.0) for t in config.auxiliaries) + 0.001 * config.seed


class FakeEvaluator:
    """Evaluates a config by formula, reporting ``n_evals`` evaluations through the callbacks.

    Configs containing a task in ``fail_with`` fail; ``interrupt_on`` raises KeyboardInterrupt
    on that call number (1-based), as Ctrl-C would.
    """

    def __init__(
        self,
        *,
        n_evals: int = 3,
        fail_with: Sequence[str] = (),
        interrupt_on: int | None = None,
        seconds_per_eval: float = 0.0,
    ) -> None:
        self.seconds_per_eval = seconds_per_eval
        self.n_evals = n_evals
        self.fail_with = set(fail_with)
        self.interrupt_on = interrupt_on
        self.calls: list[TrialConfig] = []
        self.checkpoint_keys: list[str | None] = []

    def evaluate(
        self,
        config: TrialConfig,
        *,
        callbacks: Sequence[Any] = (),
        checkpoint_key: str | None = None,
    ) -> TrialResult:
        """Return the known result of ``config`` (see the class docstring); keys are recorded."""
        self.calls.append(config)
        self.checkpoint_keys.append(checkpoint_key)
        if self.interrupt_on is not None and len(self.calls) == self.interrupt_on:
            raise KeyboardInterrupt
        if self.fail_with & set(config.auxiliaries):
            return TrialResult.failed("fake failure: loss is NaN", cost=Cost(seconds=0.01))
        final = known_objective(config)
        state, control = TrainerState(), TrainerControl()
        intermediate: list[tuple[int, float]] = []
        for step in range(1, self.n_evals + 1):
            time.sleep(self.seconds_per_eval)
            value = final * step / self.n_evals
            state.global_step = step * 10
            intermediate.append((state.global_step, value))
            for callback in callbacks:
                out = callback.on_evaluate(config, state, control, metrics={}, objective=value)
                control = out or control
            if control.should_prune:
                return TrialResult(
                    status=TrialStatus.PRUNED,
                    objective=value,
                    scores={config.target: {"dev": {"accuracy": value}}},
                    intermediate=intermediate,
                    cost=Cost(seconds=0.01),
                )
        scores = {t: {"dev": {"accuracy": final}} for t in config.task_set}
        return TrialResult(
            status=TrialStatus.COMPLETE,
            objective=final,
            scores=scores,
            intermediate=intermediate,
            cost=Cost(seconds=0.01, examples=100),
        )


def fake_evaluator_factory(spec: Any, data_dir: Any) -> FakeEvaluator:
    """Return the fake a Ray worker evaluates with: three evaluations, 0.5 s apart.

    The Ray runner's ``evaluator_factory`` (:class:`taskgraph.runners.builtin.RayRunner`):
    importable by name on every node, and slow enough that concurrent trials overlap.
    """
    return FakeEvaluator(n_evals=3, seconds_per_eval=0.5)


def noop_evaluator_factory(spec: Any, data_dir: Any) -> FakeEvaluator:
    """Return a fake that does no work: one evaluation, reported at once (overhead benchmarks)."""
    return FakeEvaluator(n_evals=1)


def load_fakes() -> ModuleType:
    """Return this module (what the tests' old per-file ``load_fakes()`` returned)."""
    import sys

    return sys.modules[__name__]


#: seconds each trial of the test command line's ``tabular`` runner takes (``main``)
TRIAL_SECONDS_ENV = "TASKGRAPH_TEST_TRIAL_S"


class PacedEvaluator:
    """Wraps an evaluator, taking ``seconds`` per trial (a fault can land between trials)."""

    def __init__(self, *, inner: Any, seconds: float) -> None:
        self.inner = inner
        self.seconds = seconds

    def evaluate(
        self,
        config: TrialConfig,
        *,
        callbacks: Sequence[Any] = (),
        checkpoint_key: str | None = None,
    ) -> TrialResult:
        """Return ``inner``'s result after ``seconds``."""
        time.sleep(self.seconds)
        return self.inner.evaluate(config, callbacks=callbacks, checkpoint_key=checkpoint_key)


@dataclass(frozen=True)
class StudyAudit:
    """Every (trial, seed) record a study should have, against what its records hold.

    ``states``: trials by taskgraph state; ``counted``: the trials that count against the
    budget (complete, pruned, failed); ``lost``: (trial, seed) pairs of counted trials without
    a record (a trial that repeats a recorded configuration and seed has its record in the
    earlier trial's run), plus runs stored on an interrupted trial that no retry recorded;
    ``duplicated``:
    extra records of a pair plus records of no counted trial.
    """

    states: dict[str, int]
    counted: int
    expected: int
    lost: int
    duplicated: int
    failure_reasons: tuple[str, ...]


def audit_study(name: str, url: str, *, seeds: int) -> StudyAudit:
    """Return the :class:`StudyAudit` of study ``name`` (one record per seed of every counted
    trial; a failed trial has one record, of its first seed)."""
    from collections import Counter

    import optuna

    from taskgraph.search.progress import CONFIG_ATTR, retried_numbers, trial_results, trial_state
    from taskgraph.storage import open_repository
    from taskgraph.trial import config_hash

    trials = optuna.load_study(study_name=name, storage=url).get_trials()
    retried = retried_numbers(trials)
    states = {t.number: trial_state(t, retried=retried) for t in trials}
    counted = [t for t in trials if states[t.number] in ("complete", "pruned", "failed")]
    expected = {
        (t.number, seed)
        for t in counted
        for seed in (range(1) if states[t.number] == "failed" else range(seeds))
    }
    discarded = sum(
        len(trial_results(t) or ())
        for t in trials
        if states[t.number] == "interrupted" and t.number not in retried
    )
    with open_repository(url, create=False) as repo:
        runs = repo.runs(study=name)
    keys = Counter((r.trial_number, r.seed) for r in runs)
    # A trial repeating a configuration (and seed) the study holds a complete run of is not
    # recorded again (taskgraph.search.recording): that run is its record.
    recorded = {
        config_hash(r.trial_config().to_dict()): r.trial_number
        for r in runs
        if r.status == "complete"
    }
    by_number = {t.number: t for t in counted}
    repeats = set()
    for number, seed in expected - set(keys):
        config = by_number[number].user_attrs.get(CONFIG_ATTR)
        if config is None:
            continue
        earlier = recorded.get(config_hash(TrialConfig.from_dict(config).with_seed(seed).to_dict()))
        if earlier is not None and earlier != number:
            repeats.add((number, seed))
    return StudyAudit(
        states=dict(Counter(states.values())),
        counted=len(counted),
        expected=len(expected),
        lost=len(expected - set(keys) - repeats) + discarded,
        duplicated=sum(n - 1 for n in keys.values()) + len(set(keys) - expected),
        failure_reasons=tuple(r.failure_reason or "" for r in runs if r.status == "failed"),
    )


def trial_states(url: str) -> dict[int, str]:
    """Return Optuna's state of every trial by number, read with SQL from another process's
    storage ({} before the tables exist, or while the database cannot be read)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sqlalchemy.text("SELECT number, state FROM trials")).all()
        return {int(number): str(state) for number, state in rows}
    except sqlalchemy.exc.SQLAlchemyError:
        return {}
    finally:
        engine.dispose()


def optuna_trial_counts(url: str) -> dict[str, int]:
    """Return each Optuna study's name in the storage at ``url`` with its number of trials."""
    import optuna

    storage = optuna.storages.RDBStorage(url, skip_table_creation=True)
    try:
        return {
            s.study_name: len(storage.get_all_trials(s._study_id, deepcopy=False))
            for s in storage.get_all_studies()
        }
    finally:
        storage.engine.dispose()


def _process_table() -> dict[int, tuple[int, str]]:
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # ended while we looked
        table[int(entry.name)] = (int(stat.rsplit(")", 1)[1].split()[1]), cmdline)
    return table


def descendant_processes(pid: int) -> list[tuple[int, str]]:
    """Return (pid, command line) of every process below ``pid`` (Linux ``/proc``).

    A local Ray started by a driver runs below it: its GCS, raylet and workers, whose command
    lines name what they run (``ray::ImplicitFunc.train`` while a Tune trial trains).
    """
    table = _process_table()
    children: dict[int, list[int]] = {}
    for child, (parent, _) in table.items():
        children.setdefault(parent, []).append(child)
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append((child, table[child][1]))
            stack.append(child)
    return found


def processes_naming(text: str) -> list[int]:
    """Return the pids of the processes (not this one) whose command line contains ``text``."""
    return [pid for pid, (_, cmd) in _process_table().items() if text in cmd and pid != os.getpid()]


@contextmanager
def small_filesystem(path: Path, *, size_kb: int) -> Iterator[bool]:
    """Create ``path`` and mount a ``size_kb`` tmpfs on it where this process may (root with
    ``mount``); yield whether it did.  Unmounted on the way out (lazily if still busy)."""
    import shutil
    import subprocess

    path.mkdir()
    mounted = False
    if os.geteuid() == 0 and shutil.which("mount") and shutil.which("umount"):
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0755", "tmpfs", str(path)],
            capture_output=True,
            check=False,
        )
        mounted = done.returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            done = subprocess.run(["umount", str(path)], capture_output=True, check=False)
            if done.returncode != 0:
                subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def limit_file_size(limit: int) -> None:
    """Limit this process's files to ``limit`` bytes, writes past it failing with ``EFBIG``
    (``SIGXFSZ`` ignored): a full filesystem without one (a ``preexec_fn``)."""
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


class KillAtStep(TrainerCallback):
    """Raise ``KeyboardInterrupt`` at the end of training step ``step`` (of ``phase`` when
    given): a run killed there, for the tests that resume it from its checkpoint."""

    def __init__(self, step: int, *, phase: str | None = None) -> None:
        self.step = step
        self.phase = phase

    def on_step_end(
        self, args: TrialConfig, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> TrainerControl | None:
        if state.global_step == self.step and self.phase in (None, state.phase):
            raise KeyboardInterrupt
        return None


def complete_result(
    config: TrialConfig, value: float = 0.5, *, split: str = "dev", metric: str = "f1"
) -> TrialResult:
    """Return a complete result scoring ``value`` on every task of ``config`` (its objective
    too), for tests that write records by hand."""
    return TrialResult(
        status=TrialStatus.COMPLETE,
        scores={task: {split: {metric: value}} for task in config.task_set},
        objective=value,
        cost=Cost(seconds=1.0),
    )


class OptunaRecords(logging.Handler):
    """Keeps every record that Optuna's loggers let through."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def below_warning(self) -> list[str]:
        """Return the messages of the records below WARNING (Optuna's INFO lines)."""
        return [r.getMessage() for r in self.records if r.levelno < logging.WARNING]


def run_fake_study(spec: Mapping[str, Any], url: str) -> str:
    """Run the study ``spec`` (a spec's fields) to its budget with :class:`FakeEvaluator` and the
    fake sharing spaces, on ``url``; return ``url``."""
    from taskgraph.search.engine import StudyEngine
    from taskgraph.spec import spec_from_dict

    engine = StudyEngine(
        spec=spec_from_dict(dict(spec)),
        storage_url=url,
        evaluator=FakeEvaluator(),
        sharing_spaces=SHARING_SPACES,
    )
    try:
        engine.run()
    finally:
        engine.close()
    return url


def write_rising_table(path: Path, tasks: Sequence[str], *, max_size: int) -> Path:
    """Write a long CSV of every subset of ``tasks`` up to ``max_size`` on val, in which each
    task's score rises with its partners (0.5 + 0.05 per partner + 0.01 per place); return it."""
    import itertools

    from taskgraph.affinity.longtable import LongRow, LongTable, write_long_csv

    rows = [
        LongRow(t, frozenset(combo), "val", 0.5 + 0.05 * (len(combo) - 1) + 0.01 * i, True)
        for size in range(1, max_size + 1)
        for combo in itertools.combinations(tasks, size)
        for i, t in enumerate(combo)
    ]
    write_long_csv(LongTable(rows=rows), path)
    return path


def write_pair_table(
    path: Path,
    *,
    seed: int,
    tasks: int = 7,
    popular: float = 0.0,
    noise: float = 0.05,
    baselines: bool = True,
    splits: Sequence[str] = ("val",),
    counts: Mapping[str, int] | None = None,
    no_baseline: Mapping[str, str] | None = None,
) -> Path:
    """Write a long CSV of ``tasks`` tasks ``t0``, ``t1``, ... with pairs only; return it.

    On each split in ``splits``: a baseline row of 0.6 per target (none where ``baselines`` is
    false, or where ``no_baseline`` maps the target to that split), then for each target ``t``
    pair rows with the first ``counts[t]`` other tasks in order (all of them by default), worth
    ``0.6 * (1 + effect[source] + normal(0, noise))``.  A source's ``effect`` is drawn once,
    first, from ``normal(0, popular)`` (0 when ``popular`` is 0, drawing nothing), so one source
    helps every target alike; the draws come from ``numpy.random.default_rng(seed)``.
    """
    import numpy as np

    from taskgraph.affinity.longtable import LongRow, LongTable, write_long_csv

    names = [f"t{i}" for i in range(tasks)]
    rng = np.random.default_rng(seed)
    effects = [float(e) for e in rng.normal(0, popular, tasks)] if popular else [0.0] * tasks
    effect = dict(zip(names, effects, strict=True))
    rows: list[LongRow] = []
    for split in splits:
        if baselines:
            rows += [
                LongRow(t, frozenset({t}), split, 0.6, True)
                for t in names
                if (no_baseline or {}).get(t) != split
            ]
        for t in names:
            for s in [s for s in names if s != t][: (counts or {}).get(t, tasks - 1)]:
                value = 0.6 * (1 + effect[s] + float(rng.normal(0, noise)))
                rows.append(LongRow(t, frozenset({t, s}), split, value, True))
    write_long_csv(LongTable(rows=rows), path)
    return path


def table_names(url: str) -> set[str]:
    """Return the names of the tables in the database at ``url`` (read-only: nothing is
    created, which is what the read-only commands' tests check with it)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        return set(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def write_sst2_data(root: Path) -> Path:
    """Write a data directory ``root`` holding 16 sentences of the catalog task ``sst2`` in each
    of its splits (labels alternating), and return ``root``."""
    folder = root / "sst2"
    folder.mkdir(parents=True)
    rows = ["sentence\tlabel"] + [
        f"{'a fine film' if i % 2 else 'a dull film'} number {i}\t{i % 2}" for i in range(16)
    ]
    for split in ("train", "dev", "test"):
        (folder / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def spec_check_error(spec: Any) -> str:
    """Return the message of the :class:`~taskgraph.errors.SpecError` that the spec checks
    (``taskgraph.search.checks.check_spec``) raise for ``spec``: one line, as the command line
    prints it.  An AssertionError when the checks accept the spec or the message has several
    lines."""
    from taskgraph.errors import SpecError
    from taskgraph.search.checks import check_spec

    try:
        check_spec(spec)
    except SpecError as error:
        message = str(error)
        assert "\n" not in message, message
        return message
    raise AssertionError("the spec checks accepted the spec")
