"""`taskgraph records`: what `list`, `show`, `studies` and `export` promise, pinned where a
changed line (a mutation audit's survivor) went unnoticed by the other records tests."""

from __future__ import annotations

import json
from pathlib import Path

from taskgraph.storage import open_repository
from taskgraph.testing import complete_result
from taskgraph.trial import TrialConfig
from tests.cli.test_records_cli import invoke


def _empty_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_repository(url).close()
    return url


def test_a_selection_no_run_has_says_that_no_run_matches(one_run_url: str) -> None:
    code, out, err = invoke(
        "records", "list", "--storage", one_run_url, "--selection", "on", "--json"
    )
    assert code == 0 and json.loads(out) == []
    assert err.strip() == "no run matches these filters"


def test_a_limit_of_zero_is_a_usage_error(one_run_url: str) -> None:
    code, out, err = invoke("records", "list", "--storage", one_run_url, "--limit", "0")
    assert code == 2 and out == ""
    assert "Invalid value for '--limit': 0 is not in the range 1<=x" in err


def test_studies_csv_of_an_empty_database_is_the_header_only(tmp_path: Path) -> None:
    # A script reading the CSV gets its columns, not the "no studies in ..." sentence.
    code, out, _ = invoke("records", "studies", "--storage", _empty_url(tmp_path), "--csv")
    assert code == 0
    assert out.splitlines() == ["name,target,direction,runs,complete,pruned,failed,created_at"]


def test_show_json_is_the_run_asked_for_among_its_seeds(one_run_url: str) -> None:
    # The export it is read from holds every seed of the same configuration.
    config = TrialConfig(target="ner", auxiliaries=("pos",), seed=1)
    with open_repository(one_run_url) as repo:
        repo.add_run_result(
            study="demo", trial_number=1, config=config, result=complete_result(config)
        )
    for run_id, seed in ((1, 0), (2, 1)):
        code, out, err = invoke("records", "show", str(run_id), "--storage", one_run_url, "--json")
        assert code == 0, err
        shown = json.loads(out)
        assert (shown["id"], shown["seed"]) == (run_id, seed)


def test_a_family_export_of_no_run_says_that_no_run_matches(tmp_path: Path) -> None:
    code, out, err = invoke(
        "records", "export", "-o", "-", "--storage", _empty_url(tmp_path), "--family", "abc"
    )
    assert code == 0 and len(out.splitlines()) == 1  # the header
    assert err.strip() == "wrote 0 rows to stdout (no run matches these filters)"


def test_a_long_export_takes_status_complete_as_it_is(one_run_url: str) -> None:
    # complete is what a long table holds anyway: naming it is no error.
    args = ("records", "export", "-f", "long", "-o", "-", "--storage", one_run_url)
    plain = invoke(*args)
    assert plain[0] == 0, plain[2]
    assert invoke(*args, "--status", "complete") == plain
