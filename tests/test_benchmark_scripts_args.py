"""Benchmark scripts honour what they are told and print what they did (audit 7).

``db_scale.py`` refuses a task count below its largest task set and an empty ``--backends``
(exit 2, one line) instead of crashing or running nothing; ``real_data_joint.py`` trains with
``--threads``; ``trial_cost.py`` trains the total steps its header states;
``orchestration_overhead.py`` leaves phases it did not measure out and writes the trials and
the start load to ``--json``; ``data_selection_bench.py`` prints kept of the capped pool;
``fault_injection.py`` names the seeds and ``max_retry`` values its studies used.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

from taskgraph.trial import TrialResult, TrialStatus

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


def load(relative: str) -> ModuleType:
    """Load ``benchmarks/<relative>`` as a module (a fresh copy, registered in sys.modules)."""
    path = BENCHMARKS / relative
    name = "audit7_" + path.with_suffix("").relative_to(BENCHMARKS).as_posix().replace("/", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def faults_importable(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``benchmarks/`` on sys.path, as when the fault scripts run (they import ``faults``)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    yield


# -- db_scale.py: counts it cannot run refused before any work --------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tasks", "3", "--backends", "sqlite"], "error: --tasks 3: needs at least 4 tasks"),
        (["--tasks", "1", "--backends", "sqlite"], "error: --tasks 1: needs at least 4 tasks"),
        (["--backends", ","], "error: --backends ',' names none"),
        (["--backends", ""], "error: --backends '' names none"),
    ],
)
def test_db_scale_refuses_too_few_tasks_and_no_backend(argv: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "db_scale.py"), "--records", "10", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""  # nothing measured, nothing printed


# -- real_data_joint.py: --threads reaches the trainer ----------------------------------------


class _Stop(Exception):
    pass


def test_real_data_joint_trains_with_the_threads_given(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = load("real_data_joint.py")
    seen: list[dict[str, Any]] = []

    def fake_train(config: Any, **kwargs: Any) -> TrialResult:
        seen.append(kwargs)
        raise _Stop

    monkeypatch.setattr(bench, "train_trial", fake_train)
    previous = torch.get_num_threads()
    try:
        with pytest.raises(_Stop):
            bench.main(["--architectures", "hard", "--threads", "1", "--steps", "2"])
    finally:
        torch.set_num_threads(previous)
    assert seen and seen[0].get("threads") == 1


# -- trial_cost.py: the steps are total steps ---------------------------------------------------


@pytest.mark.parametrize("config", ["short", "tr_ner"])
def test_trial_cost_counts_total_steps(config: str) -> None:
    bench = load("trial_cost.py")
    args = argparse.Namespace(config=config, lr=None, steps=5)
    trial = bench.trial_config(args, freeze=0)
    assert trial.step_budget == "total"
    assert trial.max_steps == 5


# -- orchestration_overhead.py: unmeasured phases left out; trials and start load in --json ----


class _Clock:
    def __init__(self) -> None:
        self.calls: dict[str, list[float]] = {"check_stop": [0.01, 0.01], "database_write": [0.2]}
        self.events: dict[tuple[str, int], float] = {}


class _Run:
    def __init__(self, number: int) -> None:
        from datetime import datetime, timedelta, timezone

        start = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=number)
        self.trial_number = number
        self.started_at = start
        self.finished_at = start + timedelta(milliseconds=5)


class _Repo:
    def __enter__(self) -> _Repo:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def runs(self, study: str) -> list[_Run]:
        return [_Run(0), _Run(1)]


def test_orchestration_overhead_leaves_unmeasured_phases_out(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bench = load("orchestration_overhead.py")
    monkeypatch.setattr(bench, "open_repository", lambda url: _Repo())
    # the local runner: no searcher, no suggestion or completion timestamps
    local = bench.breakdown("sqlite://", "local", _Clock(), wall=0.6, trials=2)
    for unmeasured in ("searcher", "trial_start", "result_reporting"):
        assert unmeasured not in local
    assert local["work"] == pytest.approx(0.005, abs=1e-6)
    assert local["other"] == pytest.approx(0.3 - 0.005 - 0.1 - 0.01, abs=1e-6)
    bench.show("local", local)
    line = capsys.readouterr().out
    assert "searcher=" not in line and "trial_start=" not in line and "work=5.0ms" in line

    figures = {"local": local} | {n: {"wall": 0.5} for n in ("ray_reuse", "ray_fresh_actors")}
    path = tmp_path / "o.json"
    bench.report(
        figures,
        trials=2,
        load_start=(1.0, 2.0, 3.0),
        load_end=(4.0, 5.0, 6.0),
        json_path=str(path),
    )
    written = json.loads(path.read_text())
    assert written["trials"] == 2
    assert written["load_start"] == [1.0, 2.0, 3.0] and written["load_end"] == [4.0, 5.0, 6.0]
    assert "searcher" not in written["figures"]["local"]


# -- data_selection_bench.py: kept of the capped pool --------------------------------------------


def test_data_selection_prints_kept_of_the_pool(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load("data_selection_bench.py")
    args = bench.parse_args(["--quick", "--trials", "1", "--pool", "jnlpba"])

    def fake_train(args: argparse.Namespace, config: Any) -> TrialResult:
        return TrialResult(
            status=TrialStatus.COMPLETE,
            objective=0.5,
            scores={args.target: {"test": {"f1": 0.4}, "dev": {"f1": 0.5}}},
            selection={"jnlpba": {"examples": 1395, "pool": 60, "kept": 11}},
        )

    monkeypatch.setattr(bench, "train", fake_train)
    bench.run_method(args, "random", 0)
    out = capsys.readouterr().out
    assert "'jnlpba': '11/60 (of 1395)'" in out, out
    assert "11/1395'" not in out


# -- fault_injection.py: the header names the settings used -------------------------------------


@pytest.mark.parametrize(
    ("faults", "settings"),
    [
        (2, "seeds 1, max_retry 3"),
        (4, "seeds 1 and 2, max_retry 3"),
        (6, "seeds 1 and 2, max_retry 3 and 0"),
    ],
)
def test_fault_injection_header_names_the_settings_used(
    faults_importable: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    faults: int,
    settings: str,
) -> None:
    bench = load("fault_injection.py")
    monkeypatch.setattr(bench, "run_backend", lambda backend, **kwargs: [])
    bench.main(["--faults", str(faults), "--backends", "sqlite", "--cluster", "none"])
    header = capsys.readouterr().out.splitlines()[0]
    assert header.startswith("fault injection: ")
    assert header.endswith(f"tabular runner, {settings}"), header
