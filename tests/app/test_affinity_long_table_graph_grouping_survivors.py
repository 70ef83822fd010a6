"""Long-table export, affinity graph and grouping: behaviours no other test pinned.

Each test names what a user would see go wrong (mutation audit of
``taskgraph.app.affinity.long_table``, ``graph`` and ``grouping``).
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from taskgraph.app import records_long_table
from taskgraph.app.affinity import graph_report, grouping_report
from taskgraph.errors import ConfigError
from taskgraph.storage import open_repository
from taskgraph.storage.repository import Repository
from taskgraph.trial import Cost, DataSelectionConfig, TrialConfig, TrialResult, TrialStatus


def _add(
    repo: Repository, number: int, target: str, aux: tuple[str, ...], f1: float, **settings: Any
) -> None:
    config = TrialConfig(target=target, auxiliaries=aux, **settings)
    scores = {target: {"dev": {"f1": f1}}} | {t: {"dev": {"f1": 0.9}} for t in aux}
    result = TrialResult(
        status=TrialStatus.COMPLETE, scores=scores, objective=f1, cost=Cost(seconds=1.0)
    )
    repo.add_run_result(study="s", trial_number=number, config=config, result=result)


@pytest.fixture
def database(tmp_path: Path) -> str:
    """ner alone and with pos, one model family."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with open_repository(url) as repo:
        _add(repo, 0, "ner", (), 0.50)
        _add(repo, 1, "ner", ("pos",), 0.60)
    return url


def test_a_blank_family_is_refused_rather_than_picking_every_family(database: str) -> None:
    # A blank --family stripped to "" is a prefix of every hash: it would export all families.
    with pytest.raises(ConfigError, match="is empty"):
        records_long_table(storage=database, metric="f1", family="   ")


def test_splits_other_than_dev_val_and_test_are_left_out(tmp_path: Path) -> None:
    # A trainer may score its train split: the long format has no name for it.
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with open_repository(url) as repo:
        scores = {"ner": {"dev": {"f1": 0.5}, "test": {"f1": 0.4}, "train": {"f1": 0.99}}}
        result = TrialResult(
            status=TrialStatus.COMPLETE, scores=scores, objective=0.5, cost=Cost(seconds=1.0)
        )
        repo.add_run_result(
            study="s", trial_number=0, config=TrialConfig(target="ner"), result=result
        )
    table = records_long_table(storage=url, metric="f1")
    assert sorted((r.split, r.value) for r in table.rows) == [("test", 0.4), ("val", 0.5)]


def test_a_study_s_table_is_named_after_the_study(database: str) -> None:
    # bench's messages name a table by its source ("table 's' has no val rows ...").
    table = records_long_table(storage=database, study="s", metric="f1")
    assert table.source == "s"
    assert {r.study for r in table.to_records()} == {"s"}


def test_the_data_version_error_names_every_task_whose_data_changed(tmp_path: Path) -> None:
    # Both ner's and pos's data changed: the error names ner's versions and says pos's did too.
    url = f"sqlite:///{tmp_path / 'r.db'}"
    runs = [
        ("ner", (), {"ner": "a1" * 32}),
        ("ner", ("pos",), {"ner": "b2" * 32, "pos": "c3" * 32}),
        ("pos", (), {"pos": "d4" * 32}),
    ]
    with open_repository(url) as repo:
        for number, (target, aux, prints) in enumerate(runs):
            config = TrialConfig(target=target, auxiliaries=aux)
            scores = {t: {"dev": {"f1": 0.5}} for t in (target, *aux)}
            result = TrialResult(
                status=TrialStatus.COMPLETE, scores=scores, objective=0.5, cost=Cost(seconds=1.0)
            )
            repo.add_run_result(
                study="s", trial_number=number, config=config, result=result,
                task_fingerprints=prints,
            )  # fmt: skip
    with pytest.raises(ConfigError) as error:
        records_long_table(storage=url, metric="f1")
    assert "ner's scores were measured on 2 versions of its data (and of pos)" in str(error.value)


def test_filters_that_together_match_no_run_export_nothing(database: str) -> None:
    # Each name is known, but no run of target pos exists: not "every run".
    with pytest.raises(ConfigError, match="no complete run's scores match"):
        records_long_table(
            storage=database, metric="f1", target="ner", task_set="ner", contains="pos"
        )


def test_two_encoders_in_one_cell_are_named_as_what_differs(tmp_path: Path) -> None:
    # Same scheme, no selection: the families' labels alone would not tell them apart.
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with open_repository(url) as repo:
        _add(repo, 0, "ner", (), 0.50, encoder="minilm")
        _add(repo, 1, "ner", (), 0.60, encoder="tiny-bert")
    with pytest.raises(ConfigError) as error:
        records_long_table(storage=url, metric="f1")
    message = str(error.value)
    assert message.startswith("ner in ner was trained in 2 model families (")
    assert "encoder, input length, example caps or the task's own data files differ" in message


