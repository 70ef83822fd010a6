"""The throwaway PostgreSQL server of the tests is stopped even when its starter is killed.

A test run stopped by SIGTERM or ``kill -9`` runs no fixture teardown: without the watchdog
its server kept running (and its directory stayed) until someone stopped it by hand.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from taskgraph.testing import unavailable

STARTER = (
    "import time\n"
    "from taskgraph.storage.testing import start_postgres\n"
    "server = start_postgres()\n"
    "print(server.port, server.root, flush=True)\n"
    "time.sleep(600)\n"
)


def answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


def test_a_server_whose_starter_is_killed_is_stopped_and_removed() -> None:
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert starter.stdout is not None
        line = starter.stdout.readline()
        if not line:
            starter.wait(timeout=30)
            unavailable(f"PostgreSQL did not start: {starter.stderr.read()[-300:]!r}")
        port_text, root_text = line.split()
        port, root = int(port_text), Path(root_text)
        assert answers(port) and root.is_dir()
    except BaseException:
        starter.kill()
        starter.wait(timeout=30)
        raise
    # As kill -9 would: no teardown runs in it.  Not reaped yet (a zombie, as under a parent
    # that has not waited): polling its pid would still find it.
    starter.kill()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (root.exists() or answers(port)):
        time.sleep(0.5)
    gone = not answers(port) and not root.exists()
    starter.wait(timeout=30)
    assert gone, "the server outlived the process that started it"
