"""Helpers for the end-to-end tests: run the real `taskgraph` CLI as a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TASKGRAPH = Path(sys.executable).with_name("taskgraph")


def cli_env(**extra: str) -> dict[str, str]:
    """Return the environment for CLI subprocesses: offline hub, no inherited storage URL."""
    env = {k: v for k, v in os.environ.items() if k != "TASKGRAPH_STORAGE"}
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "120"}, **extra)
    return env


def taskgraph(
    *args: str, timeout: float = 600, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``taskgraph ARGS`` in the repository root and return the finished process."""
    done = subprocess.run(
        [str(TASKGRAPH), *args],
        cwd=REPO,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"taskgraph {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return done


def show(name: str, storage: str) -> dict[str, Any]:
    """Return ``taskgraph study show NAME --json``."""
    return json.loads(taskgraph("study", "show", name, "--storage", storage, "--json").stdout)  # type: ignore[no-any-return]


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


class Dashboard:
    """A `taskgraph dashboard` subprocess on a free port, stopped by its own pid."""

    def __init__(self, storage: str) -> None:
        self.process = subprocess.Popen(
            [str(TASKGRAPH), "dashboard", "--storage", storage, "--port", "0"],
            cwd=REPO,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert "http://127.0.0.1:" in line, line
        self.base = line.split(" at ")[1].split()[0].removesuffix("/dashboard")

    def study(self, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Return the study's summary and trials as optuna-dashboard's API gives them."""
        summaries = get_json(f"{self.base}/api/studies")["study_summaries"]
        summary = next(s for s in summaries if s["study_name"] == name)
        return summary, get_json(f"{self.base}/api/studies/{summary['study_id']}")["trials"]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
