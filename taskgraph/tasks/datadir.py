"""Where the datasets are: ``--data DIR``, else ``TASKGRAPH_DATA``, else ``../shared/data``."""

from __future__ import annotations

import os
from pathlib import Path

from taskgraph.errors import ConfigError, DataNotFoundError, option_name

__all__ = ["DATA_ENV", "resolve_data_dir"]

DATA_ENV = "TASKGRAPH_DATA"


def _default_candidates() -> list[Path]:
    # ../shared/data next to the working directory, and next to the source checkout.
    checkout = Path(__file__).resolve().parents[2]
    return [Path.cwd().parent / "shared" / "data", checkout.parent / "shared" / "data"]


def resolve_data_dir(
    option: str | os.PathLike[str] | None = None, *, keyword: str = "data_dir"
) -> Path:
    """Return the data directory: ``option``, else ``$TASKGRAPH_DATA``, else ``../shared/data``.

    Raises :class:`DataNotFoundError` naming the directory (and where it came from) when it
    does not exist or is a file, :class:`ConfigError` for an empty ``option`` (which
    ``Path`` would read as the working directory).  Messages name ``option`` as the Python
    keyword ``keyword`` that gave it (the command line's ``--data``).
    """
    name = option_name(keyword, flag="--data")
    if option is not None:
        if not os.fspath(option).strip():
            raise ConfigError(f"`{name}` is empty: give the data directory")
        source, path = name, Path(option)
    elif os.environ.get(DATA_ENV):
        source, path = DATA_ENV, Path(os.environ[DATA_ENV])
    else:
        for candidate in _default_candidates():
            if candidate.is_dir():
                return candidate.resolve()
        raise DataNotFoundError(
            f"no data directory: pass {option_name(keyword, flag='--data', metavar='DIR')} "
            "or set TASKGRAPH_DATA "
            f"(looked for ../shared/data at {', '.join(str(p) for p in _default_candidates())})"
        )
    path = path.expanduser()
    if path.exists() and not path.is_dir():
        raise DataNotFoundError(f"data directory from {source} is a file, not a directory: {path}")
    if not path.is_dir():
        raise DataNotFoundError(f"data directory from {source} does not exist: {path}")
    return path.resolve()
