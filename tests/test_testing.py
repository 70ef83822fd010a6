"""`taskgraph.testing`'s helpers: the rows its table writers promise, reproducible numbers, the spec-check helper."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def test_spec_check_error_gives_the_one_line_refusal_and_fails_on_an_accepted_spec() -> None:
    from taskgraph.spec import spec_from_dict
    from taskgraph.testing import spec_check_error

    def spec(**hyperparameters: object) -> object:
        return spec_from_dict({
            "name": "s", "target": "synth_target", "candidates": ["synth_related"],
            "encoder": {"name": "tiny-bert", "max_length": 16},
            "training": {"hyperparameters": hyperparameters},
        })  # fmt: skip

    assert "doc_stride: must be an integer >= 1, got 0" in spec_check_error(spec(doc_stride=0))
    with pytest.raises(AssertionError, match="accepted"):
        spec_check_error(spec(doc_stride=16))
