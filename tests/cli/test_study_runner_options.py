"""``--runner``/``--address`` with ``--set runner.*``: the documented GPU recipes, no Ray started."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from taskgraph.app.studies.specs import load_study_spec
from taskgraph.cli.app import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
TR_NER = str(REPO / "searchspaces" / "tr_ner_aux.yaml")  # `runner: local` in the file
RESOURCES = "runner.resources={cpu: 2, gpu: 0.5}"


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Return what `study run` and `study submit` would run, in place of running it."""
    from taskgraph.cli.study import run as study_cli
    from taskgraph.runners import ray as ray_runner

    seen: dict[str, Any] = {}

    def run(spec: Any, **kwargs: Any) -> None:
        seen["spec"] = spec

    def submit_study(spec: Any, **kwargs: Any) -> str:
        seen["spec"] = spec
        seen.update(kwargs)
        return "job-1"

    monkeypatch.setattr(study_cli, "_run", run)
    monkeypatch.setattr(ray_runner, "submit_study", submit_study)
    return seen


def test_the_readme_gpu_recipe_sets_the_ray_runners_resources(
    captured: dict[str, Any], tmp_path: Path
) -> None:
    # README.md and docs/search.md: the file's runner is `local`, which has no `resources`.
    db = f"sqlite:///{tmp_path / 'r.db'}"
    code, _, err = invoke(
        "study", "run", TR_NER, "--runner", "ray", "--address", "127.0.0.1:1",
        "--trials", "200", "--set", RESOURCES, "--storage", db,
    )  # fmt: skip
    assert code == 0, err
    spec = captured["spec"]
    assert spec.runner.name == "ray" and spec.runner.address == "127.0.0.1:1"
    assert (spec.runner.resources.cpu, spec.runner.resources.gpu) == (2, 0.5)
    assert spec.budget.trials == 200
    code, _, err = invoke(
        "study", "run", TR_NER, "--runner", "ray", "--address", "auto", "--trials", "200",
        "--set", "runner.resources={cpu: 4, gpu: 0.5}", "--set", "runner.max_concurrent_trials=8",
        "--storage", db,
    )  # fmt: skip
    assert code == 0, err
    spec = captured["spec"]
    assert (spec.runner.address, spec.runner.resources.cpu) == ("auto", 4)
    assert spec.runner.max_concurrent_trials == 8
    # --address alone switches to ray as well.
    code, _, err = invoke(
        "study", "run", TR_NER, "--address", "auto", "--set", RESOURCES, "--storage", db
    )
    assert code == 0, err
    assert captured["spec"].runner.name == "ray" and captured["spec"].runner.resources.gpu == 0.5


def test_the_docs_submit_recipe_sets_the_ray_runners_resources(
    captured: dict[str, Any], tmp_path: Path
) -> None:
    code, _, err = invoke(
        "study", "submit", TR_NER, "--address", "http://127.0.0.1:8265",
        "--storage", f"sqlite:///{tmp_path / 's.db'}",
        "--set", RESOURCES, "--set", "runner.max_concurrent_trials=4", "--trials", "200",
    )  # fmt: skip
    assert code == 0, err
    spec = captured["spec"]
    assert spec.runner.name == "ray" and spec.runner.resources.gpu == 0.5
    assert spec.runner.max_concurrent_trials == 4 and spec.budget.trials == 200
    assert captured["address"] == "http://127.0.0.1:8265"


def test_runner_name_override_comes_before_the_runner_sets_in_the_python_api() -> None:
    spec = load_study_spec(
        TR_NER,
        {"runner.resources": {"gpu": 0.25}, "runner.name": "ray", "runner.address": "auto"},
    )
    assert (spec.runner.name, spec.runner.address, spec.runner.resources.gpu) == (
        "ray",
        "auto",
        0.25,
    )
    spec = load_study_spec(TR_NER, {"runner": "ray", "runner.max_concurrent_trials": 3})
    assert spec.runner.name == "ray" and spec.runner.max_concurrent_trials == 3


