"""Converters from ../shared/benchmarks produce the documented row counts and values."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskgraph.affinity.converters import CONVERTERS, convert
from taskgraph.affinity.gains import compute_gains
from taskgraph.errors import UnknownNameError

EXPECTED = {
    "mimic27": (77044, ["val", "test"], 27),
    "ettm1": (896, ["val", "test"], 7),
    "taskonomy5": (80, ["val"], 5),
    "standley_s1": (160, ["val", "test"], 5),
    "standley_s2": (160, ["val", "test"], 5),
    "standley_s3": (160, ["val", "test"], 5),
    "standley_s4": (160, ["val", "test"], 5),
    "taskweb": (462, ["val"], 21),
    "bingel": (100, ["val"], 10),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_row_counts(benchmarks_dir: Path, name: str) -> None:
    table = convert(name, root=benchmarks_dir)
    rows, splits, targets = EXPECTED[name]
    assert (len(table), table.splits, len(table.targets)) == (rows, splits, targets)
    baselines = [r for r in table if len(r.task_set) == 1]
    assert {r.target for r in baselines} == set(table.targets)


def test_published_gains_survive_the_conversion(benchmarks_dir: Path) -> None:
    # ETTm1 row 8 (first pair, HUFL+HULL): gains 0.0036 / -0.0081 in ETTm1_val_y.csv.
    raw = (
        (benchmarks_dir / "mtgnet2022_song" / "ETT" / "ETTm1_val_y.csv")
        .read_text()
        .splitlines()[7]
        .split()
    )
    table = convert("ettm1", root=benchmarks_dir)
    gains = {
        (g.target, g.auxiliaries): g.mean
        for g in compute_gains(table.to_records(split="val")).gains
    }
    assert gains[("HUFL", frozenset({"HULL"}))] == pytest.approx(float(raw[0]))
    assert gains[("HULL", frozenset({"HUFL"}))] == pytest.approx(float(raw[1]))
    bingel = convert("bingel", root=benchmarks_dir)
    pct = {(g.target, g.auxiliaries): g.mean for g in compute_gains(bingel.to_records()).gains}
    assert pct[("ccg", frozenset({"chunking"}))] == pytest.approx(0.013803199832688406)
    losses = convert("standley_s1", root=benchmarks_dir)
    assert losses.get("depth_zbuffer", {"depth_zbuffer"}, "val").value == 0.1695
    assert not losses.rows[0].higher_is_better


def test_unknown_table_lists_known() -> None:
    with pytest.raises(UnknownNameError, match="known: " + ", ".join(CONVERTERS)):
        convert("nope")
