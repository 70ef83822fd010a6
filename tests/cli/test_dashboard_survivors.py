"""``taskgraph dashboard``: what its mutation audit found untested.

Pinned here: the server it builds (a thread per connection, idle connections dropped after 30 s,
IPv6 for an IPv6 literal, ``[::1]`` or a name with only IPv6 addresses, not for a dual-stack
name), the one line a bind failure gives (``--host`` for an address not on this machine, a name
that does not resolve or cannot be IDNA-encoded, ``--port`` for a port in use, with the OS's
reason alone), the address line (the bound port, brackets for IPv6 addresses only, the storage
URL's password masked), and the way out (``dashboard stopped``, the server closed, the signal
handlers given back, no line per request).

Most tests run the command in-process with wsgiref's ``make_server`` replaced by a stand-in
whose first request is a Ctrl-C, so no socket is opened; the ones that bind a real server
use :class:`tests.cli.test_dashboard_cli.Dashboard`, stopped by its own pid.
"""

from __future__ import annotations

import errno
import signal
import socket
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import optuna
import pytest
from typer.testing import CliRunner, Result

from taskgraph.cli.app import app
from tests.cli.test_dashboard_cli import Dashboard, get_json

PORT = 43210  # the port the stand-in server says it bound


class StandInServer:
    """Stands in for the WSGI server: each request it handles is a Ctrl-C."""

    server_port = PORT

    def __init__(self) -> None:
        self.requests = 0
        self.closed = False
        self.timeout: float | None = None

    def handle_request(self) -> None:
        self.requests += 1
        assert self.requests <= 3, "the serving loop did not stop after Ctrl-C"
        handler = signal.getsignal(signal.SIGINT)
        assert callable(handler)
        handler(signal.SIGINT, None)

    def server_close(self) -> None:
        self.closed = True


class Bind:
    """What the dashboard asked ``make_server`` for, and the server it got."""

    def __init__(self) -> None:
        self.host: str | None = None
        self.port: int | None = None
        self.server_class: Any = None
        self.handler_class: Any = None
        self.server = StandInServer()
        self.error: OSError | None = None

    def __call__(
        self, host: str, port: int, application: Any, *, server_class: Any, handler_class: Any
    ) -> StandInServer:
        self.host, self.port = host, port
        self.server_class, self.handler_class = server_class, handler_class
        if self.error is not None:
            raise self.error
        return self.server


@pytest.fixture
def bind(monkeypatch: pytest.MonkeyPatch) -> Bind:
    """Replace wsgiref's ``make_server`` and the study storage: no socket, no database."""
    import wsgiref.simple_server

    import taskgraph.search.stored_studies as stored_studies

    fake = Bind()
    monkeypatch.setattr(wsgiref.simple_server, "make_server", fake)
    monkeypatch.setattr(
        stored_studies, "read_only_storage", lambda url: optuna.storages.InMemoryStorage()
    )
    return fake


STORAGE = "sqlite:///unused.db"  # read_only_storage is replaced: never opened


def run(*args: str, storage: str = STORAGE) -> Result:
    return CliRunner().invoke(app, ["dashboard", "--storage", storage, *args])


@pytest.fixture
def addresses(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, list[int]], None]:
    """Give a made-up host name the address families listed (the resolver is replaced)."""
    real = socket.getaddrinfo
    names: dict[str, list[int]] = {}

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in names:
            return real(host, port, *args, **kwargs)
        return [(family, socket.SOCK_STREAM, 6, "", ("x", port)) for family in names[host]]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lambda host, families: names.__setitem__(host, families)


def test_each_connection_has_a_daemon_thread_and_an_idle_one_is_dropped_after_30s(
    bind: Bind,
) -> None:
    import socketserver

    result = run("--port", "0")
    assert result.exit_code == 0, result.output
    assert issubclass(bind.server_class, socketserver.ThreadingMixIn)
    assert bind.server_class.daemon_threads is True
    assert bind.server_class.address_family == socket.AF_INET
    assert bind.handler_class.timeout == 30
    assert (bind.host, bind.port) == ("127.0.0.1", 0)


def test_the_defaults_are_loopback_and_port_8080(bind: Bind) -> None:
    result = run()
    assert result.exit_code == 0, result.output
    assert (bind.host, bind.port) == ("127.0.0.1", 8080)


def test_the_address_line_shows_the_bound_port_and_ctrl_c_stops_cleanly(bind: Bind) -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    result = run("--port", "0")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"optuna-dashboard for {STORAGE} at http://127.0.0.1:{PORT}/dashboard (Ctrl-C to stop)",
        "dashboard stopped",
    ]
    assert bind.server.requests == 1
    assert bind.server.timeout == 0.5
    assert bind.server.closed
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_the_address_line_masks_the_storage_password(bind: Bind) -> None:
    result = run(storage="postgresql://user:s3cret@db.example/records")
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert first.startswith("optuna-dashboard for postgresql://user:***@db.example/records at ")
    assert "s3cret" not in result.stdout


