"""``taskgraph study validate`` checks the data as ``study run`` does before it writes.

A spec that validate called "valid" failed at once in ``study run`` when its data directory
was missing: validate now takes ``--data`` and runs the same check (the data directory and
every task's files), so the two agree.  Runners that read no task data (a published table)
and studies of synthetic tasks only need no data directory, as in ``study run``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.testing import write_sst2_data

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()

# A catalog task read from files (the target), and a synthetic one (no files).
SPEC = """\
name: {name}
target: {target}
candidates: [synth_related]
encoder: {{name: tiny-bert, max_length: 16}}
search: {{sharing: [hard], max_steps: 4, batch_size: 4}}
budget: {{trials: 2}}
sampler: {{name: random, seed: 0}}
"""


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def write_spec(tmp_path: Path, *, target: str = "sst2", name: str = "check") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(SPEC.format(name=name, target=target))
    return path


def one_error_line(code: int, out: str, err: str) -> str:
    assert code != 0, out
    assert "Traceback" not in err and "valid" not in out, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_missing_taskgraph_data_is_refused_like_study_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKGRAPH_DATA", str(tmp_path / "nonexistent"))
    spec = write_spec(tmp_path)
    line = one_error_line(*invoke("study", "validate", str(spec)))
    assert "TASKGRAPH_DATA" in line and "does not exist" in line, line
    # `study run` of the same spec refuses it with the same line, and writes nothing.
    db = tmp_path / "run.db"
    run_line = one_error_line(
        *invoke("study", "run", str(spec), "--storage", f"sqlite:///{db}", "--quiet")
    )
    assert run_line == line
    assert not db.exists()


def test_shipped_spec_with_missing_data_is_not_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The auditor's case: a shipped quick spec under a TASKGRAPH_DATA that does not exist.
    monkeypatch.setenv("TASKGRAPH_DATA", str(tmp_path / "nonexistent"))
    spec = REPO / "searchspaces" / "quick" / "bioner_aux.yaml"
    line = one_error_line(*invoke("study", "validate", str(spec)))
    assert "TASKGRAPH_DATA" in line, line


def test_data_option_names_itself(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    line = one_error_line(
        *invoke("study", "validate", str(spec), "--data", str(tmp_path / "nowhere"))
    )
    assert line.startswith("error: --data"), line


def test_missing_task_file_names_the_task(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    line = one_error_line(*invoke("study", "validate", str(spec), "--data", str(empty)))
    assert str(spec) in line and "target" in line and "sst2" in line, line


def test_data_option_valid_and_json_names_the_directory(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    data = write_sst2_data(tmp_path / "data")
    code, out, err = invoke("study", "validate", str(spec), "--data", str(data))
    assert code == 0 and out.startswith("valid"), err
    code, out, err = invoke("study", "validate", str(spec), "--data", str(data), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["valid"] is True and summary["data_dir"] == str(data.resolve())


def test_synthetic_only_spec_needs_no_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKGRAPH_DATA", str(tmp_path / "nonexistent"))
    code, out, err = invoke("study", "validate", str(REPO / "searchspaces" / "demo.yaml"))
    assert code == 0 and out.startswith("valid"), err


def test_tabular_runner_needs_no_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKGRAPH_DATA", str(tmp_path / "nonexistent"))
    table = tmp_path / "table.csv"
    rows = ["target,task_set,split,value,higher_is_better"]
    for key, score in (("a", 0.5), ("a+b", 0.6)):
        rows += [f"a,{key},val,{score},1", f"a,{key},test,{score},1"]
    table.write_text("\n".join(rows) + "\n")
    spec = tmp_path / "bench.yaml"
    spec.write_text(
        "name: bench\ntarget: a\ncandidates: [b]\n"
        "objective: {metric: score, split: dev, direction: maximize}\n"
        "budget: {trials: 2}\n"
        f"runner: {{name: tabular, table: {table}}}\n"
    )
    code, out, err = invoke("study", "validate", str(spec), "--json")
    assert code == 0, err
    assert json.loads(out)["data_dir"] is None
