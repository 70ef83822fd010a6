"""A spec's `rows`: fixed configurations (a results table's rows) enqueued before any sampling."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import optuna
import pytest

from taskgraph.errors import SpecError
from taskgraph.search.engine import StudyEngine
from taskgraph.search.space import BASELINE_ROLE, ROLE_ATTR, ROW_ATTR, SearchSpace
from taskgraph.spec import StudySpec, spec_from_dict
from taskgraph.storage import open_repository
from taskgraph.testing import SHARING_SPACES

ROWS = [
    {"name": "alone", "params": {"sharing": "hard"}},
    {"name": "good_hard", "auxiliaries": ["good"], "params": {"sharing": "hard"}},
    {
        "name": "good_soft",
        "auxiliaries": ["good"],
        "params": {"sharing": "soft", "soft/lambda": 0.01},
    },
    {"name": "both", "auxiliaries": ["good", "bad"], "params": {"sharing": "hard"}},
]


def make_spec(**overrides: Any) -> StudySpec:
    data: dict[str, Any] = {
        "name": "table",
        "target": "tgt",
        "candidates": ["good", "bad", "meh"],
        "search": {"sharing": ["hard", "soft"]},
        "sampler": {"name": "random", "seed": 0},
        "budget": {"trials": 4},
        "seeds": 3,
        "rows": ROWS,
        "recovery": {"heartbeat_interval": 1, "grace_period": 2},
    }
    data.update(overrides)
    return spec_from_dict(data)


def space(spec: StudySpec) -> SearchSpace:
    return SearchSpace(spec=spec, sharing_spaces=SHARING_SPACES)


def test_each_row_compiles_to_its_configuration() -> None:
    spec = make_spec()
    configs = [space(spec).row_config(row) for row in spec.rows]
    assert [c.auxiliaries for c in configs] == [(), ("good",), ("good",), ("bad", "good")]
    assert [c.sharing for c in configs] == ["hard", "hard", "soft", "hard"]
    assert configs[2].sharing_params == {"lambda": 0.01}
    assert space(spec).row_config(spec.rows[1], seed=2).seed == 2


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"name": "a"}, {"name": "a", "auxiliaries": ["good"]}], "rows[1].name: 'a' names two"),
        (
            [{"name": "a", "auxiliaries": ["nope"]}],
            "rows[0].auxiliaries: 'nope' is not a candidate",
        ),
        ([{"name": "a"}, {"name": "b"}], "a, b each train the target alone"),
        ([{"name": "a", "params": {"sharing": [1, 2]}}], "sharing: expected one value"),
    ],
)
def test_malformed_rows_are_refused_by_the_model(rows: list[Any], message: str) -> None:
    with pytest.raises(SpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        make_spec(rows=rows, budget={"trials": 4})


def test_a_budget_smaller_than_the_rows_is_refused() -> None:
    with pytest.raises(SpecError, match=r"budget\.trials is 3 but the spec has 4 rows"):
        make_spec(budget={"trials": 3})


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"name": "r", "auxiliaries": ["good"]}, "parameter 'sharing' is left to the sampler"),
        (
            {"name": "r", "auxiliaries": ["good"], "params": {"sharing": "soft"}},
            "parameter 'soft/lambda' is left to the sampler",
        ),
        (
            {"name": "r", "auxiliaries": ["good"], "params": {"sharing": "cross"}},
            "rows\\[0\\] \\(r\\): params: ",
        ),
        (
            {"name": "r", "auxiliaries": ["good"], "params": {"sharing": "soft", "soft/lambda": 5}},
            "params.soft/lambda: 5 is outside its domain",
        ),
        (
            {"name": "r", "auxiliaries": ["good"], "params": {"sharing": "hard", "lr": 1}},
            "params.lr: not a parameter this row's trial suggests; it suggests: sharing",
        ),
        (  # the flag would have overridden the row's own list of auxiliaries
            {"name": "r", "auxiliaries": ["good"], "params": {"sharing": "hard", "aux/bad": True}},
            "params.aux/bad: a row names its auxiliary tasks in `auxiliaries`, not as aux/<task>",
        ),
        (
            {"name": "r", "auxiliaries": ["good"], "params": {"sharing": "hard", "aux/good": True}},
            "params.aux/good: a row names its auxiliary tasks in `auxiliaries`",
        ),
    ],
)
def test_a_row_must_fix_exactly_its_parameters_within_their_domains(
    row: dict[str, Any], message: str
) -> None:
    spec = make_spec(rows=[row], budget={"trials": 1})
    with pytest.raises(SpecError, match=message):
        space(spec).row_config(spec.rows[0])


def test_a_row_that_the_size_constraints_would_change_is_refused() -> None:
    spec = make_spec(
        search={"sharing": ["hard", "soft"], "auxiliaries": {"max_size": 1}},
        rows=[{"name": "two", "auxiliaries": ["good", "bad"], "params": {"sharing": "hard"}}],
        budget={"trials": 1},
    )
    with pytest.raises(SpecError, match=r"auxiliaries \['good', 'bad'\] break search.auxiliaries"):
        space(spec).row_config(spec.rows[0])


def test_rows_change_the_search_hash_and_no_rows_keeps_the_old_one() -> None:
    with_rows = make_spec()
    without = make_spec(rows=[], budget={"trials": 4})
    assert with_rows.search_hash() != without.search_hash()
    # A spec without rows hashes as specs did before the field existed (rows left out).
    from taskgraph.trial import config_hash

    dumped = without.model_dump(
        mode="json", exclude={"budget", "runner", "storage", "description", "rows"}
    )
    dumped["search"].pop("data_selection")
    assert without.search_hash() == config_hash(dumped)[:16]


def test_the_engine_runs_exactly_the_rows_in_order(storage_url: str, fakes: ModuleType) -> None:
    spec = make_spec()
    engine = StudyEngine(
        spec=spec,
        storage_url=storage_url,
        evaluator=fakes.FakeEvaluator(),
        sharing_spaces=SHARING_SPACES,
    )
    summary = engine.run()
    engine.close()
    assert summary.reason == "budget" and summary.progress.n_complete == 4
    trials = optuna.load_study(study_name="table", storage=storage_url).get_trials()
    assert [t.user_attrs[ROW_ATTR] for t in trials] == ["alone", "good_hard", "good_soft", "both"]
    assert trials[0].user_attrs[ROLE_ATTR] == BASELINE_ROLE
    assert all(ROLE_ATTR not in t.user_attrs for t in trials[1:])
    with open_repository(storage_url) as repo:
        runs = repo.runs(study="table")
    assert len(runs) == 12  # 4 rows x 3 seeds
    by_trial = {(r.trial_number, r.seed): r for r in runs}
    expected = {
        t.number: space(spec).row_config(spec.rows[i]).model_config_hash()
        for i, t in enumerate(trials)
    }
    for (number, _seed), run in by_trial.items():
        assert run.trial_config().model_config_hash() == expected[number]


def test_rows_left_out_by_a_kill_after_the_baseline_are_queued_when_the_study_opens(
    storage_url: str, fakes: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = make_spec()
    original = optuna.Study.enqueue_trial
    calls = {"n": 0}

    def killed_after_the_first(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the driver dies after enqueuing the baseline row
        return original(self, *args, **kwargs)

    def new_engine() -> StudyEngine:
        return StudyEngine(
            spec=spec, storage_url=storage_url, evaluator=fakes.FakeEvaluator(),
            sharing_spaces=SHARING_SPACES,
        )  # fmt: skip

    monkeypatch.setattr(optuna.Study, "enqueue_trial", killed_after_the_first)
    first = new_engine()
    with pytest.raises(KeyboardInterrupt):
        first.open()
    first.close()
    monkeypatch.setattr(optuna.Study, "enqueue_trial", original)
    waiting = optuna.load_study(study_name="table", storage=storage_url).get_trials()
    assert [t.user_attrs[ROW_ATTR] for t in waiting] == ["alone"]

    engine = new_engine()
    engine.run()
    engine.close()
    trials = optuna.load_study(study_name="table", storage=storage_url).get_trials()
    assert [t.user_attrs[ROW_ATTR] for t in trials] == ["alone", "good_hard", "good_soft", "both"]
    # opening the finished study again queues nothing
    again = new_engine()
    again.open()
    again.close()
    assert len(optuna.load_study(study_name="table", storage=storage_url).get_trials()) == 4