@pytest.mark.parametrize("host", ["::1", "[::1]"])
def test_an_ipv6_literal_with_or_without_brackets_is_served_over_ipv6(
    bind: Bind, host: str
) -> None:
    result = run("--host", host)
    assert result.exit_code == 0, result.output
    assert bind.host == "::1"
    assert bind.server_class.address_family == socket.AF_INET6
    assert f"at http://[::1]:{PORT}/dashboard " in result.stdout


def test_a_name_with_only_ipv6_addresses_is_served_over_ipv6_and_shown_as_given(
    bind: Bind, addresses: Callable[[str, list[int]], None]
) -> None:
    addresses("v6only.test", [socket.AF_INET6])
    result = run("--host", "v6only.test")
    assert result.exit_code == 0, result.output
    assert bind.server_class.address_family == socket.AF_INET6
    assert f"at http://v6only.test:{PORT}/dashboard " in result.stdout


def test_a_dual_stack_name_is_served_over_ipv4(
    bind: Bind, addresses: Callable[[str, list[int]], None]
) -> None:
    addresses("both.test", [socket.AF_INET6, socket.AF_INET])
    result = run("--host", "both.test")
    assert result.exit_code == 0, result.output
    assert bind.server_class.address_family == socket.AF_INET
    assert f"at http://both.test:{PORT}/dashboard " in result.stdout


def test_a_name_in_brackets_is_bound_and_shown_without_them(
    bind: Bind, addresses: Callable[[str, list[int]], None]
) -> None:
    # Brackets belong to IPv6 addresses in a URL: http://[both.test]:port/ is not an address.
    addresses("both.test", [socket.AF_INET6, socket.AF_INET])
    result = run("--host", "[both.test]")
    assert result.exit_code == 0, result.output
    assert bind.host == "both.test"
    assert f"at http://both.test:{PORT}/dashboard " in result.stdout


def test_a_name_the_socket_layer_cannot_encode_is_one_line_naming_host(bind: Bind) -> None:
    # A label of 70 non-ASCII letters is too long once IDNA-encoded: the bind itself raised
    # "TypeError: encoding of hostname failed", a traceback.
    host = "\u00fc" * 70 + ".example"
    result = run("--host", host)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: --host {host}: not a valid host name (label empty or too long)"
    ]
    assert bind.host is None  # refused before any bind


@pytest.mark.parametrize(
    ("error", "flag"),
    [
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "--host nowhere.test"),
        (OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address"), "--host nowhere.test"),
        (OSError(errno.EADDRINUSE, "Address already in use"), "--port 8080"),
        (OSError(errno.EACCES, "Permission denied"), "--port 8080"),
    ],
)
def test_a_bind_failure_names_the_host_or_the_port(bind: Bind, error: OSError, flag: str) -> None:
    bind.error = error
    result = run("--host", "nowhere.test")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: {flag}: cannot listen on nowhere.test:8080 ({error.strerror})"
    ]


@pytest.fixture
def listening() -> Iterator[int]:
    """Return a 127.0.0.1 port that a socket of this test is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


def test_real_bind_failures_are_one_line_naming_the_host_or_the_port(
    fake_db: str, listening: int
) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["dashboard", "--storage", fake_db, "--port", str(listening)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: --port {listening}: cannot listen on 127.0.0.1:{listening} "
        "(Address already in use)"
    ]
    # 192.0.2.1 is TEST-NET-1 (RFC 5737): an address no machine has.
    result = runner.invoke(app, ["dashboard", "--storage", fake_db, "--host", "192.0.2.1"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: --host 192.0.2.1: cannot listen on 192.0.2.1:8080 (Cannot assign requested address)"
    ]
    # .invalid never resolves (RFC 6761).
    result = runner.invoke(
        app, ["dashboard", "--storage", fake_db, "--port", "0", "--host", "no-such-host.invalid"]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: --host no-such-host.invalid: cannot listen on no-such-host.invalid:0 ("
    )


def test_requests_are_not_logged_and_stopping_says_so(fake_db: str) -> None:
    server = Dashboard(fake_db)
    try:
        for _ in range(3):
            assert "study_summaries" in get_json(f"{server.base}/api/studies")
        with urllib.request.urlopen(server.address, timeout=30) as response:
            assert response.status == 200
    finally:
        code = server.stop()
    assert code == 0
    assert server.process.stdout is not None
    assert server.process.stdout.read() == "dashboard stopped\n"
