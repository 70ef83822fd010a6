"""``taskgraph dashboard``: optuna-dashboard on the records database, found through its HTTP API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.testing import unavailable

REPO = Path(__file__).resolve().parents[2]
TASKGRAPH = Path(sys.executable).with_name("taskgraph")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


class Dashboard:
    """A `taskgraph dashboard` subprocess on a free port; stopped by its own pid."""

    def __init__(self, storage: str, *, host: str | None = None) -> None:
        where = ["--host", host] if host is not None else []
        self.process = subprocess.Popen(
            [str(TASKGRAPH), "dashboard", "--storage", storage, "--port", "0", *where],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # As from a terminal: a background parent may have SIGINT ignored, which children inherit.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # the address, printed before serving
        shown = "127.0.0.1" if host is None else f"[{host}]" if ":" in host else host
        if f"http://{shown}:" not in line:
            self.stop()  # not left running when it says something else
            pytest.fail(f"expected the address http://{shown}:PORT, got {line!r}")
        self.address = line.split(" at ")[1].split()[0]
        self.base = self.address.removesuffix("/dashboard")

    def stop(self) -> int:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGINT)  # what Ctrl-C sends
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


def study_trials(base: str, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Return the study summary and its trials as optuna-dashboard's API reports them."""
    summaries = get_json(f"{base}/api/studies")["study_summaries"]
    summary = next(s for s in summaries if s["study_name"] == name)
    detail = get_json(f"{base}/api/studies/{summary['study_id']}")
    return summary, detail["trials"]


@pytest.fixture
def dashboard(fake_db: str) -> Iterator[Dashboard]:
    server = Dashboard(fake_db)
    yield server
    server.stop()


def test_dashboard_serves_the_study_and_its_trials(dashboard: Dashboard) -> None:
    summary, trials = study_trials(dashboard.base, "fake")
    assert summary["directions"] == ["maximize"]
    assert len(trials) == 3
    assert {t["state"] for t in trials} == {"Complete"}
    attrs = {a["key"] for a in trials[0]["user_attrs"]}
    assert {"taskgraph:config", "taskgraph:status", "auxiliaries"} <= attrs
    assert dashboard.address.startswith("http://127.0.0.1:")


def test_ctrl_c_stops_the_dashboard(fake_db: str) -> None:
    server = Dashboard(fake_db)
    get_json(f"{server.base}/api/studies")
    started = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - started < 20


def test_dashboard_errors_are_one_line(tmp_path: Path, fake_db: str) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["dashboard", "--storage", f"sqlite:///{tmp_path / 'none.db'}"])
    assert result.exit_code == 2 and "no records database" in result.stderr
    assert not (tmp_path / "none.db").exists()
    result = runner.invoke(app, ["dashboard", "--storage", fake_db, "--port", "70000"])
    assert result.exit_code == 2 and "--port" in result.stderr
    # an address that cannot be this machine's names --host, not --port
    result = runner.invoke(app, ["dashboard", "--storage", fake_db, "--host", "256.1.1.1"])
    assert result.exit_code != 0 and result.stderr.startswith("error: --host 256.1.1.1: cannot")


def test_an_idle_connection_neither_stalls_requests_nor_blocks_sigterm(fake_db: str) -> None:
    # A browser's preconnect opens a socket and sends nothing; a single-threaded server sat in
    # that socket's read, answering nobody and ignoring SIGTERM until the browser let go.
    import socket

    server = Dashboard(fake_db)
    idle = None
    try:
        host, port = server.base.removeprefix("http://").split(":")
        idle = socket.create_connection((host, int(port)), timeout=5)
        time.sleep(0.5)  # let the server accept it first
        started = time.monotonic()
        with urllib.request.urlopen(f"{server.base}/api/studies", timeout=5) as response:
            assert "study_summaries" in json.loads(response.read())
        assert time.monotonic() - started < 5
        started = time.monotonic()
        os.kill(server.process.pid, signal.SIGTERM)
        assert server.process.wait(timeout=3) == 0
        assert time.monotonic() - started < 3
    finally:
        if idle is not None:
            idle.close()
        if server.process.poll() is None:
            os.kill(server.process.pid, signal.SIGKILL)
            server.process.wait()


def test_an_ipv6_host_is_served_and_printed_in_brackets(fake_db: str) -> None:
    # The server was IPv4-only: `--host ::1` failed with "Address family for hostname not
    # supported".
    import socket

    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as error:
        unavailable(f"IPv6 loopback is not available here: {error}")
    server = Dashboard(fake_db, host="::1")
    try:
        assert server.address.startswith("http://[::1]:")
        assert server.address.endswith("/dashboard")
        summary, trials = study_trials(server.base, "fake")
        assert summary["study_name"] == "fake" and len(trials) == 3
    finally:
        assert server.stop() == 0


def test_an_empty_database_gets_the_dashboards_hint(tmp_path: Path) -> None:
    # `db upgrade`, the storage layer's hint, made no Optuna table: the dashboard then
    # refused again, asking for a study.  Both say to run a study.
    runner = CliRunner()
    empty = tmp_path / "empty.db"
    empty.touch()
    url = f"sqlite:///{empty}"
    before = runner.invoke(app, ["dashboard", "--storage", url, "--port", "0"])
    assert runner.invoke(app, ["db", "upgrade", "--storage", url]).exit_code == 0
    after = runner.invoke(app, ["dashboard", "--storage", url, "--port", "0"])
    for result in (before, after):
        assert result.exit_code == 2 and result.stdout == ""
        assert result.stderr.strip().splitlines() == [
            f"error: no studies in {url} yet (no Optuna tables): run a study first, "
            "then start the dashboard"
        ]
    assert "db upgrade" not in before.stderr
