"""``taskgraph dashboard``: serve optuna-dashboard on the records database.

The engine keeps its Optuna study in the same database as the records, so optuna-dashboard
shows every study, trial, parameter, intermediate curve and the ``taskgraph:*`` user
attributes (configuration, true state, failure reason).  It binds 127.0.0.1 by default:
the dashboard can edit studies, so reach it from elsewhere through an SSH tunnel.  An IPv6
host (``--host ::1``, or a name with only IPv6 addresses) is served over IPv6, and its
address printed in brackets (``http://[::1]:8080/dashboard``).
"""

from __future__ import annotations

import errno
import socket
from typing import Annotated

import typer

from taskgraph.cli.options import StorageOption

__all__ = ["dashboard"]


def dashboard(
    storage: StorageOption = None,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on (0: any free port).")
    ] = 8080,
    host: Annotated[
        str, typer.Option("--host", help="Address to bind; keep 127.0.0.1 unless you know why.")
    ] = "127.0.0.1",
) -> None:
    """Start optuna-dashboard on 127.0.0.1 for the study database and print its address."""
    import signal
    import socketserver
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    import optuna_dashboard

    from taskgraph.errors import ConfigError, NotFoundError
    from taskgraph.search.stored_studies import read_only_storage
    from taskgraph.storage import mask_url, resolve_storage_url
    from taskgraph.storage.migrate import NoRecordsError

    url = resolve_storage_url(storage)
    # The storage layer's checks first (a missing file or an unreachable server is one line);
    # like every read-only command, the dashboard creates no table.  A database without
    # taskgraph's tables gets the dashboard's hint, not the storage layer's: `db upgrade`
    # creates no Optuna table, so only a study makes it one the dashboard can show.
    try:
        optuna_storage = read_only_storage(url)
    except NoRecordsError:
        optuna_storage = None
    if optuna_storage is None:
        raise NotFoundError(
            f"no studies in {mask_url(url)} yet (no Optuna tables): run a study first, "
            "then start the dashboard"
        )

    class QuietHandler(WSGIRequestHandler):
        # A connection that sends nothing (a browser's preconnect) is dropped after this many
        # seconds instead of holding its thread for as long as the browser keeps it open.
        timeout = 30

        def log_message(self, format: str, *args: object) -> None:
            return  # one line per request would bury the address

    class ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
        # One thread per connection: an idle connection must not stall every other request,
        # and daemon threads let Ctrl-C end the process while one is still open.
        daemon_threads = True

    class ThreadingServer6(ThreadingServer):
        address_family = socket.AF_INET6

    bind_host = host.removeprefix("[").removesuffix("]")  # "[::1]", as in a URL, is "::1"
    literal6 = _is_ipv6_literal(bind_host)
    shown = f"[{bind_host}]" if literal6 else bind_host  # brackets are for IPv6 addresses only
    if not literal6:
        try:  # what the socket layer does to a name; it would fail as a TypeError
            bind_host.encode("idna")
        except UnicodeError as error:
            reason = str(error).rpartition("UnicodeError: ")[2].removesuffix(")")
            raise ConfigError(f"--host {host}: not a valid host name ({reason})") from None
    try:
        server = make_server(
            bind_host,
            port,
            optuna_dashboard.wsgi(optuna_storage),
            server_class=(
                ThreadingServer6
                if literal6 or _resolves_to_ipv6_only(bind_host, port)
                else ThreadingServer
            ),
            handler_class=QuietHandler,
        )
    except OSError as error:
        # A name that does not resolve, or an address not on this machine, is the host's
        # fault; a port in use or reserved, the port's.
        bad_host = isinstance(error, socket.gaierror) or error.errno == errno.EADDRNOTAVAIL
        flag = f"--host {host}" if bad_host else f"--port {port}"
        raise ConfigError(f"{flag}: cannot listen on {shown}:{port} ({error.strerror})") from None

    # wsgiref swallows an exception raised while it handles a request (a 500 for that
    # request), so a KeyboardInterrupt is not a reliable way out: Ctrl-C and SIGTERM set a flag
    # that the serving loop checks between requests.
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    server.timeout = 0.5  # handle_request() returns at least this often, even with no client
    address = f"http://{shown}:{server.server_port}/dashboard"
    # Plain echo, not rich: the address must stay on one line for scripts that read it.
    typer.echo(f"optuna-dashboard for {mask_url(url)} at {address} (Ctrl-C to stop)")
    try:
        while not stopping.is_set():
            server.handle_request()
        typer.echo("dashboard stopped")
    finally:
        server.server_close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _is_ipv6_literal(host: str) -> bool:
    """Return whether ``host`` is an IPv6 address (``::1``, ``fe80::1%eth0``), not a name."""
    import ipaddress

    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def _resolves_to_ipv6_only(host: str, port: int) -> bool:
    """Return whether the name ``host`` has IPv6 addresses and no IPv4 one (``ip6-localhost``).

    A name that does not resolve is ``False``: binding it then fails with the resolver's
    error, which names ``--host``.
    """
    try:
        families = {info[0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    except (OSError, UnicodeError):
        return False
    return families == {socket.AF_INET6}
