"""Under the Ray runner a configuration the study already trained is a repeat, as locally.

The driver's define-by-run asks the engine's repeat check (``StudyEngine.same_configuration``):
a repeat gets ``taskgraph:repeats`` and the earlier trial's runs, which the worker reports
without training, so ``study show`` marks it and measures it like the trial it repeats.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import optuna
import pytest

from taskgraph.search.engine import StudyEngine
from taskgraph.search.progress import REPEATS_ATTR
from taskgraph.search.report import study_report
from taskgraph.spec import spec_from_dict
from taskgraph.storage import open_repository
from taskgraph.testing import load_fakes

pytestmark = pytest.mark.ray


def fake_factory(spec: Any, data_dir: Any) -> Any:
    return load_fakes().FakeEvaluator(n_evals=2)


def test_a_repeated_configuration_is_a_repeat_under_ray(tmp_path: Path, local_ray: None) -> None:
    from taskgraph.runners.ray import RayTuneRunner

    fakes = load_fakes()
    url = f"sqlite:///{tmp_path / 'ray.db'}"
    spec = spec_from_dict(
        {
            "name": "rayrepeat",
            "target": "tgt",
            "candidates": ["good"],  # one set besides the baseline: trials 2 and 3 repeat 1
            "search": {"sharing": ["hard"], "auxiliaries": {"min_size": 1}},
            "budget": {"trials": 4},
            "sampler": {"name": "random", "seed": 0},
            "pruner": "none",
            "runner": {
                "name": "ray",
                "num_cpus": 1,
                "max_concurrent_trials": 1,
                "experiment_dir": str(tmp_path / "tune"),
            },
        }
    )
    engine = StudyEngine(spec=spec, storage_url=url, sharing_spaces=fakes.SHARING_SPACES)
    engine.open()
    try:
        summary = RayTuneRunner(engine=engine, evaluator_factory=fake_factory).run()
    finally:
        engine.close()
    assert summary.progress.n_done == 4
    study = optuna.load_study(study_name="rayrepeat", storage=url)
    repeats = {t.number: t.user_attrs.get(REPEATS_ATTR) for t in study.trials}
    assert repeats == {0: None, 1: None, 2: 1, 3: 2}  # as the local engine: the latest
    assert study.trials[2].value == study.trials[3].value == study.trials[1].value
    with open_repository(url) as repo:
        assert sorted(r.trial_number for r in repo.runs(study="rayrepeat")) == [0, 1]
    report = study_report(study)
    rows = {row["trial"]: row for row in report["gains"]}
    assert report["n_repeats"] == 2 and rows[3]["repeat_of"] == 1
    assert rows[3]["measured_absolute_gain"] == pytest.approx(rows[1]["measured_absolute_gain"])


def test_the_define_by_run_pickles_without_the_engine() -> None:
    from taskgraph.runners.ray.driver import DefineByRun

    space = object()
    define = DefineByRun(space=space, same_configuration=lambda number, config: None)  # type: ignore[arg-type]
    assert pickle.loads(pickle.dumps(define)).same_configuration is None
