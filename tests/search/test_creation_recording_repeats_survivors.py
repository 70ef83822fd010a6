"""What the mutation audit of study creation, record writing and repeat detection found
untested (``taskgraph.search.creation``, ``recording``, ``repeats``).

A study name holds one Optuna study and one records study: a name whose stored study is another
(another direction, records of another study) is refused before anything is written.  A
resumed study's stored budget is the new one.  Each trial's runs are written once, with the
data they were trained on; a configuration is a repeat only on the same data.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import optuna
import pytest
import sqlalchemy

import taskgraph
from taskgraph.app.studies.running import run_study
from taskgraph.errors import SpecError
from taskgraph.search.engine import StudyEngine
from taskgraph.search.outcome import SeedRun, TrialOutcome, utcnow
from taskgraph.search.progress import CONFIG_ATTR, REPEATS_ATTR, SPEC_ATTR, STATUS_ATTR
from taskgraph.search.recording import RecordWriter
from taskgraph.spec import StudySpec, spec_from_dict
from taskgraph.storage import open_repository
from taskgraph.storage.repository import RECORDS_IDENTITY_ATTR
from taskgraph.tasks import get_task, task_fingerprint
from taskgraph.testing import complete_result, optuna_trial_counts
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus


def fake_spec(**overrides: Any) -> StudySpec:
    """Return a spec of the fake evaluator's tasks (random sampler, one seed, 2 trials),
    ``overrides`` set over its fields."""
    data: dict[str, Any] = {
        "name": "fake",
        "target": "tgt",
        "candidates": ["good", "meh"],
        "search": {},
        "sampler": {"name": "random", "seed": 0},
        "pruner": "none",
        "seeds": 1,
        "budget": {"trials": 2},
    }
    data.update(overrides)
    return spec_from_dict(data)


def run_fake(spec: StudySpec, url: str, fakes: ModuleType, evaluator: Any = None) -> None:
    """Run ``spec`` to its budget on ``url`` with ``evaluator`` (the fake one by default)."""
    engine = StudyEngine(
        spec=spec,
        storage_url=url,
        evaluator=evaluator or fakes.FakeEvaluator(),
        sharing_spaces=fakes.SHARING_SPACES,
    )
    try:
        engine.run()
    finally:
        engine.close()


def run_demo(demo: Path, url: str, trials: int = 2) -> None:
    runner = {"name": "tabular", "table": str(demo.parent / "tab.csv")}
    run_study(demo, storage=url, runner=runner, name="demo", budget__trials=trials)


# -- creation ---------------------------------------------------------------------------------


def test_an_optuna_study_of_the_other_direction_is_refused(
    storage_url: str, fakes: ModuleType
) -> None:
    # No taskgraph attribute to compare: only the direction tells the studies apart.
    optuna.create_study(study_name="fake", storage=storage_url, direction="minimize")
    engine = StudyEngine(
        spec=fake_spec(),
        storage_url=storage_url,
        evaluator=fakes.FakeEvaluator(),
        sharing_spaces=fakes.SHARING_SPACES,
    )
    try:
        with pytest.raises(SpecError, match="exists with direction minimize, the spec says max"):
            engine.open()
    finally:
        engine.close()
    assert optuna_trial_counts(storage_url) == {"fake": 0}


def test_a_study_continued_with_a_larger_budget_stores_it(
    storage_url: str, fakes: ModuleType
) -> None:
    run_fake(fake_spec(budget={"trials": 2}), storage_url, fakes)
    assert taskgraph.study_status("fake", storage=storage_url)["budget"] == 2
    run_fake(fake_spec(budget={"trials": 4}), storage_url, fakes)
    # What `study status` shows and what `study resume` without --trials continues to.
    assert taskgraph.study_status("fake", storage=storage_url)["budget"] == 4
    study = optuna.load_study(study_name="fake", storage=storage_url)
    assert study.user_attrs[SPEC_ATTR]["budget"]["trials"] == 4


@pytest.fixture
def demo(tabular_demo: Path) -> Path:
    return tabular_demo  # tests/conftest.py


def test_spec_less_records_holding_trial_zeros_run_are_not_adopted(demo: Path) -> None:
    # A study deleted under its driver before its first trial's records: the late write
    # leaves a spec-less records study with trial 0's run; a new study would drop its own
    # trial 0 as a repeat of it.
    url = f"sqlite:///{demo.parent / 'd.db'}"
    config = TrialConfig(target="synth_target", auxiliaries=("synth_related",), seed=0)
    with open_repository(url) as repository:
        repository.add_run_result(
            study="demo", trial_number=0, config=config, result=complete_result(config)
        )
    with pytest.raises(SpecError, match=r"study 'demo' has records .* no Optuna study holds"):
        run_demo(demo, url)
    assert optuna_trial_counts(url) == {}


def test_an_optuna_study_tied_to_other_records_is_refused(demo: Path) -> None:
    url = f"sqlite:///{demo.parent / 'd.db'}"
    run_demo(demo, url)
    # As an Optuna study whose records study was deleted and created again (another identity).
    storage = optuna.storages.RDBStorage(url, skip_table_creation=True)
    study_id = storage.get_study_id_from_name("demo")
    storage.set_study_system_attr(study_id, RECORDS_IDENTITY_ATTR, "999@2000-01-01T00:00:00+00:00")
    storage.engine.dispose()
    with open_repository(url, create=False) as repository:
        before = len(repository.runs(study="demo"))
    with pytest.raises(SpecError, match="another study of that name than the Optuna study"):
        run_demo(demo, url, trials=4)
    assert optuna_trial_counts(url) == {"demo": 2}
    with open_repository(url, create=False) as repository:
        assert len(repository.runs(study="demo")) == before


def test_a_half_created_study_takes_the_records_no_study_ran_on(demo: Path) -> None:
    # A screen stored first (spec-less records, a negative trial number), then a driver
    # killed right after Optuna created the study (no attribute, no tie): run again, the
    # study takes both.
    url = f"sqlite:///{demo.parent / 'd.db'}"
    config = TrialConfig(target="synth_target", auxiliaries=("synth_related",), seed=0)
    with open_repository(url) as repository:
        repository.add_run_result(
            study="demo", trial_number=-1, config=config, result=complete_result(config)
        )
        identity = repository.study_identity("demo")
    optuna.create_study(study_name="demo", storage=url, direction="maximize")
    run_demo(demo, url)
    assert optuna_trial_counts(url) == {"demo": 2}
    storage = optuna.storages.RDBStorage(url, skip_table_creation=True)
    study_id = storage.get_study_id_from_name("demo")
    assert storage.get_study_system_attrs(study_id)[RECORDS_IDENTITY_ATTR] == identity
    storage.engine.dispose()


def test_a_spec_differing_only_in_its_data_directory_continues_the_study(
    storage_url: str, fakes: ModuleType, tmp_path: Path
) -> None:
    # `data_dir` is in the search hash but does not define the trials (NOT_THE_STUDY): the
    # same study read from another copy of the data continues.
    run_fake(fake_spec(), storage_url, fakes)
    moved = fake_spec(data_dir=str(tmp_path / "elsewhere"), budget={"trials": 3})
    assert moved.search_hash() != fake_spec().search_hash()
    run_fake(moved, storage_url, fakes)
    assert optuna_trial_counts(storage_url) == {"fake": 3}


def test_an_optuna_study_whose_records_were_removed_continues_and_rewrites_them(
    storage_url: str, fakes: ModuleType
) -> None:
    run_fake(fake_spec(), storage_url, fakes)
    with open_repository(storage_url) as repository:
        repository.delete_study("fake")  # the records alone; the Optuna study stays
    run_fake(fake_spec(budget={"trials": 3}), storage_url, fakes)
    trials = optuna.load_study(study_name="fake", storage=storage_url).trials
    trained = {t.number for t in trials if REPEATS_ATTR not in t.user_attrs}
    assert {0, 1} <= trained  # the first two trials, their records rewritten at open
    with open_repository(storage_url) as repository:
        assert {r.trial_number for r in repository.runs(study="fake")} == trained


# -- recording --------------------------------------------------------------------------------


def write_run(
    writer: RecordWriter,
    number: int,
    config: TrialConfig,
    data_fingerprints: dict[str, str] | None = None,
) -> None:
    """Write trial ``number``'s complete run of ``config`` (``data_fingerprints``: what the
    result says it read)."""
    result = complete_result(config)
    result.data_fingerprints = data_fingerprints
    now = utcnow()
    run = SeedRun(config=config, result=result, started_at=now, finished_at=now)
    writer.write(number, TrialOutcome(runs=(run,)))


def recorded_prints(url: str, study: str = "w") -> dict[int, dict[str, str]]:
    with open_repository(url, create=False) as repository:
        return {r.trial_number: dict(r.task_fingerprints) for r in repository.runs(study=study)}


def test_a_run_is_recorded_with_the_fingerprints_of_its_own_tasks_only(
    storage_url: str,
) -> None:
    # A result (a plug-in runner's) or a runner's source (a whole table's) may name tasks the
    # run did not train on: its record names the data of its task set, nothing else.
    config = TrialConfig(target="synth_target", auxiliaries=("synth_related",), seed=0)
    with open_repository(storage_url) as repository:
        writer = RecordWriter(repository=repository, study="w")
        write_run(writer, 0, config, data_fingerprints={
            "synth_target": "t1", "synth_related": "r1", "synth_conflict": "c1",
        })  # fmt: skip
        table = RecordWriter(
            repository=repository,
            study="tab",
            source_fingerprints={"synth_target": "t9", "synth_conflict": "c9"},
        )
        write_run(table, 0, config)
    assert recorded_prints(storage_url) == {0: {"synth_target": "t1", "synth_related": "r1"}}
    assert recorded_prints(storage_url, "tab") == {0: {"synth_target": "t9"}}


def test_a_task_that_cannot_be_read_leaves_the_others_fingerprints(
    storage_url: str, tmp_path: Path
) -> None:
    # sst2 is read from the data directory, which is gone; the synthetic target needs none.
    config = TrialConfig(target="synth_target", auxiliaries=("sst2",), seed=0)
    with open_repository(storage_url) as repository:
        writer = RecordWriter(repository=repository, study="w", data_dir=tmp_path / "gone")
        write_run(writer, 0, config)  # a result that does not say what it read
    target = task_fingerprint(get_task("synth_target"))
    assert recorded_prints(storage_url) == {0: {"synth_target": target}}


def test_the_records_name_each_catalog_tasks_type(storage_url: str, tmp_path: Path) -> None:
    config = TrialConfig(target="synth_target", auxiliaries=("sst2", "not_in_catalog"), seed=0)
    with open_repository(storage_url) as repository:
        writer = RecordWriter(repository=repository, study="w", data_dir=tmp_path)
        write_run(writer, 0, config)
    engine = sqlalchemy.create_engine(storage_url)
    try:
        with engine.connect() as connection:  # docs/storage.md: tg_tasks (name, type, ...)
            rows = connection.execute(sqlalchemy.text("SELECT name, type FROM tg_tasks")).all()
    finally:
        engine.dispose()
    assert dict(rows) == {
        "synth_target": get_task("synth_target").type.value,
        "sst2": get_task("sst2").type.value,
        "not_in_catalog": None,
    }


# -- repeats ----------------------------------------------------------------------------------


def test_a_crash_between_two_seeds_records_has_the_second_written_at_open(
    storage_url: str, fakes: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first seed's record is held: the second seed's run is another measurement.
    spec = fake_spec(seeds=2, budget={"trials": 3})
    engine = StudyEngine(
        spec=spec,
        storage_url=storage_url,
        evaluator=fakes.FakeEvaluator(),
        sharing_spaces=fakes.SHARING_SPACES,
    )
    write = engine.write_records

    def first_seed_only(number: int, outcome: TrialOutcome) -> None:
        write(number, TrialOutcome(runs=outcome.runs[:1]))

    monkeypatch.setattr(engine, "write_records", first_seed_only)
    try:
        engine.run()
        trained = [
            t.number
            for t in engine.require_study().get_trials()
            if REPEATS_ATTR not in t.user_attrs
        ]
        written = engine.reconcile()
    finally:
        engine.close()
    with open_repository(storage_url) as repository:
        keys = sorted((r.trial_number, r.seed) for r in repository.runs(study="fake"))
    assert keys == [(number, seed) for number in trained for seed in (0, 1)]
    # What it says it wrote: a repeat's second seed is its original's, written just before
    # it (counted too, while nothing was inserted for it, before).
    assert written == len(trained)


class FailsFirst:
    """The fake evaluator, whose first training fails (out of memory, say) and whose
    later trainings of the same configuration succeed."""

    def __init__(self, fakes: ModuleType) -> None:
        self.fake = fakes.FakeEvaluator()

    def evaluate(self, config: TrialConfig, **kwargs: Any) -> Any:
        if not self.fake.calls:
            self.fake.calls.append(config)
            return TrialResult.failed("CUDA out of memory", cost=Cost(seconds=0.01))
        return self.fake.evaluate(config, **kwargs)


def test_a_failed_runs_lost_record_is_written_although_a_retry_completed_it(
    storage_url: str, fakes: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The failed baseline is retried and completes; the failure is a record of its own (a
    # repeat is only ever a complete run), written when its first write was lost.
    spec = fake_spec(budget={"trials": 3, "max_failures": 1})
    engine = StudyEngine(
        spec=spec,
        storage_url=storage_url,
        evaluator=FailsFirst(fakes),
        sharing_spaces=fakes.SHARING_SPACES,
    )
    write = engine.write_records

    def lose_the_failure(number: int, outcome: TrialOutcome) -> None:
        if number != 0:  # trial 0's failure record is lost; the retry's run is recorded
            write(number, outcome)

    monkeypatch.setattr(engine, "write_records", lose_the_failure)
    try:
        engine.run()
    finally:
        engine.close()
    run_fake(spec, storage_url, fakes)  # opened again: the lost record is written
    with open_repository(storage_url) as repository:
        runs = repository.runs(study="fake", status=None)
    failed = [r for r in runs if r.status == "failed"]
    assert len(failed) == 1 and failed[0].trial_number == 0
    assert any(
        r.status == "complete" and r.model_config_hash == failed[0].model_config_hash
        and r.task_set == failed[0].task_set
        for r in runs
    )  # fmt: skip


class FirstReadOldData:
    """The fake evaluator, whose first run with an auxiliary (trial 1's first seed, after the
    baseline) read the target's file before it was edited: its result says so; every other
    run read the file as it is now."""

    def __init__(self, fakes: ModuleType) -> None:
        self.fake = fakes.FakeEvaluator()

    def evaluate(self, config: TrialConfig, **kwargs: Any) -> Any:
        first = not any(c.auxiliaries for c in self.fake.calls)
        result = self.fake.evaluate(config, **kwargs)
        if first and config.auxiliaries:
            result.data_fingerprints = {"tgt": "before the edit"}
        return result


def test_a_trial_whose_first_seed_read_older_data_is_not_repeated(
    storage_url: str, fakes: ModuleType
) -> None:
    # Trial 1's seeds read two versions of the target: its configuration proposed again is
    # trained again (its first seed's measurement is of other data), not told trial 1's value.
    spec = fake_spec(
        candidates=["good"], search={"auxiliaries": {"min_size": 0, "max_size": 1}},
        seeds=2, budget={"trials": 4},
    )  # fmt: skip
    run_fake(spec, storage_url, fakes, evaluator=FirstReadOldData(fakes))
    trials = optuna.load_study(study_name="fake", storage=storage_url).trials
    assert trials[1].user_attrs[CONFIG_ATTR]["auxiliaries"] == ["good"]
    again = [t for t in trials[2:] if t.params == trials[1].params]
    assert again  # the sampler proposed trial 1's configuration again
    assert REPEATS_ATTR not in again[0].user_attrs
    assert all(t.user_attrs.get(REPEATS_ATTR) != 1 for t in trials)


class SecondSeedStopped:
    """The fake evaluator, whose second run with an auxiliary (trial 1's second seed) is
    stopped by a scheduler: a pruned result, after the first seed's complete one."""

    def __init__(self, fakes: ModuleType) -> None:
        self.fake = fakes.FakeEvaluator()

    def evaluate(self, config: TrialConfig, **kwargs: Any) -> Any:
        result = self.fake.evaluate(config, **kwargs)
        if sum(1 for c in self.fake.calls if c.auxiliaries) == 2 and config.auxiliaries:
            scores = {config.target: {"dev": {"accuracy": 0.3}}}
            return TrialResult(
                status=TrialStatus.PRUNED, objective=0.3, scores=scores, cost=Cost(seconds=0.1)
            )
        return result


def test_a_trial_stopped_by_a_scheduler_is_never_repeated(
    storage_url: str, fakes: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ray Tune tells a trial its scheduler stopped as complete (taskgraph keeps the true
    # state, pruned, in its status): such a trial's configuration is trained again, not told
    # the stopped trial's value, although its first seed's run is complete and recorded.
    tell = optuna.Study.tell

    def tell_as_ray_tune(self: optuna.Study, trial: Any, values: Any = None, **kw: Any) -> Any:
        if kw.get("state") == optuna.trial.TrialState.PRUNED:
            return tell(self, trial, 0.3)
        return tell(self, trial, values, **kw)

    monkeypatch.setattr(optuna.Study, "tell", tell_as_ray_tune)
    spec = fake_spec(
        candidates=["good"], search={"auxiliaries": {"min_size": 0, "max_size": 1}},
        seeds=2, budget={"trials": 4},
    )  # fmt: skip
    run_fake(spec, storage_url, fakes, evaluator=SecondSeedStopped(fakes))
    trials = optuna.load_study(study_name="fake", storage=storage_url).trials
    stopped = trials[1]
    assert stopped.state == optuna.trial.TrialState.COMPLETE
    assert stopped.user_attrs[STATUS_ATTR] == "pruned"
    again = [t for t in trials[2:] if t.params == stopped.params]
    assert again and REPEATS_ATTR not in again[0].user_attrs
    assert all(t.user_attrs.get(REPEATS_ATTR) != 1 for t in trials)


def test_a_repeat_names_the_latest_trial_of_its_configuration(
    storage_url: str, fakes: ModuleType
) -> None:
    # The earlier trial a repeat names (`taskgraph:repeats`, what `study show` marks it with)
    # is the latest of its configuration on the same data, a repeat itself or not, as
    # documented; its value is the one the configuration's training gave.
    spec = fake_spec(
        candidates=["good"], search={"auxiliaries": {"min_size": 0, "max_size": 1}},
        budget={"trials": 5},
    )  # fmt: skip
    run_fake(spec, storage_url, fakes)
    trials = optuna.load_study(study_name="fake", storage=storage_url).trials
    repeats = [t for t in trials if REPEATS_ATTR in t.user_attrs]
    assert len(repeats) >= 2  # a repeat of a repeat among them
    for trial in repeats:
        same = [t.number for t in trials[: trial.number] if t.params == trial.params]
        assert trial.user_attrs[REPEATS_ATTR] == max(same)
        assert trial.value == trials[min(same)].value
