"""A study created before `search.step_budget` existed resumes under the total budget."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import optuna

from taskgraph.search.engine import StudyEngine
from taskgraph.search.progress import SEARCH_HASH_ATTR, SPEC_ATTR
from taskgraph.search.study import stored_spec
from taskgraph.spec import spec_from_dict
from taskgraph.trial import config_hash

DATA: dict[str, Any] = {
    "name": "old",
    "target": "tgt",
    "candidates": ["good", "bad"],
    "sampler": {"name": "random", "seed": 0},
    "budget": {"trials": 2},
}


def test_old_study_resumes_with_the_total_budget(storage_url: str, fakes: ModuleType) -> None:
    spec = spec_from_dict({**DATA, "search": {"step_budget": "total"}})
    engine = StudyEngine(
        spec=spec,
        storage_url=storage_url,
        evaluator=fakes.FakeEvaluator(),
        sharing_spaces=fakes.SHARING_SPACES,
    )
    engine.run()
    engine.close()
    # Make it look as the code before the field left it: no step_budget in the stored spec,
    # and the search hash of a dump without it (nor the fields added after it).
    study = optuna.load_study(study_name="old", storage=storage_url)
    old = dict(study.user_attrs[SPEC_ATTR])
    newer = ("step_budget", "data_selection")
    old["search"] = {k: v for k, v in old["search"].items() if k not in newer}
    old.pop("rows")  # a top-level field added later
    study.set_user_attr(SPEC_ATTR, old)
    dump = {k: v for k, v in old.items() if k not in ("budget", "runner", "storage", "description")}
    study.set_user_attr(SEARCH_HASH_ATTR, config_hash(dump)[:16])

    resumed = stored_spec("old", storage_url=storage_url, trials=3)
    assert resumed.search.step_budget == "total"
    engine = StudyEngine(
        spec=resumed,
        storage_url=storage_url,
        evaluator=fakes.FakeEvaluator(),
        sharing_spaces=fakes.SHARING_SPACES,
    )
    summary = engine.run()  # the search hash matches: no "another spec"
    engine.close()
    assert summary.progress.n_done == 3
    calls_budget = {c.step_budget for c in engine.evaluator.calls}
    assert calls_budget == {"total"}
