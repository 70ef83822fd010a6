"""``--data`` names a directory that must exist, whatever the runner and the study's state.

The tabular runner reads no task data, so ``study run/resume --data /nonexistent`` was
accepted (exit 0) and the typo went unnoticed; it is one ``error:`` line and exit 2, as with a
runner that trains, and nothing is written.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
CANDIDATES = ["synth_related", "synth_conflict", "synth_unrelated", "synth_cls_related"]


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Return a copy of the demo spec with a score table beside it; cwd is that folder."""
    monkeypatch.chdir(tmp_path)
    lines = ["target,task_set,split,value,higher_is_better"]
    for size in range(3):
        for subset in itertools.combinations(CANDIDATES, size):
            key = "+".join(["synth_target", *subset])
            lines += [f"synth_target,{key},{split},{0.5 + 0.01 * size:.4f},1"
                      for split in ("val", "test")]  # fmt: skip
    (tmp_path / "tab.csv").write_text("\n".join(lines) + "\n")
    return Path(shutil.copy(REPO / "searchspaces" / "demo.yaml", tmp_path / "demo.yaml"))


def run_tabular(demo: Path, url: str, *args: str) -> tuple[int, str, str]:
    return invoke(
        "study", "run", str(demo), "--runner", "tabular", "--set", "runner.table=tab.csv",
        "--storage", url, "-q", "--trials", "2", *args,
    )  # fmt: skip


def test_resume_of_a_finished_tabular_study_refuses_a_missing_data_directory(
    demo: Path,
) -> None:
    url = f"sqlite:///{demo.parent / 'r.db'}"
    code, _, err = run_tabular(demo, url)
    assert code == 0, err
    missing = demo.parent / "nonexistent"
    for extra in ([], ["--trials", "3"]):  # finished, and with budget left
        code, out, err = invoke("study", "resume", "demo", "--storage", url, "-q",
                                "--data", str(missing), *extra)  # fmt: skip
        assert (code, out, err) == (
            2,
            "",
            f"error: --data: data directory does not exist: {missing}\n",
        )
    code, out, err = invoke("study", "resume", "demo", "--storage", url, "-q", "--data", "tab.csv")
    assert (code, out) == (2, "")
    assert err == "error: --data: data directory is a file, not a directory: tab.csv\n"
    code, out, _ = invoke("study", "status", "demo", "--storage", url, "--json")
    assert code == 0 and '"n_done": 2' in out  # the refused resumes ran no trial


def test_run_with_the_tabular_runner_refuses_a_missing_data_directory(demo: Path) -> None:
    database = demo.parent / "new.db"
    missing = demo.parent / "nonexistent"
    code, out, err = run_tabular(demo, f"sqlite:///{database}", "--data", str(missing))
    assert (code, out, err) == (2, "", f"error: --data: data directory does not exist: {missing}\n")
    assert not database.exists()
    # An existing directory is fine: the tabular runner still reads nothing from it.
    code, _, err = run_tabular(demo, f"sqlite:///{database}", "--data", str(demo.parent))
    assert code == 0, err


@pytest.mark.parametrize("spec_dir_exists", [False, True])
def test_data_overrides_the_specs_data_dir_for_a_runner_that_trains(
    tmp_path: Path, spec_dir_exists: bool
) -> None:
    """`--data DIR` points at moved data: the spec's data_dir (gone, or another folder) is not
    used (a regression of the check that made --data apply to every runner)."""
    import os

    from taskgraph.spec import load_spec
    from taskgraph.spec.checks import check_data

    data = os.environ.get("TASKGRAPH_DATA") or str(
        Path(__file__).resolve().parents[3] / "shared" / "data"
    )
    moved = tmp_path / "moved_away"
    if spec_dir_exists:
        moved.mkdir()
    root = Path(__file__).resolve().parents[2]
    spec = load_spec(root / "searchspaces" / "demo.yaml", overrides={"data_dir": str(moved)})
    assert check_data(spec, data_dir=data) == Path(data).resolve()
