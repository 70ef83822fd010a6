"""``Repository.export(pretraining=, family=)``, ``Repository.runs(family=)`` and
``Repository.families``: the filters of ``records export`` / ``records list`` in Python, with
the long format's semantics (the runs of one scheme; the scores of one model family)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from taskgraph.app.results.record_filters import check_record_family
from taskgraph.errors import ConfigError
from taskgraph.storage import Repository, open_repository
from taskgraph.trial import (
    Cost,
    MixingConfig,
    PretrainingConfig,
    TrialConfig,
    TrialResult,
    TrialStatus,
)


def complete(scores: dict[str, float]) -> TrialResult:
    return TrialResult(
        status=TrialStatus.COMPLETE,
        scores={task: {"dev": {"f1": value}} for task, value in scores.items()},
        objective=next(iter(scores.values())),
        cost=Cost(seconds=1.0),
    )


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    """Trial 0: no pretraining; 1: random, with a capped auxiliary pos (a family of its own);
    2: adaptive, failed (no scores)."""
    repository = open_repository(f"sqlite:///{tmp_path / 'records.db'}")
    repository.add_run_result(
        study="s", trial_number=0, config=TrialConfig(target="ner"), result=complete({"ner": 0.4})
    )
    capped = TrialConfig(
        target="ner",
        auxiliaries=("pos",),
        pretraining=PretrainingConfig(scheme="random", steps=3),
        mixing=MixingConfig(max_examples={"pos": 10}),
    )
    repository.add_run_result(
        study="s", trial_number=1, config=capped, result=complete({"ner": 0.5, "pos": 0.9})
    )
    failed = TrialConfig(target="ner", pretraining=PretrainingConfig(scheme="adaptive", steps=3))
    repository.add_run_result(
        study="s", trial_number=2, config=failed, result=TrialResult.failed("OOM")
    )
    return repository


def rows(repo: Repository, **filters: str) -> list[tuple[str, str, str]]:
    buffer = io.StringIO()
    repo.export(buffer, format="csv", **filters)  # type: ignore[arg-type]
    return [
        (row["trial_number"], row["task"], row["family"])
        for row in csv.DictReader(io.StringIO(buffer.getvalue()))
    ]


def test_export_and_runs_pick_the_same_family(repo: Repository) -> None:
    with repo:
        none, random, adaptive = repo.runs()
        pos = next(f for trial, task, f in rows(repo) if task == "pos")
        assert len({none.family, random.family, adaptive.family, pos}) == 4
        assert repo.families() == {none.family, random.family, adaptive.family, pos}
        assert repo.families(pretraining="random") == {random.family, pos}
        assert rows(repo, family=pos[:4]) == [("1", "pos", pos)]
        assert rows(repo, family=random.family) == [("1", "ner", random.family)]
        assert rows(repo, family=adaptive.family.upper()) == [("2", "", adaptive.family)]
        assert rows(repo, pretraining="random") == [
            ("1", "ner", random.family),
            ("1", "pos", pos),
        ]
        for family in (none.family, random.family, adaptive.family, pos):
            exported = {trial for trial, _, _ in rows(repo, family=family)}
            assert {str(run.trial_number) for run in repo.runs(family=family)} == exported
        buffer = io.StringIO()
        repo.export(buffer, format="json", family=pos)
        (obj,) = json.loads(buffer.getvalue())
        assert obj["scores"] == {"pos": {"dev": {"f1": 0.9}}} and list(obj["measured_in"]) == [
            "pos"
        ]


def test_a_family_none_of_the_picked_runs_has_is_refused(repo: Repository) -> None:
    with repo:
        none = repo.runs(pretraining="none")[0]
        buffer = io.StringIO()
        with pytest.raises(ConfigError) as caught:
            repo.export(buffer, format="csv", family="ffff_", pretraining="none")
        assert str(caught.value) == (
            f"`family` 'ffff_': no score's model family starts with it; the families: "
            f"{none.family[:12]}"
        )
        assert buffer.getvalue() == ""  # nothing written
        assert repo.runs(family="ffff_") == []  # '_' is no wildcard
        with pytest.raises(ConfigError, match="no score's model family starts with it"):
            check_record_family(repo, "ffff", pretraining="none")
        check_record_family(repo, "ffff", status="pruned")  # no run picked: no error
        check_record_family(repo, none.family[:3])
        for bad, words in ((" ", "is empty"), (3, "not a name")):
            with pytest.raises(ConfigError, match=words):
                repo.runs(family=bad)  # type: ignore[arg-type]
            with pytest.raises(ConfigError, match=words):
                repo.export(io.StringIO(), format="csv", family=bad)  # type: ignore[arg-type]
