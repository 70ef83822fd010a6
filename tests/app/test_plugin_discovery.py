"""Plug-ins are found like other Python tools' (entry points, ``TASKGRAPH_PLUGINS``), and the
records of a plug-in's study are read without it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import taskgraph
from taskgraph.app.affinity import load_records
from taskgraph.app.results.build import build_table
from taskgraph.errors import ConfigError, SpecError, UnknownNameError
from taskgraph.registry import PLUGINS_ENV, RUNNERS, Registry
from taskgraph.runners.base import RunnerCapabilities
from taskgraph.spec import spec_from_dict
from taskgraph.storage import open_repository
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus

PLUGIN = """
from taskgraph.registry import RUNNERS
from taskgraph.runners.base import RunnerCapabilities
from taskgraph.trial import TrialResult, TrialStatus


class FixedEvaluator:
    def evaluate(self, config, *, callbacks=(), checkpoint_key=None):
        score = 0.5 + 0.1 * len(config.auxiliaries)
        scores = {t: {"dev": {"accuracy": score}} for t in config.task_set}
        return TrialResult(status=TrialStatus.COMPLETE, scores=scores, objective=score)


class FixedRunner:
    name = "fixed"
    capabilities = RunnerCapabilities(trains=False, intermediate_reports=False)

    def build_evaluator(self, spec, *, data_dir=None):
        return FixedEvaluator()

    def run(self, engine):
        return engine.run()


def register():
    RUNNERS.register("fixed", FixedRunner())
"""

SPEC = """\
name: fixed_demo
target: synth_target
objective: {metric: accuracy, split: dev, direction: maximize}
candidates: [synth_related, synth_conflict, synth_unrelated]
search:
  auxiliaries: {max_size: 2}
  sharing: [hard]
