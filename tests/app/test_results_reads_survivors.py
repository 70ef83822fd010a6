"""What users read back from the records that an audit's mutants showed no test pinned down.

The ``records table`` results table (:func:`~taskgraph.app.results.build.build_table`): the
cells' mean and t-interval with a score of 0 among the seeds (checked against scipy), the
paired Δ by seed (against scipy's paired t-test) and in the objective metric, the cost of every
run, the objective metric of an unknown target, the notes on data versions and unmatched runs,
a row without runs, and the order of earlier data versions.  The score reads
(:mod:`taskgraph.storage.score_reads`): partner data hashed from the partners only and from
each of them, records grouped by task set, records read in chunks of run ids, settings per
run target, the batch size among the settings.  The export
(:mod:`taskgraph.storage.run_export`): a ``family/data:`` filter keeps each score by its own
task's data version, and an unknown study writes no file.
"""

from __future__ import annotations

import io
import json
import math
import statistics
from pathlib import Path
from typing import Any

import pytest
from scipy import stats

import taskgraph.storage.score_reads as score_reads
from taskgraph.affinity.gains import compute_gains
from taskgraph.app.results.build import build_table
from taskgraph.app.results.table import ResultsTable
from taskgraph.errors import NotFoundError
from taskgraph.storage import open_repository
from taskgraph.storage.repository import Repository, partner_data, records_by_task_set
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus

V1, V2, V3 = "a" * 64, "b" * 64, "c" * 64
SPEC: dict[str, Any] = {
    "name": "s",
    "target": "ner",
    "objective": {"metric": "f1", "split": "dev"},
    "candidates": ["pos", "chunk"],
    "budget": {"trials": 4},
    "seeds": 3,
}


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'records.db'}"


def _add(
    repo: Repository,
    aux: tuple[str, ...],
    seed: int,
    f1: float | None,
    prints: dict[str, str] | None = None,
    *,
    seconds: float = 1.0,
    metrics: dict[str, float] | None = None,
    **settings: Any,
) -> int:
    """Store one run of ner (with ``aux``); ``f1`` None: a failed run."""
    config = TrialConfig(target="ner", auxiliaries=aux, seed=seed, **settings)
    if f1 is None:
        result = TrialResult(status=TrialStatus.FAILED, cost=Cost(seconds=seconds))
    else:
        own = {"f1": f1, **(metrics or {})}
        scores = {"ner": {"dev": own}} | {t: {"dev": {"f1": 0.9}} for t in aux}
        result = TrialResult(
            status=TrialStatus.COMPLETE, scores=scores, objective=f1, cost=Cost(seconds=seconds)
        )
    number = len(repo.runs())
    return repo.add_run_result(
        study="s", trial_number=number, config=config, result=result, task_fingerprints=prints
    )


def _add_row_run(
    repo: Repository, spec: dict[str, Any], row: str, seed: int, f1: float, prints: dict[str, str]
) -> None:
    """Store a complete run of the configuration of ``spec``'s row ``row``."""
    from taskgraph.search.space import SearchSpace
    from taskgraph.spec import spec_from_dict

    study = spec_from_dict(spec)
    (wanted,) = [r for r in study.rows if r.name == row]
    config = SearchSpace(spec=study).row_config(wanted, seed=seed)
    scores = {t: {"dev": {"f1": f1}} for t in config.task_set}
    result = TrialResult(
        status=TrialStatus.COMPLETE, scores=scores, objective=f1, cost=Cost(seconds=1.0)
    )
    number = len(repo.runs())
    repo.add_run_result(
        study="s", trial_number=number, config=config, result=result, task_fingerprints=prints
    )