def test_runner_option_errors_name_the_option(captured: dict[str, Any], tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'e.db'}"
    for args, message in (
        (["--runner", "bogus"], "error: --runner: unknown runner 'bogus'; known: "),
        (["--runner", "local", "--address", "auto"], "error: --address: unknown field 'address'"),
        (["--runner", "ray", "--set", "runner.resources.gpu=-1"],
         "error: --set runner.resources.gpu: "),
        (["--runner", "tabular"], "error: --runner: runner.table: required field is missing"),
    ):  # fmt: skip
        code, _, err = invoke("study", "run", TR_NER, "--storage", db, *args)
        assert code == 2 and err.startswith(message) and len(err.splitlines()) == 1, (args, err)
    assert "spec" not in captured


def test_an_empty_address_is_refused_not_a_local_ray(
    captured: dict[str, Any], tmp_path: Path
) -> None:
    db = tmp_path / "a.db"
    for command, target in (("run", TR_NER), ("resume", "tr_ner_aux"), ("submit", TR_NER)):
        for empty in ("", " "):
            code, _, err = invoke(
                "study", command, target, "--address", empty, "--storage", f"sqlite:///{db}"
            )
            assert code == 2 and err.startswith("error: --address is empty"), (command, err)
            assert len(err.splitlines()) == 1
            # submit requires --address: its message must not suggest dropping it.
            assert ("drop --address" in err) == (command != "submit"), (command, err)
    code, _, err = invoke(
        "study", "submit", TR_NER, "--address", "http://head:8265", "--cluster-address", "",
        "--storage", f"sqlite:///{db}",
    )  # fmt: skip
    assert (
        code == 2
        and err
        == "error: --cluster-address is empty: give a Ray address, or drop --cluster-address\n"
    )
    assert "spec" not in captured and not db.exists()


def test_help_says_what_runner_and_address_override() -> None:
    for command in ("run", "resume"):
        code, out, _ = invoke("study", command, "--help")
        flat = " ".join(out.replace("│", " ").split())
        assert code == 0
        assert "overrides runner.name" in flat and "overrides runner.address" in flat
        assert "switches to the ray runner" in flat


def test_a_runner_setting_on_a_spec_without_runner_sets_the_default_runners(
    tmp_path: Path,
) -> None:
    # The file names no runner (the local one by default): `--set runner.threads=2` was
    # "runner: needs a `name` key", a runner of that one setting and no name.
    text = (REPO / "searchspaces" / "demo.yaml").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.startswith("runner:")]
    spec_file = tmp_path / "demo.yaml"
    spec_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec = load_study_spec(spec_file, {"runner.threads": 2})
    assert spec.runner.name == "local" and spec.runner.threads == 2
    code, out, err = invoke("study", "validate", str(spec_file), "--set", "runner.threads=2")
    assert code == 0 and "runner local" in out, err
    code, _, err = invoke("study", "validate", str(spec_file), "--set", "runner.threads=x")
    assert code == 2 and err.startswith("error: --set runner.threads: "), err


def test_a_budget_held_by_another_drivers_running_trials_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A driver whose sibling was killed mid-trial stops at the budget (done + running) with
    # that trial RUNNING: the summary said nothing of it, nor how to retry it.
    from taskgraph.app.studies import running
    from taskgraph.search.engine import RunSummary
    from taskgraph.search.progress import StudyProgress

    def run_spec(spec: Any, **kwargs: Any) -> RunSummary:
        progress = StudyProgress(
            name=spec.name, direction="maximize", budget=12, n_complete=11, n_pruned=0,
            n_failed=0, n_interrupted=0, n_running=1, n_waiting=0, best_value=0.9,
            best_number=3, baseline_value=0.5, baseline_number=0,
        )  # fmt: skip
        return RunSummary(progress=progress, reason="budget")

    monkeypatch.setattr(running, "run_spec", run_spec)
    url = f"sqlite:///{tmp_path / 'r.db'}"
    code, out, err = invoke("study", "run", str(REPO / "searchspaces/demo.yaml"), "--storage", url)
    assert code == 0, err
    assert "11/12 trials" in out
    assert "1 trial(s) of another driver are still running" in err
    assert f"`taskgraph study resume demo --storage {url}`" in err