seeds: 1
budget: {trials: 3, max_failures: 2}
sampler: {name: random, seed: 0}
runner: {name: fixed}
"""


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    (tmp_path / "tg_fixed_plugin.py").write_text(PLUGIN + "\nregister()\n")
    (tmp_path / "tg_fixed_callable.py").write_text(PLUGIN)  # registers when register() is called
    (tmp_path / "tg_broken_plugin.py").write_text("import tg_no_such_module\n")
    (tmp_path / "spec.yaml").write_text(SPEC)
    return tmp_path


def taskgraph_cli(*args: str, cwd: Path, plugins: str | None, path: str) -> tuple[int, str, str]:
    """Run the command line in a fresh process; return its exit code, stdout and stderr."""
    env = {k: v for k, v in os.environ.items() if k != PLUGINS_ENV}
    env["PYTHONPATH"] = os.pathsep.join([path, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if plugins is not None:
        env[PLUGINS_ENV] = plugins
    done = subprocess.run(
        [sys.executable, "-m", "taskgraph.cli.app", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.returncode, done.stdout, done.stderr


def test_a_plugin_runner_runs_resumes_and_is_read_from_the_command_line(plugin_dir: Path) -> None:
    url = f"sqlite:///{plugin_dir / 'records.db'}"
    cli: dict[str, Any] = {"cwd": plugin_dir, "path": str(plugin_dir)}
    code, _, err = taskgraph_cli(
        "study", "run", "spec.yaml", "--storage", url, "-q", plugins="tg_fixed_plugin", **cli
    )
    assert code == 0, err
    # A fresh process without the plug-in reads the records: the table needs no runner.
    code, out, err = taskgraph_cli(
        "records", "table", "fixed_demo", "--storage", url, plugins=None, **cli
    )
    assert code == 0, err
    assert "alone" in out
    code, out, err = taskgraph_cli(
        "study", "show", "fixed_demo", "--storage", url, plugins=None, **cli
    )
    assert code == 0, err
    assert "3/3 trials, 3 complete" in out
    # Resuming needs the runner: refused in one line that says where plug-ins come from.
    code, _, err = taskgraph_cli(
        "study", "resume", "fixed_demo", "--storage", url, "-q", plugins=None, **cli
    )
    assert code == 2
    assert err.strip().endswith("entry points or TASKGRAPH_PLUGINS)")
    assert "unknown runner 'fixed'" in err and len(err.strip().splitlines()) == 1
    # Resuming runs the study's runner: `module:callable` registers it in a fresh process.
    code, out, err = taskgraph_cli(
        "study", "resume", "fixed_demo", "--storage", url, "--trials", "4", "-q",
        plugins=" tg_fixed_callable:register ,", **cli,
    )  # fmt: skip
    assert code == 0, err
    assert "4/4 trials (4 complete" in out


def test_an_installed_entry_point_is_found(plugin_dir: Path) -> None:
    site = plugin_dir / "site"
    info = site / "tg_fixed_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tg-fixed-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[taskgraph.plugins]\nfixed = tg_fixed_plugin\n")
    path = os.pathsep.join([str(site), str(plugin_dir)])
    code, _, err = taskgraph_cli(
        "study", "validate", "spec.yaml", cwd=plugin_dir, plugins=None, path=path
    )
    assert code == 0, err


def test_a_broken_plugin_is_one_line_naming_it(plugin_dir: Path) -> None:
    code, _, err = taskgraph_cli(
        "study", "validate", "spec.yaml", cwd=plugin_dir, plugins="tg_broken_plugin",
        path=str(plugin_dir),
    )  # fmt: skip
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "tg_broken_plugin" in lines[0] and PLUGINS_ENV in lines[0]
    assert "ModuleNotFoundError" in lines[0] and "tg_no_such_module" in lines[0]


def test_plugins_load_only_when_a_lookup_misses(plugin_dir: Path) -> None:
    # A command naming only built-in entries never imports the (here broken) plug-in.
    cli: dict[str, Any] = {
        "cwd": plugin_dir,
        "plugins": "tg_broken_plugin",
        "path": str(plugin_dir),
    }
    code, out, err = taskgraph_cli("--help", **cli)
    assert code == 0 and "tg_broken_plugin" not in err, err
    assert "tasks" in out
    code, out, err = taskgraph_cli("tasks", "list", **cli)
    assert code == 0 and "tg_broken_plugin" not in err, err
    assert " tasks in " in out


def test_an_unknown_name_says_where_plugins_come_from() -> None:
    things: Registry[object] = Registry(kind="thing")
    things.register("known", object())
    with pytest.raises(UnknownNameError, match=f"known: known .*entry points or {PLUGINS_ENV}"):
        things.get("unknown")


class NoTraining:
    """A plug-in runner that trains nothing (its scores come from elsewhere)."""

    name = "no_training"
    capabilities = RunnerCapabilities(trains=False, intermediate_reports=False)


@pytest.fixture
def no_training() -> Iterator[None]:
    RUNNERS.register("no_training", NoTraining())
    try:
        yield
    finally:
        RUNNERS.unregister("no_training")


NER = "wikiann_en_ner"  # a catalog task: metrics f1 (primary), precision, recall
UPOS = "ud_en_ewt_upos"


def _store(url: str, spec: dict[str, Any], runs: dict[tuple[str, ...], float]) -> None:
    target = spec["target"]
    with open_repository(url) as repo:
        repo.ensure_study(spec["name"], spec=spec, target=target)
        for number, (aux, value) in enumerate(runs.items()):
            scores = {t: {"dev": {"f1": value, "precision": 1 - value}} for t in (target, *aux)}
            result = TrialResult(
                status=TrialStatus.COMPLETE, scores=scores, objective=value, cost=Cost(seconds=1)
            )
            config = TrialConfig(target=target, auxiliaries=aux, seed=0)
            repo.add_run_result(
                study=spec["name"], trial_number=number, config=config, result=result
            )


def test_a_runner_that_trains_nothing_has_no_catalog_metric(
    no_training: None, tmp_path: Path
) -> None:
    # Like `runner: tabular`: its target is not read as the catalog's task, whatever its name.
    url = f"sqlite:///{tmp_path / 'records.db'}"
    objective = {"metric": None, "split": "dev", "direction": "maximize"}
    spec = {
        "name": "canned",
        "target": NER,
        "objective": objective,
        "runner": {"name": "no_training"},
    }
    _store(url, spec, {(): 0.5, (UPOS,): 0.6})
    with pytest.raises(ConfigError, match="no study objective names one"):
        load_records(storage=url)


def test_the_table_of_a_plugin_study_needs_no_plugin(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    spec = {
        "name": "gone", "target": NER, "candidates": [UPOS],
        "objective": {"metric": "f1", "split": "dev", "direction": "maximize"},
        "runner": {"name": "uninstalled_plugin", "its": "setting"},
    }  # fmt: skip
    _store(url, spec, {(): 0.5, (UPOS,): 0.6})
    table = taskgraph.results_table("gone", storage=url)
    assert [row.name for row in table.rows] == ["alone", UPOS]


def test_a_corrupt_stored_spec_keeps_its_error() -> None:
    corrupt = {"name": "bad", "target": NER, "seeds": -1, "runner": {"name": "local"}}
    with pytest.raises(SpecError) as expected:
        spec_from_dict(corrupt, source="the stored spec of 'bad'")
    with pytest.raises(SpecError) as caught:
        build_table("bad", corrupt, [])
    assert str(caught.value) == str(expected.value)
    # A plug-in's study: what is wrong is named, not the runner that is not loaded.
    with pytest.raises(SpecError, match=r"^the stored spec of 'bad': seeds: .*-1$"):
        build_table("bad", {**corrupt, "runner": {"name": "uninstalled"}}, [])
