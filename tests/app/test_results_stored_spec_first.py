"""`records table` reads the stored spec before the runs: an unusable one is refused at once.

On a study of ~10^4 runs, reading them first cost most of a minute before the spec error.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import taskgraph
from taskgraph.errors import SpecError
from taskgraph.storage import open_repository
from taskgraph.storage.repository import Repository
from taskgraph.testing import complete_result
from taskgraph.trial import TrialConfig

GOOD = {"name": "s", "target": "ner", "objective": {"metric": "f1"}, "candidates": ["pos"]}


def _store(url: str, spec: dict[str, object]) -> None:
    with open_repository(url) as repo:
        repo.ensure_study("s", spec=spec, target="ner")
        config = TrialConfig(target="ner")
        result = complete_result(config, 0.5, split="test")
        repo.add_run_result(study="s", trial_number=0, config=config, result=result)


def test_an_unusable_stored_spec_is_refused_before_the_runs_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    _store(url, {**GOOD, "seeds": -1})

    def no_runs(self: Repository, *args: object, **kwargs: object) -> None:
        raise AssertionError("the runs were read before the stored spec was checked")

    monkeypatch.setattr(Repository, "runs", no_runs)
    with pytest.raises(SpecError, match=r"^the stored spec of 's': seeds: .*-1$"):
        taskgraph.results_table("s", storage=url)


def test_a_usable_stored_spec_still_gives_the_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    _store(url, GOOD)
    table = taskgraph.results_table("s", storage=url)
    assert table.target == "ner"
    assert [row.name for row in table.rows] == ["alone"]
    assert table.rows[0].cell("test", "f1", task="ner").values == (0.5,)
