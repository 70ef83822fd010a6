"""A Ray trial the scheduler stops (or whose worker dies) sends no final report: its record is
written by the driver from the worker's evaluation reports, with the data it trained on and
its cost (the files' fingerprints at write time and an empty cost were recorded)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from taskgraph.spec import spec_from_dict
from taskgraph.testing import load_fakes
from taskgraph.training.callbacks import TrainerCallback, TrainerControl, TrainerState
from taskgraph.trial import TrialConfig, TrialStatus

pytestmark = pytest.mark.ray

WORDS = ["good", "bad", "fine", "awful", "great", "poor", "nice", "ugly", "happy", "sad"]
TASKS = ("tgt", "aux1", "aux2", "aux3")


@contextmanager
def _searcher(tmp_path: Path, name: str) -> Iterator[Any]:
    """Yield the Ray driver's searcher on an opened two-candidate fake study (no Tune)."""
    from taskgraph.runners.ray.driver import Book, DefineByRun, TruthfulOptunaSearch
    from taskgraph.runners.ray.worker import METRIC
    from taskgraph.search.engine import StudyEngine

    spec = spec_from_dict({
        "name": name, "target": "tgt", "candidates": ["good", "bad"],
        "runner": {"name": "ray", "experiment_dir": str(tmp_path / "tune")},
    })  # fmt: skip
    engine = StudyEngine(
        spec=spec, storage_url=f"sqlite:///{tmp_path / f'{name}.db'}",
        sharing_spaces=load_fakes().SHARING_SPACES,
    )  # fmt: skip
    study = engine.open()
    heartbeat = SimpleNamespace(add=lambda trial_id: None, discard=lambda trial_id: None)
    searcher = TruthfulOptunaSearch(
        engine=engine, book=Book(), heartbeat=heartbeat,
        space=DefineByRun(space=engine.space), metric=METRIC, mode="max",
        sampler=study.sampler, study_name=spec.name, storage=engine.storage,
    )  # fmt: skip
    try:
        yield searcher
    finally:
        engine.close()


#: what the trainer passes to ``on_train_begin`` besides the fingerprints (a stage this trial ran)
PRETRAINING = {"scheme": "uniform", "steps": 8, "tokens": 4096, "seconds": 2.5, "cached": False}
SELECTION = {"good": {"examples": 40, "pool": 40, "kept": 20, "selected": "AAA=", "sha256": "x"}}


def _worker_reports(
    monkeypatch: pytest.MonkeyPatch, *, pretraining: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Return the reports a worker's reporter makes over two evaluations of a real model."""
    import torch

    from taskgraph.runners.ray import worker

    reports: list[dict[str, Any]] = []
    monkeypatch.setattr(worker.tune, "report", lambda metrics, **kwargs: reports.append(metrics))
    monkeypatch.setattr(worker, "worker_host", lambda: "node-a ray-node:1")
    fingerprints = {"tgt": "f" * 64, "good": "a" * 64}
    reporter = worker.TuneReportCallback(threads=2)
    config = TrialConfig(target="tgt", auxiliaries=("good",))
    state, control = TrainerState(max_steps=24), TrainerControl()
    model = torch.nn.Linear(2, 2)
    # what the trainer passes: the fingerprints of the data it read
    reporter.on_train_begin(
        config, state, control, model=model, data_fingerprints=fingerprints,
        pretraining=pretraining, selection=SELECTION,
    )  # fmt: skip
    for step, value in ((6, 0.5), (12, 0.75)):
        state.global_step = state.total_steps = state.target_steps = step
        state.examples, state.tokens = step * 16, step * 100
        reporter.on_evaluate(config, state, control, model=model, metrics={}, objective=value)
        reports[-1]["time_total_s"] = step / 2  # what Tune adds
    return reports


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
def test_a_pruned_or_died_trial_keeps_the_data_and_cost_of_its_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taskgraph.runners.ray.worker import DATA

    reports = _worker_reports(monkeypatch)
    # the fingerprints travel once (Tune keeps every report), the cost in each
    assert DATA in reports[0] and DATA not in reports[1]
    with _searcher(tmp_path, "pruned") as searcher:
        assert searcher.suggest("tune-1") is not None
        searcher.book.results["tune-1"] = reports
        for error, status in ((False, TrialStatus.PRUNED), (True, TrialStatus.FAILED)):
            (run,) = searcher._outcome("tune-1", None, error=error).runs
            result = run.result
            assert result.status is status
            assert result.data_fingerprints == {"tgt": "f" * 64, "good": "a" * 64}
            cost = result.cost
            assert (cost.total_steps, cost.target_steps) == (12, 12)
            assert (cost.examples, cost.tokens) == (12 * 16, 12 * 100)
            assert (cost.device, cost.threads) == ("cpu/2 threads", 2)
            assert run.host == "node-a ray-node:1"
        (run,) = searcher._outcome("tune-1", None, error=False).runs
        assert run.result.intermediate == [(6, 0.5), (12, 0.75)]
        assert run.result.cost.seconds == 6.0
        assert run.result.selection == SELECTION
        assert run.result.pretraining is None


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
@pytest.mark.parametrize("cached", [False, True])
def test_a_pruned_trial_keeps_its_pretraining_stage_and_its_cost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cached: bool
) -> None:
    # A finished trial's cost includes the stage it ran (train_trial); a pruned one's was
    # only the fine-tuning's, and its record had no pretraining report.
    stage = {**PRETRAINING, "cached": cached}
    reports = _worker_reports(monkeypatch, pretraining=stage)
    with _searcher(tmp_path, "pretrained") as searcher:
        assert searcher.suggest("tune-1") is not None
        searcher.book.results["tune-1"] = reports
        for error in (False, True):
            (run,) = searcher._outcome("tune-1", None, error=error).runs
            result = run.result
            assert result.pretraining == stage
            ran = 0 if cached else 1
            assert result.cost.pretrain_seconds == ran * 2.5
            assert result.cost.pretrain_tokens == ran * 4096
            assert result.cost.tokens == 12 * 100 + ran * 4096


