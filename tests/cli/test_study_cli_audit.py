"""``study run/resume/show`` on the demo spec through the tabular runner (no training): which
option an error names, and how trials past a lowered budget read."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "searchspaces" / "demo.yaml"  # `runner: local` in the file
CANDIDATES = ["synth_related", "synth_conflict", "synth_unrelated", "synth_cls_related"]


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def write_table(path: Path, *, target: str = "synth_target") -> Path:
    """Write a score for every task set of the demo (up to 2 auxiliaries) and return ``path``."""
    lines = ["target,task_set,split,value,higher_is_better"]
    for size in range(3):
        for subset in itertools.combinations(CANDIDATES, size):
            key = "+".join([target, *subset])
            score = 0.5 + 0.01 * len(subset)
            lines += [f"{target},{key},val,{score:.4f},1", f"{target},{key},test,{score:.4f},1"]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Return a copy of the demo spec in its own folder; the working directory is another."""
    (tmp_path / "specs").mkdir()
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    return Path(shutil.copy(DEMO, tmp_path / "specs" / "demo.yaml"))


@pytest.mark.parametrize("table", ["nosuch.csv", "tab.csv"])
@pytest.mark.parametrize(
    "command",
    [
        ["run", "--runner", "tabular"],
        ["run", "--set", "runner.name=tabular"],
        ["validate", "--set", "runner=tabular"],
    ],
)
def test_a_runner_table_option_is_blamed_for_its_own_error(
    demo: Path, table: str, command: list[str]
) -> None:
    # `tab.csv` is a valid table in the working directory: a relative table is read from the
    # spec's folder, as the file's own would be, so it is missing there.
    write_table(Path("tab.csv"))
    db = demo.parent / "t.db"
    storage = ["--storage", f"sqlite:///{db}", "-q"] if command[0] == "run" else []
    code, _, err = invoke(
        "study", command[0], str(demo), *command[1:], "--set", f"runner.table={table}", *storage
    )
    assert code == 2
    assert err.strip() == (
        f"error: --set runner.table: table file does not exist: {demo.parent / table}"
    )
    assert not db.exists()


def test_a_relative_runner_table_option_is_read_beside_the_spec(demo: Path) -> None:
    write_table(demo.parent / "tab.csv")
    db = demo.parent / "t.db"
    code, out, err = invoke(
        "study", "run", str(demo), "--runner", "tabular", "--set", "runner.table=tab.csv",
        "--trials", "2", "--storage", f"sqlite:///{db}", "-q",
    )  # fmt: skip
    assert code == 0, err
    assert "2/2 trials (2 complete" in out


def test_a_table_without_the_target_names_the_runner_and_its_table(demo: Path) -> None:
    # The error is in neither option alone: the runner chosen with that table.
    table = write_table(Path("other.csv").resolve(), target="other")
    code, _, err = invoke(
        "study", "run", str(demo), "--runner", "tabular", "--set", f"runner.table={table}",
        "--storage", f"sqlite:///{demo.parent / 't.db'}", "-q",
    )  # fmt: skip
    assert code == 2
    assert err.strip() == (
        f"error: --runner, --set runner.table: target: 'synth_target' has no rows in {table}; "
        "its targets: other"
    )
    assert not (demo.parent / "t.db").exists()


def run_demo(demo: Path, *, trials: int) -> str:
    """Run the demo with the tabular runner to ``trials`` and return its storage URL."""
    url = f"sqlite:///{demo.parent / 't.db'}"
    table = write_table(demo.parent / "tab.csv")
    code, _, err = invoke(
        "study", "run", str(demo), "--runner", "tabular", "--set", f"runner.table={table}",
        "--trials", str(trials), "--storage", url, "-q",
    )  # fmt: skip
    assert code == 0, err
    return url


def test_resume_names_the_runner_option(demo: Path) -> None:
    url = run_demo(demo, trials=1)
    code, _, err = invoke("study", "resume", "demo", "--runner", "foo", "--storage", url, "-q")
    assert code == 2
    assert err.strip() == (
        "error: --runner: unknown runner 'foo'; known: local, ray, tabular (a plug-in adds more "
        "through the 'taskgraph.plugins' entry points or TASKGRAPH_PLUGINS)"
    )
    # An address for a runner that takes none names --address, as `study run` does.
    args = ("study", "resume", "demo", "--runner", "local", "--address", "auto")
    code, _, err = invoke(*args, "--storage", url, "-q")
    assert code == 2
    assert (
        err.strip()
        == "error: --address: unknown field 'address'; allowed: checkpoint_dir, checkpoints, name, threads"
    )


def test_trials_past_a_lowered_budget_never_read_as_a_fraction(demo: Path) -> None:
    url = run_demo(demo, trials=3)
    code, out, err = invoke("study", "resume", "demo", "--trials", "2", "--storage", url, "-q")
    assert code == 0, err
    assert out.startswith(
        "study 'demo': 3 trials, more than the budget of 2 (3 complete, 0 pruned, 0 failed);"
    )
    code, out, err = invoke("study", "show", "demo", "--storage", url)
    assert code == 0, err
    assert out.startswith(
        "study 'demo' (target synth_target, maximize): 3 trials, more than the budget of 2, "
        "3 complete, 0 pruned, 0 failed, 0 running\n"
    )
    assert "3/2" not in out


def test_show_spec_prints_the_stored_spec_whole(demo: Path) -> None:
    # optuna-dashboard cuts the stored spec at 1024 characters: this prints it whole, in a
    # form `study validate` takes back.
    import json

    import yaml

    # A learning rate that JSON writes as 5e-05, which YAML 1.1 would read as text.
    spec = demo.read_text()
    demo.write_text(spec.replace("learning_rate: {low: 1.0e-3,", "learning_rate: {low: 5.0e-5,"))
    assert demo.read_text() != spec
    url = run_demo(demo, trials=1)
    code, out, err = invoke("study", "show", "demo", "--spec", "--storage", url)
    assert code == 0, err
    stored = yaml.safe_load(out)
    assert stored["name"] == "demo" and stored["runner"]["name"] == "tabular"
    assert stored["budget"]["trials"] == 1
    code, text, err = invoke("study", "show", "demo", "--spec", "--json", "--storage", url)
    assert code == 0 and json.loads(text) == stored, err
    assert '"low": 5e-05' in text
    again = demo.parent / "again.yaml"
    again.write_text(out)
    code, out, err = invoke("study", "validate", str(again))
    assert code == 0 and out.startswith(f"valid {again}: study 'demo'"), err
    # The --json form, redirected to a .json file, is read back as JSON.
    again_json = demo.parent / "again.json"
    again_json.write_text(text)
    code, out, err = invoke("study", "validate", str(again_json))
    assert code == 0 and out.startswith(f"valid {again_json}: study 'demo'"), err
    code, _, err = invoke("study", "show", "demo", "--spec", "--top", "2", "--storage", url)
    assert code == 2 and err.strip() == (
        "error: `--top` lists trials; `--spec` prints the spec alone: give one"
    )
