"""`taskgraph study submit` to a real Ray cluster (a local head with its job server): the command
returns at once, the study runs as a Ray job, and its progress is read from the database."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskgraph.testing import unavailable

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli_env() -> dict[str, str]:
    # The job's driver runs `taskgraph` from the head's PATH, as on a cluster image.
    env = {k: v for k, v in os.environ.items() if k != "TASKGRAPH_STORAGE"}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        HF_HUB_OFFLINE="1",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AUTH_MODE="disabled",
    )
    return env


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Start `ray start --head --block` (stopped by its own pid); yield (job server, GCS)."""
    try:
        import aiohttp  # noqa: F401 - the job server needs ray[default]
    except ImportError:
        unavailable("ray[default] is not installed: no Ray job server (the `ray` extra)")
    gcs, dashboard = free_port(), free_port()
    log = tmp_path_factory.mktemp("ray") / "head.log"
    # Its own temp dir: the head's bootstrap file must not make other `ray.init()` calls on
    # this machine join it (short path: Ray's socket paths must stay under 108 bytes).
    temp_dir = tempfile.mkdtemp(prefix="tgray", dir="/tmp")
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                str(BIN / "ray"),
                "start",
                "--head",
                "--block",
                f"--temp-dir={temp_dir}",
                f"--port={gcs}",
                f"--dashboard-port={dashboard}",
                "--dashboard-host=127.0.0.1",
                "--num-cpus=2",
                f"--dashboard-agent-listen-port={free_port()}",
                "--disable-usage-stats",
                "--include-dashboard=true",
            ],
            env=cli_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    address = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{address}/api/version", timeout=5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the Ray head did not start:\n{log.read_text()[-3000:]}")
                time.sleep(1)
        yield address, f"127.0.0.1:{gcs}"
    finally:
        process.send_signal(signal.SIGTERM)  # --block: the head stops what it started
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_submit_returns_at_once_and_the_study_finishes_on_the_cluster(
    ray_head: tuple[str, str], tmp_path: Path
) -> None:
    address, gcs = ray_head
    storage = f"sqlite:///{tmp_path / 'submitted.db'}"
    started = time.monotonic()
    done = subprocess.run(
        [
            str(BIN / "taskgraph"),
            "study",
            "submit",
            "searchspaces/demo.yaml",
            "--address",
            address,
            "--cluster-address",
            gcs,
            "--storage",
            storage,
            "--trials",
            "2",
        ],
        cwd=REPO,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "submitted study 'demo' as Ray job taskgraph-demo-" in done.stdout
    submit_seconds = time.monotonic() - started

    deadline = time.monotonic() + 400
    status: dict[str, object] = {}
    while time.monotonic() < deadline:
        out = subprocess.run(
            [str(BIN / "taskgraph"), "study", "status", "demo", "--storage", storage, "--json"],
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        status = json.loads(out.stdout) if out.returncode == 0 else {}
        if status.get("n_done") == 2:
            break
        time.sleep(2)
    assert status.get("n_done") == 2, status
    assert status["n_complete"] + status["n_pruned"] == 2  # type: ignore[operator]
    # The command returned long before the study was done: it only created and submitted it.
    assert submit_seconds < time.monotonic() - started
