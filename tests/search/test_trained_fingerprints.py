"""Each run is recorded with the version of the data it was trained on, whenever files change.

A data file edited while ``study run`` goes on used to relabel runs: the record writer kept
each task set's fingerprints for the whole process and computed them when it wrote, after
training, so a run that read the old file could be recorded with the new fingerprint and one
that read the new file with the old; the repeat check read the same stale fingerprints and
took a configuration proposed after the edit for a repeat of its run on the old data.  The
trainer's result now says what it read (``TrialResult.data_fingerprints``): the records carry
that, and the repeat check and the catch-up at resume compare it with fingerprints computed
afresh.  The evaluator here reads the inline tasks' fingerprints as the trainer does, and
edits the target's dev file while one trial trains.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import pytest

from taskgraph.search.engine import StudyEngine
from taskgraph.search.outcome import SeedRun, TrialOutcome, utcnow
from taskgraph.search.progress import REPEATS_ATTR
from taskgraph.search.recording import RecordWriter
from taskgraph.spec import StudySpec, spec_from_dict
from taskgraph.spec.checks import inline_task_defs
from taskgraph.storage import open_repository
from taskgraph.tasks import task_fingerprint
from taskgraph.testing import SHARING_SPACES, FakeEvaluator
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus

OLD = "Ada\tB-PER\nran\tO\n\n"
NEW = "Bobby\tB-PER\nsat\tO\n\n"  # another size: a same-size write may keep the times


def _write_files(root: Path) -> None:
    for task in ("my_t", "my_a"):
        for split in ("train", "dev"):
            (root / f"{task}_{split}.iob").write_text(OLD, encoding="utf-8")


def _spec(root: Path, trials: int) -> StudySpec:
    files = {
        task: {split: str(root / f"{task}_{split}.iob") for split in ("train", "dev")}
        for task in ("my_t", "my_a")
    }
    return spec_from_dict(
        {
            "name": "fp",
            "target": "my_t",
            "candidates": ["my_a"],
            "tasks": [
                {"name": task, "format": "iob", "type": "token_tagging", "label_field": "ner",
                 "files": files[task]}
                for task in ("my_t", "my_a")
            ],
            "search": {"auxiliaries": {"min_size": 0, "max_size": 1},
                       "learning_rate": [1e-4, 1e-3]},
            "sampler": {"name": "random", "seed": 0},
            "pruner": "none",
            "seeds": 1,
            "budget": {"trials": trials, "max_failures": 0},
        }
    )  # fmt: skip


class LoadingEvaluator(FakeEvaluator):
    """The fake's scores, with the fingerprints of the files as read when the trial starts (what
    the trainer reports); ``edit`` runs after the read of call ``edit_on`` (1-based), as a file
    saved while that trial trains."""

    def __init__(self, spec: StudySpec, *, edit_on: int | None = None, edit: Any = None) -> None:
        super().__init__()
        self.defs = inline_task_defs(spec)
        self.edit_on = edit_on
        self.edit = edit
        self.loaded: dict[str, dict[str, str]] = {}  # checkpoint key -> what it read

    def evaluate(
        self, config: TrialConfig, *, callbacks: Sequence[Any] = (), checkpoint_key: Any = None
    ) -> TrialResult:
        read = {name: task_fingerprint(self.defs[name]) for name in config.task_set}
        if self.edit_on is not None and len(self.calls) + 1 == self.edit_on:
            self.edit()
        result = super().evaluate(config, callbacks=callbacks, checkpoint_key=checkpoint_key)
        result.data_fingerprints = read
        self.loaded[str(checkpoint_key)] = read
        return result


def _engine(spec: StudySpec, url: str, evaluator: Any) -> StudyEngine:
    return StudyEngine(
        spec=spec, storage_url=url, evaluator=evaluator, sharing_spaces=SHARING_SPACES,
        task_defs=inline_task_defs(spec),
    )  # fmt: skip


def _run(spec: StudySpec, url: str, evaluator: Any) -> None:
    engine = _engine(spec, url, evaluator)
    try:
        engine.run()
    finally:
        engine.close()


def _recorded(url: str) -> dict[int, dict[str, str]]:
    with open_repository(url) as repo:
        return {r.trial_number: dict(r.task_fingerprints) for r in repo.runs(study="fp")}


def test_a_file_edited_during_a_run_leaves_each_record_with_the_data_its_run_read(
    tmp_path: Path,
) -> None:
    _write_files(tmp_path)
    spec = _spec(tmp_path, 8)
    dev = tmp_path / "my_t_dev.iob"
    defs = inline_task_defs(spec)
    old_print = task_fingerprint(defs["my_t"])
    # Saved while the second trained trial trains, after it read the files.
    evaluator = LoadingEvaluator(spec, edit_on=2, edit=lambda: dev.write_text(NEW, "utf-8"))
    url = f"sqlite:///{tmp_path / 'fp.db'}"
    _run(spec, url, evaluator)
    new_print = task_fingerprint(defs["my_t"])
    assert new_print != old_print
    trials = optuna.load_study(study_name="fp", storage=url).trials
    assert len(trials) == 8
    trained = {int(key.removeprefix("trial-")): read for key, read in evaluator.loaded.items()}
    edited_during = int(str(evaluator.checkpoint_keys[1]).removeprefix("trial-"))
    for number, read in trained.items():
        assert read["my_t"] == (old_print if number <= edited_during else new_print)
    # Every trained trial is recorded with what it read, the one trained while the file
    # changed included.
    recorded = _recorded(url)
    assert set(recorded) == set(trained)
    for number, read in trained.items():
        assert recorded[number] == read, number
    # A trial started after the edit repeats only a trial trained on the new data: a
    # configuration trained on the old data is trained again (here trial 0's).
    configs = {t.number: tuple(sorted(t.params.items())) for t in trials}
    repeats = {t.number: t.user_attrs.get(REPEATS_ATTR) for t in trials}
    for trial in trials[edited_during + 1 :]:
        source = trial.number
        while repeats[source] is not None:
            source = repeats[source]
        assert trained[source]["my_t"] == new_print, (trial.number, source)
    later = [n for n in trained if n > edited_during]
    assert any(configs[n] == configs[m] for n in later for m in trained if m < edited_during)


def test_the_writer_records_the_fingerprints_the_result_carries_else_those_of_now(
    tmp_path: Path,
) -> None:
    _write_files(tmp_path)
    spec = _spec(tmp_path, 1)
    defs = inline_task_defs(spec)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    old_print = task_fingerprint(defs["my_t"])

    def result(prints: dict[str, str] | None) -> TrialResult:
        return TrialResult(
            status=TrialStatus.COMPLETE, objective=0.5, scores={"my_t": {"dev": {"f1": 0.5}}},
            cost=Cost(seconds=0.1), data_fingerprints=prints,
        )  # fmt: skip

    def outcome(number: int, prints: dict[str, str] | None) -> TrialOutcome:
        # another configuration each: a repeat on the same data is not written again
        config = TrialConfig(target="my_t", learning_rate=1e-4 * (number + 1))
        now = utcnow()
        run = SeedRun(config=config, result=result(prints), started_at=now, finished_at=now)
        return TrialOutcome(runs=(run,))

    with open_repository(url) as repo:
        writer = RecordWriter(repository=repo, study="fp", task_defs=defs)
        writer.write(0, outcome(0, None))
        (tmp_path / "my_t_dev.iob").write_text(NEW, encoding="utf-8")
        new_print = task_fingerprint(defs["my_t"])
        # trained on the old file, written after the edit
        trained = {"my_t": old_print}
        writer.write(1, outcome(1, trained))
        # a result that does not say (a fake runner, an older checkpoint): the files now
        writer.write(2, outcome(2, None))
    assert _recorded(url) == {0: {"my_t": old_print}, 1: {"my_t": old_print},
                              2: {"my_t": new_print}}  # fmt: skip
    # and the result's field survives the round trip a stored trial or a Ray worker makes
    assert TrialResult.from_dict(result(trained).to_dict()).data_fingerprints == trained


@pytest.mark.parametrize("later", ["reverted", "edited_again"])
def test_a_run_lost_before_it_was_written_is_written_at_resume_with_the_data_it_read(
    tmp_path: Path, later: str
) -> None:
    _write_files(tmp_path)
    spec = _spec(tmp_path, 6)
    dev = tmp_path / "my_t_dev.iob"
    defs = inline_task_defs(spec)
    url = f"sqlite:///{tmp_path / 'r.db'}"
    _run(spec, url, LoadingEvaluator(spec))  # on the old data: two configurations trained
    old_print = task_fingerprint(defs["my_t"])
    dev.write_text(NEW, encoding="utf-8")
    new_print = task_fingerprint(defs["my_t"])
    second = LoadingEvaluator(spec)
    _run(_spec(tmp_path, 12), url, second)  # the same configurations trained on the new data
    trained = {int(key.removeprefix("trial-")): read for key, read in second.loaded.items()}
    assert trained and all(read["my_t"] == new_print for read in trained.values())
    lost = min(trained)
    # The run was lost before it was written (a crash between telling and writing).
    with sqlite3.connect(tmp_path / "r.db") as connection:
        (run_id,) = connection.execute(
            "select id from tg_runs where trial_number = ?", (lost,)
        ).fetchone()
        connection.execute("delete from tg_scores where run_id = ?", (run_id,))
        connection.execute("delete from tg_runs where id = ?", (run_id,))
    if later == "reverted":
        dev.write_text(OLD, encoding="utf-8")  # the old run of its configuration now matches
        assert task_fingerprint(defs["my_t"]) == old_print
    else:
        dev.write_text("Cy\tB-PER\nate\tO\n\n", encoding="utf-8")
    engine = _engine(_spec(tmp_path, 12), url, LoadingEvaluator(spec))
    try:
        engine.open()  # catches up the unwritten runs
    finally:
        engine.close()
    assert _recorded(url).get(lost) == trained[lost]


def _tasks(root: Path) -> dict[str, Any]:
    from taskgraph.tasks import define_task

    tasks = {}
    for task in ("my_t", "my_a"):
        (root / task).mkdir()
        for split in ("train", "dev"):
            (root / task / f"{split}.iob").write_text(OLD, encoding="utf-8")
        tasks[task] = define_task(
            task, format="iob", type="token_tagging", label_field="ner", path=str(root / task),
            metrics=["f1"],
        )  # fmt: skip
    return tasks


def _tiny(auxiliaries: tuple[str, ...] = ("my_a",)) -> TrialConfig:
    return TrialConfig(
        target="my_t", auxiliaries=auxiliaries, encoder="tiny-bert", max_steps=1, batch_size=2,
        max_length=16,
    )  # fmt: skip


def test_the_trainer_reports_the_fingerprints_of_the_data_it_read(tmp_path: Path) -> None:
    from taskgraph.training import train_trial

    tasks = _tasks(tmp_path)
    result = train_trial(_tiny(), tasks=tasks, device="cpu")
    assert result.status is TrialStatus.COMPLETE, result.failure_reason
    assert result.data_fingerprints == {name: task_fingerprint(tasks[name]) for name in tasks}


def test_a_file_changed_while_the_trainer_reads_fails_the_trial_as_a_data_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import taskgraph.training.run as run
    from taskgraph.training import train_trial

    tasks = _tasks(tmp_path)
    build = run.build_trainer

    def edited_while_reading(*args: Any, **kwargs: Any) -> Any:
        trainer = build(*args, **kwargs)
        (tmp_path / "my_t" / "dev.iob").write_text(NEW, encoding="utf-8")
        return trainer

    monkeypatch.setattr(run, "build_trainer", edited_while_reading)
    result = train_trial(_tiny(), tasks=tasks, device="cpu")
    assert result.status is TrialStatus.FAILED
    assert result.failure_reason == (
        "data error: the files of task 'my_t' changed while the trial read them; it was not "
        "trained on one version of its data"
    )


def test_features_read_after_a_file_changed_are_not_cached_under_the_old_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The feature cache's key holds the data's fingerprint, taken before the file is read: an
    # edit in between stored the new file's examples under the old data's key, and once the
    # file was back as it was, a trial got the other version's examples from the cache.
    import uuid

    import taskgraph.training.task_data as task_data
    from taskgraph.models import load_encoder
    from taskgraph.tasks import define_task

    monkeypatch.setenv("TASKGRAPH_FEATURE_CACHE", "memory")
    word = f"W{uuid.uuid4().hex[:8]}"  # data no other test (or earlier run) cached
    first = f"{word}\tB-PER\nran\tO\n\n"
    (tmp_path / "dev.iob").write_text(first, encoding="utf-8")
    task = define_task(
        "my_t", format="iob", type="token_tagging", label_field="ner", path=str(tmp_path),
        metrics=["f1"],
    )  # fmt: skip
    tokenizer = load_encoder("tiny-bert").tokenizer
    real_load = task_data.load_examples

    def edited_before_the_read(*args: Any, **kwargs: Any) -> Any:
        (tmp_path / "dev.iob").write_text("Zoe\tB-PER\nsat down\tO\n\n", encoding="utf-8")
        return real_load(*args, **kwargs)

    def encoded() -> list[Any]:
        examples, _ = task_data._encoded(
            task, "dev", tokenizer, data_dir=None, cap=None, subset_key="my_t/dev",
            labels=["B-PER", "O"], max_length=16, doc_stride=8, keep_examples=True,
        )  # fmt: skip
        return examples

    monkeypatch.setattr(task_data, "load_examples", edited_before_the_read)
    assert encoded()[0].tokens[0] == "Zoe"  # this read saw the edit
    monkeypatch.setattr(task_data, "load_examples", real_load)
    (tmp_path / "dev.iob").write_text(first, encoding="utf-8")  # back as it was
    assert encoded()[0].tokens[0] == word


def test_a_runners_source_fingerprints_win_over_what_the_result_says(tmp_path: Path) -> None:
    # A published table's runner names the table's version of each task: a result that also
    # carries fingerprints (as any trainer's does) must not replace them.
    url = f"sqlite:///{tmp_path / 's.db'}"
    result = TrialResult(
        status=TrialStatus.COMPLETE, objective=0.5, scores={"a": {"dev": {"acc": 0.5}}},
        cost=Cost(seconds=0.1), data_fingerprints={"a": "T"},
    )  # fmt: skip
    config = TrialConfig(target="a")
    now = utcnow()
    run = SeedRun(config=config, result=result, started_at=now, finished_at=now)
    with open_repository(url) as repo:
        writer = RecordWriter(
            repository=repo, study="fp", task_defs={}, source_fingerprints={"a": "S"}
        )
        assert writer.run_fingerprints(config, result) == {"a": "S"}
        writer.write(0, TrialOutcome(runs=(run,)))
    assert _recorded(url) == {0: {"a": "S"}}
