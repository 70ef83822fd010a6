"""Running a fake study and reading back what a study left: its records, trials and tables.

The fault tests audit a study's records with :func:`audit_study`; the command line's tests read
its storage with :func:`trial_states`, :func:`optuna_trial_counts` and :func:`table_names`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from taskgraph.testing.fakes import SHARING_SPACES, FakeEvaluator
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus


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


def table_names(url: str) -> set[str]:
    """Return the names of the tables in the database at ``url`` (read-only: nothing is
    created, which is what the read-only commands' tests check with it)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        return set(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()


#: a 2-layer random BERT small enough for a trainer test to take about a second
SMALL_BERT: dict[str, int] = {"hidden_size": 64, "num_attention_heads": 2, "intermediate_size": 128}


def tiny_trial_config(**overrides: Any) -> Any:
    """Return a ``TrialConfig`` of the synthetic target alone on :data:`SMALL_BERT` (8 steps of
    8 examples, an evaluation every 4), ``overrides`` set over it."""
    from taskgraph.trial import TrialConfig

    values: dict[str, Any] = {
        "target": "synth_target",
        "encoder": "tiny-bert",
        "encoder_options": SMALL_BERT,
        "max_steps": 8,
        "batch_size": 8,
        "learning_rate": 1e-3,
        "eval_every": 4,
        "max_length": 32,
    }
    values.update(overrides)
    return TrialConfig(**values)


def tiny_training_spec() -> dict[str, Any]:
    """Return the fields of a study that trains for real in seconds: tiny-bert, two synthetic
    candidates one at a time, 4 steps, 16 examples per task (a new copy each call)."""
    return {
        "name": "tiny",
        "target": "synth_target",
        "candidates": ["synth_related", "synth_conflict"],
        "encoder": {"name": "tiny-bert", "max_length": 16},
        "search": {
            "auxiliaries": {"max_size": 1},
            "sharing": ["hard"],
            "max_steps": 4,
            "batch_size": 4,
            "mixing": {"max_examples": {"*": 16}},
        },
        "training": {"eval_every": 2, "hyperparameters": {"max_eval_examples": 8}},
        "sampler": {"name": "graph", "seed": 0},
        "budget": {"trials": 2},
    }


def synthetic_spec(**fields: Any) -> Any:
    """Return a spec object of the synthetic target and two candidates on tiny-bert (2 layers,
    16 tokens), ``fields`` set over it: what a spec check needs and no more."""
    from taskgraph.spec import spec_from_dict

    data: dict[str, Any] = {
        "name": "s",
        "target": "synth_target",
        "candidates": ["synth_related", "synth_conflict"],
        "encoder": {"name": "tiny-bert", "max_length": 16},
    }
    data.update(fields)
    return spec_from_dict(data)


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


class RunWriter:
    """Writes complete runs into an open records repository, numbering each study's trials:
    the records the affinity commands read, without training anything.

    ``scores`` maps each task to its dev score, a number (under ``metric``) or a mapping of
    metric to value; the objective is the target's first.
    """

    def __init__(self, repo: Any, *, metric: str = "f1") -> None:
        self.repo = repo
        self.metric = metric
        self.numbers: dict[str, int] = {}

    def add(
        self,
        target: str,
        aux: tuple[str, ...],
        scores: Mapping[str, float | Mapping[str, float]],
        *,
        study: str = "s",
        encoder: str = "minilm",
        seed: int = 0,
        learning_rate: float = 5e-5,
        prints: Mapping[str, str] | None = None,
    ) -> None:
        """Write one complete run of ``target`` with auxiliaries ``aux``."""
        metrics = {
            task: dict(value) if isinstance(value, Mapping) else {self.metric: value}
            for task, value in scores.items()
        }
        number = self.numbers.get(study, 0)
        self.numbers[study] = number + 1
        result = TrialResult(
            status=TrialStatus.COMPLETE,
            scores={task: {"dev": values} for task, values in metrics.items()},
            objective=next(iter(metrics[target].values())),
            cost=Cost(seconds=1.0),
        )
        config = TrialConfig(
            target=target, auxiliaries=aux, encoder=encoder, seed=seed, learning_rate=learning_rate
        )
        self.repo.add_run_result(
            study=study,
            trial_number=number,
            config=config,
            result=result,
            task_fingerprints=prints,
        )
