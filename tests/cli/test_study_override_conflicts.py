"""An option and a ``--set`` that give the same spec field two values are refused, naming both.

``--trials`` is ``budget.trials``, ``--runner`` is ``runner.name`` and ``--address`` is
``runner.address`` (and, alone, ``runner.name: ray``).  ``study run --set budget.trials=3
--trials 4`` took 4 silently (the docs say the options apply *before* ``--set runner.*``, the
code let the option win): now it is one ``error:`` line and exit 2, and nothing is written.
The same value twice is no conflict.  (``study resume`` has no ``--set``.)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
CANDIDATES = ["synth_related", "synth_conflict", "synth_unrelated", "synth_cls_related"]


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return Path(shutil.copy(REPO / "searchspaces" / "demo.yaml", tmp_path / "demo.yaml"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "budget.trials=3", "--trials", "4"],
         "--trials and --set budget.trials both set spec field budget.trials (4 and 3)"),
        (["--trials", "4", "--set", "budget={trials: 3, max_failures: 2}"],
         "--trials and --set budget both set spec field budget.trials (4 and 3)"),
        (["--set", "runner.name=local", "--runner", "tabular"],
         "--runner and --set runner.name both set spec field runner.name ('tabular' and 'local')"),
        (["--set", "runner=local", "--runner", "tabular"],
         "--runner and --set runner both set spec field runner.name ('tabular' and 'local')"),
        (["--set", "runner.name=local", "--address", "auto"],
         "--address (the ray runner) and --set runner.name both set spec field runner.name "
         "('ray' and 'local')"),
        (["--set", "runner.address=head:6379", "--address", "other:6379"],
         "--address and --set runner.address both set spec field runner.address "
         "('other:6379' and 'head:6379')"),
        (["--runner", "ray", "--set", "runner={name: ray, address: head:6379}",
          "--address", "other:6379"],
         "--address and --set runner both set spec field runner.address "
         "('other:6379' and 'head:6379')"),
    ],
)  # fmt: skip
def test_run_refuses_an_option_and_a_set_that_disagree(
    demo: Path, args: list[str], message: str
) -> None:
    database = demo.parent / "c.db"
    result = runner.invoke(
        app, ["study", "run", str(demo), "--storage", f"sqlite:///{database}", "-q", *args]
    )
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        f"error: {message}: give one\n",
    )
    assert not database.exists()


def test_the_same_value_twice_is_no_conflict(demo: Path) -> None:
    lines = ["target,task_set,split,value,higher_is_better"]
    for task_set in ["synth_target", *(f"synth_target+{name}" for name in CANDIDATES)]:
        lines += [f"synth_target,{task_set},{split},0.5,1" for split in ("val", "test")]
    (demo.parent / "tab.csv").write_text("\n".join(lines) + "\n")
    url = f"sqlite:///{demo.parent / 'c.db'}"
    result = runner.invoke(
        app,
        ["study", "run", str(demo), "--storage", url, "-q", "--json", "--set",
         "runner.name=tabular", "--runner", "tabular", "--set", "runner.table=tab.csv",
         "--set", "budget.trials=1", "--trials", "1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert '"budget": 1' in result.stdout


def test_submit_refuses_a_set_that_disagrees_with_its_trials_or_ray_runner(
    demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("taskgraph.runners.builtin.require_ray", lambda what: None)
    submit = ["study", "submit", str(demo), "--address", "http://127.0.0.1:9"]
    result = runner.invoke(app, [*submit, "--trials", "4", "--set", "budget.trials=3"])
    assert (result.exit_code, result.stderr) == (
        2,
        "error: --trials and --set budget.trials both set spec field budget.trials (4 and 3): "
        "give one\n",
    )
    result = runner.invoke(app, [*submit, "--set", "runner.name=local"])
    assert (result.exit_code, result.stderr) == (
        2,
        "error: study submit (the ray runner) and --set runner.name both set spec field "
        "runner.name ('ray' and 'local'): drop --set runner.name\n",
    )
