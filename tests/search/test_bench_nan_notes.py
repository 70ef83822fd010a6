"""``taskgraph bench``: a standard error over targets with one target scored is nan with a note.

The ``*_diff_vs_prior_se`` of the pair gains and the source ranking is a standard error over
targets: with one target scored it is undefined, and bench printed ``nan`` with no note
(every other nan in its report comes with one).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from typer.testing import CliRunner

from taskgraph.cli.app import app

runner = CliRunner()

#: target a has six pair rows; b has three (uneven: only a has enough to rank hidden sources)
UNEVEN = """target,task_set,split,value,higher_is_better
a,a,val,0.5,1
a,a+b,val,0.5246,1
a,a+c,val,0.5484,1
a,a+d,val,0.5590,1
a,a+e,val,0.5885,1
a,a+f,val,0.5480,1
a,a+g,val,0.5845,1
b,b,val,0.5,1
b,b+a,val,0.4058,1
b,b+c,val,0.4931,1
b,b+d,val,0.5887,1
"""


def _bench(path: Path) -> dict:
    result = runner.invoke(
        app, ["bench", "--table", str(path), "--seeds", "3", "--no-search", "--json"]
    )
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _se_note(key: str, target: str) -> str:
    return (
        f"{key}_se is undefined (nan): a standard error over targets needs two or more targets "
        f"scored by both setfn and the popular-source prior, and only one was ({target!r})"
    )


def test_a_source_ranking_of_one_target_says_why_its_se_is_nan(tmp_path: Path) -> None:
    path = tmp_path / "uneven.csv"
    path.write_text(UNEVEN)
    report = _bench(path)
    assert math.isfinite(report["ranking_spearman_diff_vs_prior"])
    assert report["ranking_spearman_diff_vs_prior_se"] is None  # nan, written as null
    assert _se_note("ranking_spearman_diff_vs_prior", "a") in report["notes"]
    # Both targets' pair gains are scored: their standard error is a number, with no such note.
    assert math.isfinite(report["pair_spearman_diff_vs_prior_se"])
    assert not any(n.startswith("pair_spearman_diff_vs_prior_se") for n in report["notes"])


def test_pair_gains_of_one_scored_target_say_why_their_se_is_nan(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    # b keeps two pair rows: too few for a Spearman, so only a's pair gains are scored.
    path.write_text(UNEVEN.replace("b,b+a,val,0.4058,1\n", ""))
    report = _bench(path)
    assert math.isfinite(report["pair_spearman_diff_vs_prior"])
    assert report["pair_spearman_diff_vs_prior_se"] is None
    assert _se_note("pair_spearman_diff_vs_prior", "a") in report["notes"]
