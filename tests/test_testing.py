"""`taskgraph.testing`'s table writers: the rows they promise, and reproducible numbers."""

from __future__ import annotations

from pathlib import Path

from taskgraph.affinity.longtable import read_long_csv
from taskgraph.testing import write_pair_table


def test_write_pair_table_writes_the_rows_asked_for(tmp_path: Path) -> None:
    path = write_pair_table(
        tmp_path / "pairs.csv",
        seed=5,
        popular=0.05,
        splits=("val", "test"),
        counts={"t0": 2, "t3": 0},
        no_baseline={"t1": "test"},
    )
    rows = list(read_long_csv(path))
    baselines = [(r.target, r.split) for r in rows if len(r.task_set) == 1]
    assert len(baselines) == 7 + 6 and ("t1", "test") not in baselines
    pairs = [r for r in rows if len(r.task_set) == 2]
    assert len(pairs) == 2 * (2 + 0 + 5 * 6)
    assert {r.auxiliaries for r in pairs if r.target == "t0" and r.split == "val"} == {
        frozenset({"t1"}),
        frozenset({"t2"}),
    }
    assert len({r.split for r in rows}) == 2
    assert {r.value for r in rows if len(r.task_set) == 1} == {0.6}
    # No baseline rows at all, every pair; the same seed gives the same file.
    bare = write_pair_table(tmp_path / "bare.csv", seed=3, baselines=False)
    assert all(len(r.task_set) == 2 for r in read_long_csv(bare))
    assert len(list(read_long_csv(bare))) == 7 * 6
    again = write_pair_table(tmp_path / "again.csv", seed=3, baselines=False)
    assert again.read_text() == bare.read_text()
