"""Check a Ray cluster address before a study is created or submitted.

``ray.init(address="host:port")`` with nothing listening there waits for minutes, and with
``address="auto"`` and no cluster on this machine it raises after the driver has created the
study in the database.  :func:`check_ray_address` answers in a few seconds, with one
:class:`~taskgraph.errors.ConfigError` naming the address, before anything is written:

* ``auto`` (or ``host:port``, a cluster's GCS address) is resolved as ``ray.init`` resolves it
  (``RAY_ADDRESS``, then the cluster this machine last started), and that host and port must
  accept a connection;
* ``ray://host:port`` (Ray Client) and ``http://host:8265`` (the job API, ``study submit``)
  must accept a connection.

A cluster that accepts the connection and then fails is reported by Ray itself, later.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from taskgraph.errors import ConfigError

__all__ = ["check_ray_address", "split_host_port"]

#: seconds a cluster address gets to accept a TCP connection
CONNECT_TIMEOUT_S = 5.0


def split_host_port(address: str) -> tuple[str, int]:
    """Return the host and port of ``host:port``, ``ray://host:port`` or ``http://host:port``.

    Raises :class:`ValueError` when there is no port.
    """
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if not parts.hostname or parts.port is None:  # .port raises ValueError for a bad port
        raise ValueError(f"expected host:port, got {address!r}")
    return parts.hostname, parts.port


def check_ray_address(address: str, *, flag: str = "--address") -> None:
    """Raise :class:`ConfigError` when nothing answers at Ray address ``address``.

    ``local`` (a Ray of the driver's own) needs no check.  ``flag`` names the option (or spec
    field) the address came from, for the message.
    """
    if address == "local":
        return
    target = address
    if "://" not in address:  # a GCS address or "auto": resolved as ray.init resolves it
        target = _resolve_gcs_address(address, flag=flag)
    try:
        host, port = split_host_port(target)
    except ValueError as error:
        raise ConfigError(f"{flag} {address}: {error}") from None
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        resolved = "" if target == address else f" (resolved to {host}:{port})"
        raise ConfigError(
            f"{flag} {address}: no Ray cluster answers there{resolved}: {reason}; start one "
            "with `ray start --head` or correct the address"
        ) from None


def _resolve_gcs_address(address: str, *, flag: str) -> str:
    """Return ``auto`` or a GCS ``host:port`` resolved as ``ray.init`` resolves it (``RAY_ADDRESS``,
    then the cluster this machine last started); ``address`` itself where this Ray has no
    such function (the connection check then uses it as written)."""
    try:
        from ray._private.services import canonicalize_bootstrap_address_or_die
    except ImportError:
        return address
    try:
        return str(canonicalize_bootstrap_address_or_die(address))
    except (ConnectionError, ValueError) as error:
        reason = str(error).splitlines()[0]
        raise ConfigError(f"{flag} {address}: {reason}") from None