# --------------------------------------------------------------------- one real Ray run


def _write_data(folder: Path) -> None:
    import random

    draw = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    for task in TASKS:
        for split, n in (("train", 120), ("dev", 40)):
            lines = ["text\tlabel"]
            for _ in range(n):
                words = [draw.choice(WORDS) for _ in range(6)]
                positive = sum(w in ("good", "fine", "great", "nice", "happy") for w in words) >= 3
                label = "pos" if positive else "neg"
                if task == "aux3":
                    label = draw.choice(["pos", "neg"])  # an auxiliary that does not help
                lines.append(" ".join(words) + "\t" + label)
            (folder / f"{task}_{split}.tsv").write_text("\n".join(lines) + "\n")


def _spec_dict(tmp_path: Path, name: str) -> dict[str, Any]:
    def task(task: str) -> dict[str, Any]:
        return {
            "name": task, "format": "tsv", "type": "sentence_classification",
            "label_field": "label", "metrics": ["accuracy"],
            "files": {s: str(tmp_path / "data" / f"{task}_{s}.tsv") for s in ("train", "dev")},
            "reader_options": {"header": True, "text_column": "text", "label_column": "label"},
        }  # fmt: skip

    return {
        "name": name, "target": "tgt",
        "objective": {"metric": "accuracy", "split": "dev", "direction": "maximize"},
        "tasks": [task(t) for t in TASKS], "candidates": list(TASKS[1:]),
        "encoder": {"name": "tiny-bert", "max_length": 16},
        "search": {
            "auxiliaries": {"max_size": 1}, "sharing": ["hard"], "mixing": {"scheme": "uniform"},
            "learning_rate": 3.0e-3, "max_steps": 24, "step_budget": "target", "batch_size": 16,
        },
        "training": {"eval_every": 6, "hyperparameters": {"max_eval_examples": 40}},
        "seeds": 1, "budget": {"trials": 4, "max_failures": 1},
        "sampler": {"name": "graph", "seed": 0, "options": {"max_repeats": 1}},
        "pruner": {"name": "asha", "min_resource": 1, "reduction_factor": 2},
        "runner": {
            "name": "ray", "num_cpus": 1, "max_concurrent_trials": 1,
            "experiment_dir": str(tmp_path / "tune"),
        },
    }  # fmt: skip


class _EditsTarget(TrainerCallback):
    """Adds an example to the target's dev file once training began (every split was read):
    the records must keep the version each trial read, not the file's at write time."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_begin(
        self, args: TrialConfig, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if state.global_step == 0 and state.phase == "joint":
            with self.path.open("a") as file:
                file.write(f"good good good great nice fine {args.task_set_key}\tpos\n")


def editing_factory(spec: Any, data_dir: Any) -> Any:
    """Worker-side evaluator: the runner's own, editing the target's dev file as each trial
    begins training."""
    from taskgraph.runners.ray.worker import local_evaluator

    evaluator = local_evaluator(spec, data_dir)
    edit = _EditsTarget(Path(spec.tasks[0].files["dev"]))
    plain = evaluator.evaluate

    def evaluate(config: TrialConfig, *, callbacks: Any = (), **kwargs: Any) -> Any:
        return plain(config, callbacks=[*callbacks, edit], **kwargs)

    evaluator.evaluate = evaluate
    return evaluator


def test_a_ray_trial_pruned_by_asha_keeps_the_data_it_read_and_its_cost(
    tmp_path: Path, local_ray: None
) -> None:
    from taskgraph.runners.ray import RayTuneRunner
    from taskgraph.search.engine import StudyEngine
    from taskgraph.spec.checks import inline_task_defs
    from taskgraph.storage import open_repository
    from taskgraph.tasks.loading import task_fingerprint

    _write_data(tmp_path / "data")
    spec = spec_from_dict(_spec_dict(tmp_path, "asha"))
    url = f"sqlite:///{tmp_path / 'ray.db'}"
    engine = StudyEngine(spec=spec, storage_url=url, task_defs=inline_task_defs(spec))
    engine.open()
    try:
        RayTuneRunner(engine=engine, evaluator_factory=editing_factory).run()
    finally:
        engine.close()
    with open_repository(url) as repo:
        runs = sorted(repo.runs(study="asha"), key=lambda r: r.trial_number)
    assert any(r.status == "pruned" for r in runs), [r.status for r in runs]
    # one trial at a time, each editing the file after reading it: every trial read another
    # version, and none the file's last (written after the last trial read it)
    now = task_fingerprint(inline_task_defs(spec)["tgt"])
    read = [r.task_fingerprints.get("tgt") for r in runs]
    shown = [(r.status, (f or "")[:8]) for r, f in zip(runs, read, strict=True)]
    assert None not in read and now not in read and len(set(read)) == len(read), shown
    for run in runs:
        assert run.total_steps > 0 and run.target_steps > 0, run
        assert run.cost_examples > 0 and run.cost_tokens > 0, run
        assert run.device.startswith("cpu/"), run