@pytest.fixture
def _fake_sharing_spaces(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fake sharing spaces stand in for the registry's (which import the models).
    import taskgraph.search.sharing_space as sharing_space
    from taskgraph.testing import SHARING_SPACES

    monkeypatch.setattr(sharing_space, "registry_spaces", lambda names, **_: SHARING_SPACES)


def _table(url: str, spec: dict[str, Any] | None = None, **options: Any) -> ResultsTable:
    with open_repository(url) as repo:
        runs = repo.runs(study="s")
    return build_table("s", spec or SPEC, runs, split="dev", **options)


def _t_interval(values: list[float]) -> float:
    """The 95 % Student-t half-width, from scipy's t distribution."""
    n = len(values)
    return float(stats.t.ppf(0.975, n - 1) * stats.sem(values))


# --- the results table ---------------------------------------------------------------------


def test_a_score_of_zero_is_a_seed_of_the_cell(tmp_path: Path) -> None:
    # A seed that scored 0.0 (a collapsed run) is a value, not a missing one.
    url = _url(tmp_path)
    values = [0.0, 0.30, 0.36]
    with open_repository(url) as repo:
        for seed, value in enumerate(values):
            _add(repo, (), seed, value)
    cell = _table(url).rows[0].cell("dev", "f1", task="ner")
    assert cell.values == tuple(values)
    assert cell.mean == pytest.approx(sum(values) / 3)
    assert cell.half_width == pytest.approx(_t_interval(values))
    text = f"{sum(values) / 3:.3f} ± {_t_interval(values):.3f}"
    assert f"| alone | (none) | {text} |" in _table(url).to_markdown()


def test_the_delta_pairs_runs_by_seed_where_the_reference_lacks_one(tmp_path: Path) -> None:
    # alone ran seeds 0, 1, 2; pos only seeds 1 and 2: pos's seed 1 is set against alone's
    # seed 1, not against alone's first run.
    url = _url(tmp_path)
    alone = {0: 0.40, 1: 0.50, 2: 0.56}
    pos = {1: 0.58, 2: 0.60}
    with open_repository(url) as repo:
        for seed, value in alone.items():
            _add(repo, (), seed, value)
        for seed, value in pos.items():
            _add(repo, ("pos",), seed, value)
    table = _table(url)
    paired = table.paired(table.rows[1])
    differences = [pos[s] - alone[s] for s in (1, 2)]
    assert paired.differences == pytest.approx(differences)
    se = statistics.stdev(differences) / math.sqrt(2)
    assert paired.se == pytest.approx(se)
    p = stats.ttest_rel([pos[1], pos[2]], [alone[1], alone[2]]).pvalue
    assert paired.p_value == pytest.approx(p)


def test_the_delta_is_in_the_objective_metric_whatever_is_shown_first(tmp_path: Path) -> None:
    url = _url(tmp_path)
    with open_repository(url) as repo:
        for seed in range(2):
            _add(repo, (), seed, 0.50 + seed / 100, metrics={"loss": 2.0})
            _add(repo, ("pos",), seed, 0.60 + seed / 50, metrics={"loss": 1.0 + seed})
    table = _table(url, metrics=["loss", "f1"])
    assert table.objective_metric == "f1"
    assert table.paired(table.rows[1]).differences == pytest.approx((0.10, 0.11))
    assert "Δ f1 vs alone" in table.to_markdown()


def test_the_cost_counts_every_run_failed_and_repeated_ones_too(tmp_path: Path) -> None:
    # Training seconds were spent on the failed run and on both runs of seed 0.
    url = _url(tmp_path)
    with open_repository(url) as repo:
        _add(repo, (), 0, 0.50, seconds=10.0)
        _add(repo, (), 0, 0.52, seconds=20.0)
        _add(repo, (), 1, None, seconds=60.0)
    row = _table(url).rows[0]
    assert len(row.complete) == 1
    assert row.seconds == pytest.approx((30.0, 90.0))
    data = _table(url).to_dict()["rows"][0]
    assert (data["seconds_per_run"], data["seconds_total"]) == pytest.approx((30.0, 90.0))


def test_the_objective_of_a_target_without_a_known_task_is_its_first_metric(
    tmp_path: Path,
) -> None:
    # An inline or unknown target and a spec without `objective.metric`: the Δ and the long
    # CSV read the first of the metrics its runs report (sorted), here f1, not loss.
    url = _url(tmp_path)
    spec = {**SPEC, "target": "my_task", "objective": {"split": "dev"}}
    with open_repository(url) as repo:
        for seed, aux in enumerate([(), ("pos",)]):
            config = TrialConfig(target="my_task", auxiliaries=aux, seed=0)
            scores = {"my_task": {"dev": {"loss": 1.0 - seed / 10, "f1": 0.5 + seed / 10}}}
            result = TrialResult(
                status=TrialStatus.COMPLETE, scores=scores, objective=0.5, cost=Cost(seconds=1.0)
            )
            repo.add_run_result(study="s", trial_number=seed, config=config, result=result)
        runs = repo.runs(study="s")
    table = build_table("s", spec, runs)
    assert table.objective_metric == "f1" and table.metrics == ("f1",)
    assert table.paired(table.rows[1]).differences == pytest.approx((0.1,))


@pytest.mark.usefixtures("_fake_sharing_spaces")
def test_one_run_matching_no_row_is_noted(tmp_path: Path) -> None:
    url = _url(tmp_path)
    spec = {**SPEC, "rows": [{"name": "alone"}, {"name": "pos", "auxiliaries": ["pos"]}]}
    with open_repository(url) as repo:
        _add_row_run(repo, spec, "alone", 0, 0.50, {})
        _add_row_run(repo, spec, "pos", 0, 0.60, {})
        _add(repo, ("chunk",), 0, 0.60, learning_rate=0.5)
    table = _table(url, spec)
    assert [len(row.complete) for row in table.rows] == [1, 1]
    assert table.notes == ("1 runs of the study match none of its rows and are not shown.",)


# --- the results table across data versions --------------------------------------------------


def test_the_versions_note_names_the_latest_version(tmp_path: Path) -> None:
    url = _url(tmp_path)
    with open_repository(url) as repo:
        _add(repo, (), 0, 0.50, {"ner": V1})
        _add(repo, ("pos",), 0, 0.55, {"ner": V1})
        _add(repo, ("pos",), 0, 0.60, {"ner": V2})
    notes = [note for note in _table(url).notes if "versions of its data" in note]
    assert len(notes) == 1
    assert notes[0].startswith("The runs trained ner on 2 versions of its data")
    assert f"than the latest (data:{V2[:12]})" in notes[0]


def test_earlier_versions_follow_the_latest_newest_first(tmp_path: Path) -> None:
    url = _url(tmp_path)
    with open_repository(url) as repo:
        for prints in (V1, V2, V3):
            _add(repo, (), 0, 0.50, {"ner": prints})
    table = _table(url)
    assert [row.title for row in table.rows] == [
        "alone",
        f"alone (data:{V2[:12]}, earlier data)",
        f"alone (data:{V1[:12]}, earlier data)",
    ]


@pytest.mark.usefixtures("_fake_sharing_spaces")
def test_a_spec_row_without_runs_stays_when_the_data_changed(tmp_path: Path) -> None:
    url = _url(tmp_path)
    spec = {**SPEC, "rows": [{"name": "alone"}, {"name": "with_pos", "auxiliaries": ["pos"]}]}
    with open_repository(url) as repo:
        _add_row_run(repo, spec, "alone", 0, 0.50, {"ner": V1})
        _add_row_run(repo, spec, "alone", 0, 0.52, {"ner": V2})
    table = _table(url, spec)
    assert [row.title for row in table.rows] == [
        "alone",
        f"alone (data:{V1[:12]}, earlier data)",
        "with_pos",
    ]
    assert table.rows[2].data_version == f"data:{V2[:12]}" and not table.rows[2].runs
    assert "| with_pos | `pos` | not run |" in table.to_markdown()


def test_no_delta_note_where_the_references_runs_on_the_version_failed(tmp_path: Path) -> None:
    url = _url(tmp_path)
    with open_repository(url) as repo:
        _add(repo, (), 0, 0.50, {"ner": V1})
        _add(repo, ("pos",), 0, 0.55, {"ner": V1})
        _add(repo, (), 0, None, {"ner": V2})
        _add(repo, ("pos",), 0, 0.60, {"ner": V2})
    table = _table(url)
    assert [row.title for row in table.rows][:2] == [
        "alone",
        f"alone (data:{V1[:12]}, earlier data)",
    ]
    assert any(
        note.startswith("Row pos has no Δ: alone has no complete run on its version")
        for note in table.notes
    ), table.notes


def test_no_delta_note_for_a_row_without_a_complete_run(tmp_path: Path) -> None:
    # pos failed on the new data: it has no Δ because it has no score, not for want of a
    # reference, and the note would blame the reference.
    url = _url(tmp_path)
    with open_repository(url) as repo:
        _add(repo, (), 0, 0.50, {"ner": V1})
        _add(repo, ("pos",), 0, 0.55, {"ner": V1})
        _add(repo, ("pos",), 0, None, {"ner": V2})
        _add(repo, ("chunk",), 0, 0.58, {"ner": V2})
    table = _table(url)
    assert "pos" in [row.title for row in table.rows]
    no_delta = [note.split(":")[0] for note in table.notes if "has no Δ" in note]
    assert no_delta == ["Row chunk has no Δ"]


def test_earlier_versions_rows_get_no_long_csv_note(tmp_path: Path) -> None:
    # The long CSV leaves an earlier version's row out for its version (the versions note
    # says so), not because another row has its task set.
    url = _url(tmp_path)
    with open_repository(url) as repo:
        _add(repo, (), 0, 0.50, {"ner": V1})
        _add(repo, ("pos",), 0, 0.55, {"ner": V1})
        _add(repo, (), 0, 0.52, {"ner": V2})
        _add(repo, ("pos",), 0, 0.60, {"ner": V2})
    table = _table(url)
    assert len(table.rows) == 4
    assert not any("has the task set of" in note for note in table.notes), table.notes


# --- the score reads -----------------------------------------------------------------------


def test_partner_data_hashes_the_partners_data_not_the_tasks_own() -> None:
    task_set = frozenset({"ner", "pos", "chunk"})
    partners = {"pos": "p1", "chunk": "c1"}
    value = partner_data("ner", task_set, partners)
    assert value
    assert partner_data("ner", task_set, {**partners, "ner": "n1"}) == value
    assert partner_data("ner", task_set, {**partners, "ner": "n2"}) == value


@pytest.mark.parametrize("changed", ["pos", "chunk", "dep"])
def test_partner_data_changes_with_each_partners_data(changed: str) -> None:
    task_set = frozenset({"ner", "pos", "chunk", "dep"})
    prints = {"ner": "n1", "pos": "p1", "chunk": "c1", "dep": "d1"}
    assert partner_data("ner", task_set, prints) != partner_data(
        "ner", task_set, {**prints, changed: "x2"}
    )


def test_records_by_task_set_groups_by_the_canonical_key() -> None:
    from taskgraph.affinity.records import ScoreRecord

    records = [
        ScoreRecord("ner", frozenset({"ner", "pos"}), 0.6),
        ScoreRecord("pos", frozenset({"pos", "ner"}), 0.9),
        ScoreRecord("ner", frozenset({"ner"}), 0.5),
    ]
    grouped = records_by_task_set(records)
    assert grouped == {"ner+pos": records[:2], "ner": records[2:]}


def test_records_read_in_chunks_of_run_ids_keep_versions_and_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A database of more runs than one IN (...) query takes (900): every run's fingerprints
    # and configuration are read, whichever chunk its id falls in.
    monkeypatch.setattr(score_reads, "_ID_CHUNK", 2)
    url = _url(tmp_path)
    with open_repository(url) as repo:
        for seed in range(5):
            prints = {"ner": V1 if seed % 2 else V2, "pos": "p" * 64}
            _add(repo, ("pos",), seed, 0.5, prints, learning_rate=1e-4 * (seed + 1))
        records = repo.score_records(metric="f1")
    assert len(records) == 10
    assert all(record.settings for record in records)
    rates = {(r.task, r.seed): dict(r.settings)["learning_rate"] for r in records}
    assert rates == {
        (task, seed): json.dumps(1e-4 * (seed + 1)) for task in ("ner", "pos") for seed in range(5)
    }
    ner = {r.seed: r.family for r in records if r.task == "ner"}
    assert all(ner[seed].endswith(f"/data:{(V1 if seed % 2 else V2)[:12]}") for seed in ner)
    assert all(r.partner_data for r in records)


def test_settings_are_read_per_run_target_and_task_set(tmp_path: Path) -> None:
    # Two sequential runs of one model configuration, ner -> pos's target and pos -> ner's:
    # each run's source reads the source phase's steps, its target the target's.  Two
    # single-task runs first, so that the configuration's id is not its runs' task set's.
    url = _url(tmp_path)
    options: dict[str, Any] = {
        "transfer_mode": "sequential",
        "max_steps": 100,
        "hyperparameters": {"source_max_steps": 10},
    }
    with open_repository(url) as repo:
        _add(repo, (), 0, 0.5, learning_rate=1e-3)
        _add(repo, (), 0, 0.5, learning_rate=2e-3)
        for target, aux in [("ner", "pos"), ("pos", "ner")]:
            config = TrialConfig(target=target, auxiliaries=(aux,), **options)
            scores = {target: {"dev": {"f1": 0.6}}, aux: {"dev": {"f1": 0.9}}}
            result = TrialResult(
                status=TrialStatus.COMPLETE, scores=scores, objective=0.6, cost=Cost(seconds=1.0)
            )
            number = len(repo.runs())
            repo.add_run_result(study="s", trial_number=number, config=config, result=result)
        runs = repo.runs()[2:]
        assert runs[0].model_config_hash == runs[1].model_config_hash
        records = repo.score_records(metric="f1")
    steps = {(r.run_id, r.task): dict(r.settings)["max_steps"] for r in records}
    first, second = (run.id for run in runs)
    assert {key: value for key, value in steps.items() if key[0] in (first, second)} == {
        (first, "ner"): "100",
        (first, "pos"): "10",
        (second, "pos"): "100",
        (second, "ner"): "10",
    }


def test_a_baseline_of_another_batch_size_is_named(tmp_path: Path) -> None:
    from taskgraph.app.affinity import load_records

    url = _url(tmp_path)
    with open_repository(url) as repo:
        _add(repo, (), 0, 0.50, batch_size=16)
        _add(repo, ("pos",), 0, 0.60, batch_size=32)
    records = load_records(storage=url, metric="f1")
    assert {dict(r.settings)["batch_size"] for r in records} == {"16", "32"}
    mixed = [names for _, task, _, names in compute_gains(records).mixed_settings]
    assert mixed == [("batch_size",)]


# --- the export ----------------------------------------------------------------------------


def test_a_data_version_filter_keeps_each_score_by_its_own_tasks_data(tmp_path: Path) -> None:
    # ner+pos with ner on V1 and pos on V2, one family: `--family F/data:bbbb` is pos's score.
    url = _url(tmp_path)
    with open_repository(url) as repo:
        _add(repo, (), 0, 0.5, {"ner": V3})
        _add(repo, ("pos",), 0, 0.6, {"ner": V1, "pos": V2})
        family = repo.runs()[1].family
        buffer = io.StringIO()
        repo.export(buffer, format="json", family=f"{family[:8]}/data:{V2[:4]}")
    (run,) = json.loads(buffer.getvalue())
    assert run["scores"] == {"pos": {"dev": {"f1": 0.9}}}


def test_an_unknown_study_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    url = _url(tmp_path)
    out = tmp_path / "runs.csv"
    with open_repository(url) as repo:
        _add(repo, (), 0, 0.5)
        with pytest.raises(NotFoundError, match="`study` 'nope': no such study"):
            repo.export(out, format="csv", study="nope")
    assert not out.exists()
