"""Scores measured on different data under one task name are never one family of gains."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskgraph.affinity.gains import compute_gains
from taskgraph.app.affinity import load_records
from taskgraph.storage import open_repository
from taskgraph.storage.repository import data_families
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus

V1, V2 = "a" * 64, "b" * 64


def _add(repo, study: str, number: int, aux: tuple[str, ...], f1: float, prints) -> None:
    config = TrialConfig(target="ner", auxiliaries=aux)
    scores = {"ner": {"dev": {"f1": f1}}} | {t: {"dev": {"f1": 0.9}} for t in aux}
    result = TrialResult(
        status=TrialStatus.COMPLETE, scores=scores, objective=f1, cost=Cost(seconds=1.0)
    )
    repo.add_run_result(
        study=study, trial_number=number, config=config, result=result, task_fingerprints=prints
    )


def _gain_of_pos(url: str) -> list[float]:
    gains = compute_gains(load_records(storage=url, metric="f1"))
    return sorted(
        g.mean for g in gains.gains if g.target == "ner" and g.auxiliaries == frozenset({"pos"})
    )


def test_a_baseline_on_other_data_is_not_averaged_into_a_gain(tmp_path: Path) -> None:
    # Study 1 trained ner on its first data (baseline 0.50, with pos 0.60); study 2 redefined
    # ner on other files under the same name (baseline 0.80).  The gain of pos was computed
    # against the mean baseline 0.65: -7.7 % instead of +20 %.
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with open_repository(url) as repo:
        _add(repo, "first", 0, (), 0.50, {"ner": V1})
        _add(repo, "first", 1, ("pos",), 0.60, {"ner": V1, "pos": "p" * 64})
        _add(repo, "second", 0, (), 0.80, {"ner": V2})
    assert _gain_of_pos(url) == [pytest.approx(0.2)]
    families = {r.family for r in load_records(storage=url, metric="f1") if r.task == "ner"}
    assert len(families) == 2 and all("/data:" in f for f in families)
    # The auxiliary's scores (one data version) keep their family.
    assert all("/data:" not in r.family for r in load_records(storage=url, metric="f1")
               if r.task == "pos")  # fmt: skip


def test_one_data_version_or_none_recorded_leaves_the_family_as_it_was(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with open_repository(url) as repo:
        _add(repo, "s", 0, (), 0.50, {"ner": V1})
        _add(repo, "s", 1, ("pos",), 0.60, {"ner": V1})
        _add(repo, "s", 2, ("chunk",), 0.55, {})  # a run recorded without fingerprints
    records = load_records(storage=url, metric="f1")
    assert len({r.family for r in records}) == 1 and "/data:" not in records[0].family
    assert _gain_of_pos(url) == [pytest.approx(0.2)]


def test_data_families_names_each_version_and_a_run_without_one() -> None:
    labels = [("t", "F", V1), ("t", "F", V2), ("t", "F", None), ("u", "F", V1), ("t", "G", V1)]
    families = data_families(labels)
    assert families == {
        ("t", "F", V1): "F/data:" + V1[:12],
        ("t", "F", V2): "F/data:" + V2[:12],
        ("t", "F", None): "F/data:?",
    }


def test_a_study_whose_data_changed_since_its_earlier_runs_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from taskgraph.app.studies.running import _warn_of_changed_data, changed_data
    from taskgraph.search.engine import StudyEngine
    from taskgraph.spec import spec_from_dict
    from taskgraph.spec.checks import inline_task_defs
    from taskgraph.testing import SHARING_SPACES, FakeEvaluator

    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "dev"):
        (data / f"{split}.iob").write_text("Ada\tB-PER\nran\tO\n\n", encoding="utf-8")
    spec = spec_from_dict(
        {
            "name": "versions", "target": "my_ner", "candidates": ["synth_related"],
            "tasks": [{"name": "my_ner", "format": "iob", "type": "token_tagging",
                       "label_field": "ner", "files": {"train": str(data / "train.iob"),
                                                       "dev": str(data / "dev.iob")}}],
            "budget": {"trials": 1},
        }
    )  # fmt: skip
    url = f"sqlite:///{tmp_path / 'v.db'}"

    def engine() -> StudyEngine:
        return StudyEngine(
            spec=spec, storage_url=url, evaluator=FakeEvaluator(), sharing_spaces=SHARING_SPACES,
            task_defs=inline_task_defs(spec),
        )  # fmt: skip

    first = engine()
    try:
        assert changed_data(first) == []  # a new study has no earlier runs
        first.run()
        assert changed_data(first) == []
    finally:
        first.close()
    (data / "train.iob").write_text("Bob\tB-PER\nsat\tO\n\n", encoding="utf-8")
    second = engine()
    try:
        second.open()
        assert changed_data(second) == ["my_ner"]
        _warn_of_changed_data(second)
    finally:
        second.close()
    err = capsys.readouterr().err
    assert err.startswith("warning: the data files of my_ner changed since study 'versions'")


def test_an_auxiliarys_changed_data_is_noted_where_its_gains_pool_the_versions(
    tmp_path: Path,
) -> None:
    # The target's data never changed, pos's did between two runs of ner+pos: both runs are
    # one family for ner (its data is the same), so the gain pools them; it must say so.
    from taskgraph.app.affinity import recommendation_report

    url = f"sqlite:///{tmp_path / 'r.db'}"
    with open_repository(url) as repo:
        _add(repo, "s", 0, (), 0.50, {"ner": V1})
        _add(repo, "s", 1, ("pos",), 0.60, {"ner": V1, "pos": "p" * 64})
        _add(repo, "s", 2, ("pos",), 0.56, {"ner": V1, "pos": "q" * 64})
        _add(repo, "s", 3, ("chunk",), 0.52, {"ner": V1, "chunk": "c" * 64})
    table = compute_gains(load_records(storage=url, metric="f1"))
    assert [(t, a) for _, t, a in table.mixed_partner_data] == [("ner", frozenset({"pos"}))]
    assert _gain_of_pos(url) == [pytest.approx(0.16)]  # pooled, as the note says
    report = recommendation_report("ner", storage=url, metric="f1", method="pairwise")
    assert any(
        "1 auxiliary set(s) of 'ner' ran on more than one version of their auxiliaries' data"
        in note
        and "pool the versions: pos;" in note
        for note in report.notes
    ), report.notes
    # One version per set: no note.
    other = f"sqlite:///{tmp_path / 'o.db'}"
    with open_repository(other) as repo:
        _add(repo, "s", 0, (), 0.50, {"ner": V1})
        _add(repo, "s", 1, ("pos",), 0.60, {"ner": V1, "pos": "p" * 64})
        _add(repo, "s", 2, ("pos",), 0.58, {"ner": V1, "pos": "p" * 64})
    assert compute_gains(load_records(storage=other, metric="f1")).mixed_partner_data == []


def test_partner_data_compares_only_runs_that_recorded_every_partner() -> None:
    """A run that recorded some partners' fingerprints is not 'other data' than one that
    recorded them all (its hash would differ though no data did): it is not compared."""
    from taskgraph.storage.repository import partner_data

    both = {"ner": "n1", "pos": "p1", "chunk": "c1"}
    task_set = frozenset({"ner", "pos", "chunk"})
    assert partner_data("ner", task_set, both) == partner_data("ner", task_set, dict(both))
    assert partner_data("ner", task_set, both) != partner_data(
        "ner", task_set, {**both, "pos": "p2"}
    )
    assert partner_data("ner", task_set, {"ner": "n1", "pos": "p1"}) == ""  # chunk's missing
    assert partner_data("ner", frozenset({"ner"}), both) == ""  # the target alone: no partner


def test_a_repeat_is_skipped_only_on_the_same_data(tmp_path: Path) -> None:
    # The check runs inside the write's own (retried) transaction: a read outside it did not
    # survive a PostgreSQL restart (tests/storage/test_server_faults.py).
    url = f"sqlite:///{tmp_path / 'r.db'}"
    config = TrialConfig(target="ner", auxiliaries=("pos",))
    result = TrialResult(
        status=TrialStatus.COMPLETE,
        scores={"ner": {"dev": {"f1": 0.6}}},
        objective=0.6,
        cost=Cost(seconds=1.0),
    )
    with open_repository(url) as repo:

        def write(number: int, prints: dict[str, str]) -> int:
            return repo.add_run_result(study="s", trial_number=number, config=config,
                                       result=result, task_fingerprints=prints,
                                       skip_repeat=True)  # fmt: skip

        first = write(0, {"ner": V1})
        assert write(1, {"ner": V1}) == first  # the same training: not written again
        other = write(2, {"ner": V2})  # the file changed: a new measurement
        assert other != first
        assert sorted(r.trial_number for r in repo.runs(study="s")) == [0, 2]
