"""`study validate` refuses a candidate with no row in a tabular runner's table.

Every trial whose task set held it failed "no published result".
"""

from __future__ import annotations

import itertools
from pathlib import Path

from typer.testing import CliRunner

from taskgraph.cli.app import app


def _spec(folder: Path) -> tuple[Path, Path]:
    lines = ["target,task_set,split,value,higher_is_better"]
    for size in range(3):
        for subset in itertools.combinations("bc", size):
            key = "+".join(["a", *subset])
            lines += [f"a,{key},val,{0.5 + 0.1 * size:.2f},1", f"a,{key},test,0.4,1"]
    lines += ["zz,zz,val,0.5,1", "zz,a+zz,val,0.6,1"]  # zz is there, but never for target a
    table = folder / "table.csv"
    table.write_text("\n".join(lines) + "\n")
    spec = folder / "spec.yaml"
    spec.write_text(
        "name: bench\ntarget: a\ncandidates: [b, c]\n"
        "objective: {metric: score, split: dev, direction: maximize}\n"
        "sampler: {name: tpe, seed: 0}\nbudget: {trials: 2}\n"
        "runner: {name: tabular, table: table.csv}\n"
    )
    return spec, table


def test_a_candidate_without_a_row_is_refused_naming_the_table(tmp_path: Path) -> None:
    spec, table = _spec(tmp_path)
    says = (
        f"candidates[2]: 'yy' has no row in {table} (target a, split val): every trial with "
        "it would fail; the table's tasks: b, c"
    )
    done = CliRunner().invoke(app, ["study", "validate", str(spec), "--set", "candidates=[b,c,yy]"])
    assert done.exit_code == 2 and done.stdout == ""
    assert done.stderr == f"error: --set candidates: {says}\n"
    spec.write_text(spec.read_text().replace("[b, c]", "[b, c, yy]"))
    done = CliRunner().invoke(app, ["study", "validate", str(spec)])
    assert done.exit_code == 2 and done.stderr == f"error: {spec}: {says}\n"


def test_a_task_of_the_table_that_never_goes_with_the_target_is_refused(tmp_path: Path) -> None:
    spec, _ = _spec(tmp_path)
    done = CliRunner().invoke(app, ["study", "validate", str(spec), "--set", "candidates=[b,zz]"])
    assert done.exit_code == 2
    assert "candidates[1]: 'zz' has no row in" in done.stderr
    # an excluded candidate is never drawn, so it is no error
    done = CliRunner().invoke(
        app,
        ["study", "validate", str(spec), "--set", "candidates=[b,c,zz]",
         "--set", "search.auxiliaries.exclude=[zz]"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
