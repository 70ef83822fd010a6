"""Whether a test may give up: skipped locally, failed under ``CI=true``.

Data, services (PostgreSQL) and extras that CI must provide: a test never skips there for want
of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn


def in_ci() -> bool:
    """Return whether ``CI`` is set to a true value (the CI run sets ``CI=true``)."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> NoReturn:
    """Skip the calling test outside CI, fail it under ``CI=true``: for data, services and
    extras that CI must provide (a test must never skip there for want of them)."""
    import pytest

    if in_ci():
        pytest.fail(f"{reason} (CI=true: this must be available in CI)")
    pytest.skip(reason)


@contextmanager
def postgres_or_unavailable() -> Iterator[Any]:
    """Yield a PostgreSQL server started for tests (127.0.0.1, a free port; an empty
    ``taskgraph`` database), stopped and its directory deleted afterwards; when none can start,
    :func:`unavailable` (skipped locally, failed under ``CI=true``)."""
    from taskgraph.errors import StorageError
    from taskgraph.storage.testing import start_postgres

    try:
        server = start_postgres()
    except StorageError as error:
        unavailable(f"PostgreSQL cannot start: {error}")
    try:
        yield server
    finally:
        server.stop()