def test_a_data_selection_family_is_named_by_what_it_keeps(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with open_repository(url) as repo:
        _add(repo, 0, "ner", ("pos",), 0.50)
        _add(repo, 1, "ner", ("pos",), 0.60, data_selection=DataSelectionConfig(keep=0.5))
    with pytest.raises(ConfigError) as error:
        records_long_table(storage=url, metric="f1")
    assert "pretraining none, selection keep 0.5" in str(error.value)


PAIRS = """target,task_set,split,value,higher_is_better
a,a,val,0.50,1
b,b,val,0.60,1
a,a+b,val,0.55,1
b,a+b,val,0.66,1
"""


def test_a_graph_edge_carries_its_measured_gain_in_the_metric_s_units(tmp_path: Path) -> None:
    # Beside the relative gain (+10%), `affinity graph` gives the pair's gain in points.
    path = tmp_path / "pairs.csv"
    path.write_text(PAIRS)
    graph = graph_report(table=path, method="hoa").graph
    assert graph.graph["gain_kind"] == "relative"
    assert graph.edges["b", "a"]["measured_absolute_gain"] == pytest.approx(0.05)
    assert graph.edges["a", "b"]["measured_absolute_gain"] == pytest.approx(0.06)


def _tasks_table(tmp_path: Path, count: int) -> Path:
    """Return a table of ``count`` tasks (t0, t1, ...), each alone and with the next one."""
    names = [f"t{i}" for i in range(count)]
    lines = ["target,task_set,split,value,higher_is_better"]
    lines += [f"{t},{t},val,0.5,1" for t in names]
    for t, u in pairwise(names):
        lines += [f"{t},{t}+{u},val,0.55,1", f"{u},{t}+{u},val,0.52,1"]
    path = tmp_path / f"tasks{count}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_budget_that_exactly_covers_the_tasks_is_accepted(tmp_path: Path) -> None:
    # 2 networks of at most 2 tasks serve 4 tasks: no error.
    report = grouping_report(2, table=_tasks_table(tmp_path, 4), max_size=2, method="hoa")
    assert sorted(t for n in report.grouping.networks for t in n) == ["t0", "t1", "t2", "t3"]


def test_ten_tasks_may_share_one_network_by_default(tmp_path: Path) -> None:
    # max_size defaults to every size up to 10 tasks: one network can serve all ten.
    report = grouping_report(1, table=_tasks_table(tmp_path, 10), method="hoa")
    assert report.grouping.networks == (frozenset(f"t{i}" for i in range(10)),)


def test_a_budget_too_small_says_how_far_to_raise_each_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        grouping_report(2, table=_tasks_table(tmp_path, 5), max_size=2, method="hoa")
    assert str(error.value) == (
        "no grouping of 5 tasks fits budget 2: 2 networks of at most 2 tasks (max_size) "
        "serve at most 4; raise max_size to 3 or budget to 3"
    )


def test_above_ten_tasks_the_error_says_max_size_defaults_to_three(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        grouping_report(1, table=_tasks_table(tmp_path, 11), method="hoa")
    assert "(max_size defaults to 3 above 10 tasks)" in str(error.value)
    assert "raise max_size to 11 or budget to 4" in str(error.value)


def test_one_edge_left_out_by_min_evidence_is_one_edge(tmp_path: Path) -> None:
    # Only a was measured with b: the edge a -> b rests on no run.
    path = tmp_path / "one.csv"
    path.write_text(
        "target,task_set,split,value,higher_is_better\na,a,val,0.50,1\nb,b,val,0.60,1\n"
        "a,a+b,val,0.55,1\n"
    )
    report = graph_report(table=path, method="hoa", min_evidence=1)
    assert list(report.graph.edges) == [("b", "a")]
    assert report.notes == ("1 edge left out by min_evidence=1 (backed by fewer runs)",)


NO_BASELINE = """target,task_set,split,value,higher_is_better
a,a,val,0.50,1
b,b,val,0.60,1
a,a+b,val,0.55,1
b,a+b,val,0.62,1
c,a+c,val,0.30,1
"""


def test_named_tasks_draw_no_note_about_the_targets_left_out(tmp_path: Path) -> None:
    # c has no baseline: grouping every target says c is left out; naming a and b does not.
    path = tmp_path / "no_baseline.csv"
    path.write_text(NO_BASELINE)
    every = grouping_report(1, table=path, method="hoa")
    assert len(every.notes) == 1 and "the grouping leaves them out: 'c'" in every.notes[0]
    assert grouping_report(1, table=path, method="hoa", tasks=["a", "b"]).notes == ()


def test_an_empty_task_list_is_refused_rather_than_grouping_every_target(tmp_path: Path) -> None:
    path = tmp_path / "no_baseline.csv"
    path.write_text(NO_BASELINE)
    with pytest.raises(ConfigError, match="`tasks` names no task"):
        grouping_report(1, table=path, method="hoa", tasks=[])


def test_a_max_size_of_zero_is_refused_as_such(tmp_path: Path) -> None:
    # Not "no grouping fits the budget": a network of no task is no choice at all.
    path = tmp_path / "no_baseline.csv"
    path.write_text(NO_BASELINE)
    with pytest.raises(ConfigError, match=r"^`max_size` must be >= 1, but got 0$"):
        grouping_report(1, table=path, method="hoa", max_size=0)


def test_a_named_task_without_a_baseline_is_refused_naming_the_known_targets(
    tmp_path: Path,
) -> None:
    path = tmp_path / "no_baseline.csv"
    path.write_text(NO_BASELINE)
    with pytest.raises(ConfigError) as error:
        grouping_report(1, table=path, method="hoa", tasks=["a", "c"])
    assert str(error.value) == "`tasks` has no baseline records for ['c']; known targets: a, b"
