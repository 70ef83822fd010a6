"""Check a Ray cluster address before a study is created or submitted.

``ray.init(address="host:port")`` with nothing listening there waits for minutes, with a port
that is not a Ray GCS (the Ray Client port 10001, a web server) it waits 40 s or for ever, and
with ``address="auto"`` and no cluster on this machine it raises after the driver has created
the study in the database.  :func:`check_ray_address` answers in a few seconds, with one line
naming the address, before anything is written: a :class:`~taskgraph.errors.ConfigError`
(exit 2) for an address that is malformed or not a GCS's, a :class:`ClusterUnavailableError`
(exit 1) where nothing answers:

* ``auto`` (or ``host:port``, a cluster's GCS address) is resolved as ``ray.init`` resolves it
  (``RAY_ADDRESS``, then the cluster this machine last started), and a Ray GCS must answer
  there (one gRPC call, :data:`CONNECT_TIMEOUT_S`);
* ``ray://host:port`` (Ray Client) is refused: Tune would run the driver's searcher on the
  cluster, away from the study's database connection.  The driver runs on a cluster node
  (``--address auto`` there) or is submitted (``study submit --address http://HEAD:8265``);
* any other ``scheme://`` is refused;
* ``local`` (:data:`LOCAL_ADDRESS`) is no cluster: taskgraph's own local Ray, exactly as no
  address (:func:`cluster_address` reads it as None), so that a resume can leave a cluster
  stored with the study that is gone.

:func:`check_job_server_address` checks ``study submit``'s job server (dashboard) address.
A cluster that answers and then fails is reported by Ray itself, later.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from taskgraph.errors import ConfigError, TaskgraphError

__all__ = [
    "LOCAL_ADDRESS",
    "ClusterUnavailableError",
    "check_job_server_address",
    "check_ray_address",
    "cluster_address",
    "split_host_port",
]

#: seconds a cluster address gets to accept a TCP connection and answer as a Ray GCS
CONNECT_TIMEOUT_S = 5.0

#: the GCS method the probe calls: what ``ray.init``'s own GCS client calls first
_GCS_PROBE = "/ray.rpc.NodeInfoGcsService/GetClusterId"

#: ``runner.address`` (``--address``) meaning taskgraph's own local Ray, as no address does
LOCAL_ADDRESS = "local"

_HOW_TO_START = (
    "start one with `ray start --head`, give another --address, `--address local` for a Ray "
    "of this machine, or run with --runner local"
)


class ClusterUnavailableError(TaskgraphError):
    """No Ray cluster (or job server) answers at a well-formed address: the environment, not
    the input (exit 1), as an unreachable database server is."""


def cluster_address(address: str | None) -> str | None:
    """Return the cluster ``runner.address`` names, or None for taskgraph's own local Ray
    (no address, or ``local``: ``ray.init(address="local")`` would start a Ray with every core
    and a dashboard, not the one ``runner.num_cpus`` sizes)."""
    if address is None or address.strip().lower() == LOCAL_ADDRESS:
        return None
    return address


def split_host_port(address: str) -> tuple[str, int]:
    """Return the host and port of ``host:port``, ``ray://host:port`` or ``http://host:port``.

    Raises :class:`ValueError` when there is no host or no port.
    """
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if not parts.hostname or parts.port is None:  # .port raises ValueError for a bad port
        raise ValueError(f"expected host:port, got {address!r}")
    return parts.hostname, parts.port


def check_ray_address(address: str, *, flag: str = "--address") -> None:
    """Raise :class:`ConfigError` for a malformed address or one that is not a Ray GCS's, and
    :class:`ClusterUnavailableError` where no cluster answers at Ray address ``address``.

    ``local`` (taskgraph's own local Ray, :func:`cluster_address`) needs no check.  ``flag``
    names the option (or spec field) the address came from, for the message.
    """
    if cluster_address(address) is None:
        return
    if "://" in address:
        scheme = address.split("://", 1)[0].lower()
        if scheme == "ray":
            raise ConfigError(
                f"{flag} {address}: Ray Client (ray://) is not supported: run taskgraph on a "
                "cluster node with --address auto (or HOST:6379), or submit the study with "
                "`taskgraph study submit SPEC --address http://HEAD:8265`"
            )
        raise ConfigError(
            f"{flag} {address}: expected auto or a Ray cluster's GCS address HOST:PORT "
            f"(e.g. HEAD:6379), got a {scheme}:// address"
        )
    if address.startswith(":"):  # before Ray logs a traceback of its own for it
        raise ConfigError(f"{flag} {address}: expected host:port, got no host")
    target = _resolve_gcs_address(address, flag=flag)
    try:
        host, port = split_host_port(target)
    except ValueError as error:
        raise ConfigError(f"{flag} {address}: {error}") from None
    resolved = "" if target == address else f" (resolved to {host}:{port})"
    _check_connects(host, port, what=f"{flag} {address}: no Ray cluster answers there{resolved}")
    reason = _gcs_refusal(f"{host}:{port}")
    if reason is not None:
        raise ConfigError(
            f"{flag} {address}: not a Ray cluster's GCS address{resolved}: {reason}; give the "
            "address `ray start --head` printed (HEAD:6379), not the Ray Client (10001) or "
            "dashboard (8265) port"
        )


def check_job_server_address(address: str, *, flag: str = "--address") -> None:
    """Raise :class:`ConfigError` unless ``address`` is an ``http(s)://host:port``, and
    :class:`ClusterUnavailableError` unless it accepts a connection (``study submit``'s Ray job
    server, the dashboard)."""
    scheme = address.split("://", 1)[0].lower() if "://" in address else ""
    if scheme not in ("http", "https"):
        raise ConfigError(
            f"{flag} {address}: study submit needs the Ray job server (dashboard) address, "
            "e.g. http://HEAD:8265"
        )
    try:
        host, port = split_host_port(address)
    except ValueError as error:
        raise ConfigError(f"{flag} {address}: {error}") from None
    _check_connects(
        host,
        port,
        what=f"{flag} {address}: no Ray cluster answers there (study submit needs its job "
        "server, the dashboard)",
        remedy="start one with `ray start --head --include-dashboard=true` or correct the address",
    )


def _check_connects(host: str, port: int, *, what: str, remedy: str = _HOW_TO_START) -> None:
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise ClusterUnavailableError(f"{what}: {reason}; {remedy}") from None


def _gcs_refusal(target: str) -> str | None:
    """Return why ``target`` (``host:port``, accepting connections) is not a Ray GCS, or None.

    One gRPC call with a deadline: ``ray.init`` itself waits 40 s at a gRPC server that is
    not a GCS and for ever at a server that does not speak gRPC.  A GCS that refuses the call
    (token authentication) still is one.  None, too, where gRPC is not installed.
    """
    try:
        import grpc
    except ImportError:
        return None
    channel = grpc.insecure_channel(target)
    try:
        call = channel.unary_unary(_GCS_PROBE, request_serializer=None, response_deserializer=None)
        call(b"", timeout=CONNECT_TIMEOUT_S)
    except grpc.RpcError as error:
        code = error.code() if callable(getattr(error, "code", None)) else None
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            return None
        if code is grpc.StatusCode.UNIMPLEMENTED:
            return "a gRPC server answers, but not Ray's GCS"
        return f"no Ray GCS answered within {CONNECT_TIMEOUT_S:g} s"
    finally:
        channel.close()
    return None


def _resolve_gcs_address(address: str, *, flag: str) -> str:
    """Return ``auto`` or a GCS ``host:port`` resolved as ``ray.init`` resolves it (``RAY_ADDRESS``,
    then the cluster this machine last started); ``address`` itself where this Ray has no
    such function (the connection check then uses it as written).  ``auto`` with no cluster
    started is a :class:`ClusterUnavailableError`, an address Ray cannot read a ConfigError."""
    try:
        from ray._private.services import canonicalize_bootstrap_address_or_die
    except ImportError:
        return address
    try:
        return str(canonicalize_bootstrap_address_or_die(address))
    except ConnectionError as error:
        reason = str(error).splitlines()[0]
        raise ClusterUnavailableError(f"{flag} {address}: {reason}") from None
    except ValueError as error:
        reason = str(error).splitlines()[0]
        raise ConfigError(f"{flag} {address}: {reason}") from None
