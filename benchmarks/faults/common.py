"""What every fault scenario shares: the synthetic table and specs, subprocess helpers, the audit.

A scenario starts a real ``taskgraph`` subprocess (:func:`start`, :func:`taskgraph_run`), injects
its fault, lets ``study resume`` finish, and returns an :class:`Outcome` (:func:`judge` audits the
records with :func:`taskgraph.testing.audit_study`).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy

from taskgraph.testing import trial_states

REPO = Path(__file__).resolve().parents[1]
TASKGRAPH = [sys.executable, "-m", "taskgraph.cli.app"]
FAKES = [sys.executable, "-m", "taskgraph.cli.fakes"]
CANDIDATES = {"b": 0.10, "c": -0.05, "d": 0.02, "e": -0.20}


@dataclass(kw_only=True)
class Outcome:
    """One study's fault and what the resume left."""

    backend: str
    fault: str
    seeds: int
    max_retry: int
    injected: bool
    completed: bool
    expected: int
    lost: int
    duplicated: int
    detail: str = ""

    @classmethod
    def not_injected(cls, fault: str, detail: str, *, max_retry: int) -> Outcome:
        """A cluster fault that could not be injected: reported as a failure, not hidden."""
        return cls(
            backend="cluster", fault=fault, seeds=1, max_retry=max_retry, injected=False,
            completed=False, expected=0, lost=0, duplicated=0, detail=detail,
        )  # fmt: skip


def write_table(path: Path) -> None:
    """Write target `a`'s score for every subset of the candidates (additive effects)."""
    lines = ["target,task_set,split,value,higher_is_better"]
    for size in range(len(CANDIDATES) + 1):
        for subset in itertools.combinations(sorted(CANDIDATES), size):
            score = 0.5 + sum(CANDIDATES[t] for t in subset)
            key = "+".join(["a", *subset])
            lines.append(f"a,{key},val,{score:.4f},1")
            lines.append(f"a,{key},test,{score - 0.01:.4f},1")
    path.write_text("\n".join(lines) + "\n")


def write_spec(
    path: Path, *, name: str, table: Path, budget: int, seeds: int, max_retry: int, seed: int
) -> None:
    path.write_text(
        f"name: {name}\ntarget: a\ncandidates: [{', '.join(sorted(CANDIDATES))}]\n"
        "objective: {metric: score, split: dev, direction: maximize}\n"
        f"sampler: {{name: random, seed: {seed}}}\npruner: none\nseeds: {seeds}\n"
        f"budget: {{trials: {budget}}}\n"
        f"recovery: {{heartbeat_interval: 1, grace_period: 2, max_retry: {max_retry}}}\n"
        f"runner: {{name: tabular, table: {table}, split: val}}\n"
    )


def env() -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k != "TASKGRAPH_STORAGE"}
    # The subprocesses import this checkout's taskgraph, as the benchmark does.
    paths = [str(REPO), *filter(None, environment.get("PYTHONPATH", "").split(os.pathsep))]
    environment["PYTHONPATH"] = os.pathsep.join(paths)
    return environment


def cluster_env(ray_dir: Path | None = None, **extra: str) -> dict[str, str]:
    environment = env()
    environment.update(
        RAY_AUTH_MODE="disabled",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AIR_NEW_OUTPUT="0",
        HF_HUB_OFFLINE="1",
        **extra,
    )
    environment.pop("RAY_ADDRESS", None)
    if ray_dir is not None:
        environment["RAY_TMPDIR"] = str(ray_dir)  # this study's own local Ray
    return environment


def left_behind(url: str) -> str:
    """Describe what the fault left: trials by Optuna state and records written."""
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sqlalchemy.text("SELECT state, COUNT(*) FROM trials GROUP BY state ORDER BY state")
            ).all()
            records = connection.execute(sqlalchemy.text("SELECT COUNT(*) FROM tg_runs")).scalar()
    except sqlalchemy.exc.SQLAlchemyError:
        return "left no tables"
    finally:
        engine.dispose()
    states = ", ".join(f"{state.lower()} {count}" for state, count in rows)
    return f"left {states or 'no trial'}; {records} records"


def start(argv: list[str], environment: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        argv,
        cwd=REPO,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 600) -> str:
    """Wait for ``process``; return its stderr (killed if it outlives ``timeout``)."""
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
    return stderr or ""


def wait_until(
    condition: Any, process: subprocess.Popen[str], what: str, timeout: float = 300
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            _, stderr = process.communicate()
            tail = (stderr or "").strip()[-400:]
            raise RuntimeError(f"the study ended (exit {process.returncode}) before {what}: {tail}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} within {timeout:.0f} s")
        time.sleep(0.1)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def one_error_line(returncode: int | None, stderr: str) -> tuple[bool, list[str]]:
    """Return (whether the process exited 1 with exactly one ``error:`` line and no traceback,
    its error lines): what a refused database must look like to a user."""
    lines = error_lines(stderr)
    return returncode == 1 and len(lines) == 1 and "Traceback" not in stderr, lines


def run(
    argv: list[str], environment: dict[str, str], *, timeout: float = 600, **kwargs: Any
) -> Any:
    """Run ``argv`` in the checkout to its end; return the completed process (text output)."""
    return subprocess.run(
        argv,
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )


def taskgraph_run(args: list[str], environment: dict[str, str], **kwargs: Any) -> Any:
    """Run ``taskgraph ARGS`` with the fake evaluator (:func:`run`)."""
    return run([*FAKES, *args], environment, **kwargs)


def complete_trials(url: str) -> int:
    return sum(state == "COMPLETE" for state in trial_states(url).values())


def judge(
    fault: str,
    name: str,
    url: str,
    *,
    budget: int,
    seeds: int,
    max_retry: int,
    detail: str,
    failed: int = 0,
    ok: bool = True,
) -> Outcome:
    """Audit the study: exact when ``ok``, its budget counted, ``failed`` of them failed (with a
    reason), the rest complete, nothing running; lost and duplicated records counted."""
    from taskgraph.testing import audit_study

    audit = audit_study(name, url, seeds=seeds)
    reasons = [r for r in audit.failure_reasons if r]
    exact = (
        ok
        and audit.counted == budget
        and audit.states.get("complete", 0) == budget - failed
        and audit.states.get("failed", 0) == failed
        and len(reasons) == failed
        and not audit.states.get("running")
        and not audit.states.get("waiting")
    )
    if reasons:
        detail += f"; failed with reason {reasons[0][:90]!r}"
    return Outcome(
        backend="cluster",
        fault=fault,
        seeds=seeds,
        max_retry=max_retry,
        injected=True,
        completed=exact,
        expected=audit.expected,
        lost=audit.lost,
        duplicated=audit.duplicated,
        detail=f"{detail}; after {audit.states}",
    )


def good(outcome: Outcome) -> bool:
    """Whether the fault was injected and the study is exact with nothing lost or duplicated."""
    return outcome.injected and outcome.completed and not (outcome.lost or outcome.duplicated)


def report(outcome: Outcome, label: str, detail: str) -> None:
    """Print one line per study: ``ok`` when its fault was injected and the study is exact with
    nothing lost or duplicated, else ``BAD`` (a fault not injected says so in ``detail``)."""
    print(f"  {'ok ' if good(outcome) else 'BAD'} {label} {detail}", flush=True)
