"""`study validate` and `study run` read a tabular runner's table once each."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import taskgraph.affinity.longtable as longtable
import taskgraph.runners.tabular as tabular
from taskgraph.affinity.longtable import LongTable
from taskgraph.cli.app import app
from taskgraph.files import clear_unchanged


def _spec(folder: Path) -> Path:
    lines = ["target,task_set,split,value,higher_is_better"]
    for size in range(3):
        for subset in itertools.combinations("bc", size):
            key = "+".join(["a", *subset])
            lines += [f"a,{key},val,{0.5 + 0.1 * size:.2f},1", f"a,{key},test,0.4,1"]
    table = folder / "table.csv"
    table.write_text("\n".join(lines) + "\n")
    spec = folder / "bench.yaml"
    spec.write_text(
        "name: bench\ntarget: a\ncandidates: [b, c]\n"
        "objective: {metric: score, split: dev, direction: maximize}\n"
        "sampler: {name: tpe, seed: 0}\nbudget: {trials: 2}\n"
        f"runner: {{name: tabular, table: {table}}}\n"
        f"storage: 'sqlite:///{folder / 'study.db'}'\n"
    )
    return spec


def test_validate_and_run_read_the_table_once_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TASKGRAPH_STORAGE", raising=False)
    reads: list[str] = []
    read_long_csv = longtable.read_long_csv

    def counting(path: str | os.PathLike[str]) -> LongTable:
        reads.append(os.fspath(path))
        return read_long_csv(path)

    # Both names: the tabular runner's reader, and the reader itself for any other caller.
    monkeypatch.setattr(longtable, "read_long_csv", counting)
    monkeypatch.setattr(tabular, "read_long_csv", counting)
    spec = _spec(tmp_path)
    for command in (["study", "validate", str(spec)], ["study", "run", str(spec), "--quiet"]):
        clear_unchanged()  # one command per process, as from a shell
        reads.clear()
        done = CliRunner().invoke(app, command)
        assert done.exit_code == 0, done.output
        assert len(reads) == 1, (command[1], reads)
