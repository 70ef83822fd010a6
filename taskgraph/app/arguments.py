"""Type checks of the Python API's arguments, so a notebook gets a ConfigError naming the keyword.

The command line parses its options into the right types before it calls :mod:`taskgraph.app`;
a caller from Python can pass anything (``k="3"``, ``tasks="ner"``), which would otherwise
surface as a ``TypeError`` deep inside an estimator, or as a string read one letter at a time.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from taskgraph.errors import ConfigError

if TYPE_CHECKING:
    from taskgraph.search.engine import EngineObserver

__all__ = [
    "duration",
    "engine_observer",
    "filesystem_path",
    "flag",
    "integer",
    "mapping",
    "names",
    "number",
    "registered_name",
    "storage_url",
    "study_name",
]


def integer(value: object, keyword: str, *, minimum: int | None = None) -> int:
    """Return ``value`` as an int when it is an integer (``np.int64`` too; not a bool) of at
    least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"`{keyword}` must be an integer, but got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"`{keyword}` must be >= {minimum}, but got {value}")
    return int(value)


def number(value: object, keyword: str) -> float:
    """Return ``value`` as a float when it is a finite real number (``np.int64`` too; not a
    bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(f"`{keyword}` must be a finite number, but got {value!r}")
    return float(value)


def duration(value: object, keyword: str) -> float | str:
    """Return ``value`` when it is seconds (a real number, not a bool) or a duration's text
    (``"10m"``); the text, and the number's range, are checked where the duration is used."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real | str):
        raise ConfigError(
            f"`{keyword}` must be seconds (a number) or a duration such as '10m', but got {value!r}"
        )
    return value if isinstance(value, str) else float(value)


def flag(value: object, keyword: str) -> bool:
    """Return ``value`` when it is a bool, not something truthy: ``"false"`` is true, and a flag
    such as ``trust_remote_code`` unlocks what is off for safety."""
    if not isinstance(value, bool):
        raise ConfigError(f"`{keyword}` must be True or False, but got {value!r}")
    return value


def registered_name(value: object, keyword: str) -> str:
    """Return ``value`` when it is a string, as a registry's names are (``method="setfn"``)."""
    if not isinstance(value, str):
        raise ConfigError(f"`{keyword}` must be a name (a string), but got {value!r}")
    return value


def filesystem_path(value: object, keyword: str) -> Path:
    """Return ``value`` as a :class:`~pathlib.Path` when it is a ``str`` or ``os.PathLike``."""
    if not isinstance(value, str | os.PathLike):
        raise ConfigError(f"`{keyword}` must be a path (str or os.PathLike), but got {value!r}")
    return Path(value)


def mapping(value: object, keyword: str) -> dict[str, Any]:
    """Return a copy of ``value`` when it is a mapping (``{}`` for None)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"`{keyword}` must be a mapping (a dict), but got {value!r}")
    return dict(value)


def engine_observer(value: object, keyword: str = "observer") -> EngineObserver | None:
    """Return ``value`` when it is None or has every hook of
    :class:`~taskgraph.search.engine.EngineObserver` (a subclass has them): a missing one would
    fail only once the study is written."""
    from taskgraph.search.engine import EngineObserver

    hooks = [hook for hook in vars(EngineObserver) if hook.startswith("on_")]
    missing = [hook for hook in hooks if not callable(getattr(value, hook, None))]
    if value is not None and missing:
        raise ConfigError(
            f"`{keyword}` must be an EngineObserver (taskgraph.search.engine), but got "
            f"{value!r}, which has no {', '.join(missing)}"
        )
    return cast("EngineObserver | None", value)


def study_name(value: object, keyword: str = "name") -> str:
    """Return ``value`` when it is a study name (Optuna would take ``None`` to mean the
    database's only study)."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"`{keyword}` must be a non-empty study name, but got {value!r}")
    return value


def names(value: str | Iterable[str] | None, keyword: str) -> list[str] | None:
    """Return a list of names from ``"a,b"``, ``"a"`` or an iterable of strings (None stays None).

    A name given twice is kept once, in its first place: a metric is one column, a sampler one
    search.
    """
    if value is None:
        return None
    if not isinstance(value, str | Iterable):
        raise ConfigError(f"`{keyword}` must be names (strings), but got {value!r}")
    items = value.split(",") if isinstance(value, str) else list(value)
    if not all(isinstance(item, str) for item in items):
        raise ConfigError(f"`{keyword}` must be names (strings), but got {value!r}")
    return list(dict.fromkeys(item.strip() for item in items if item.strip()))


def storage_url(storage: str | None, *, spec_storage: str | None = None) -> str:
    """Return the storage URL of ``storage`` (else the environment's, ``spec_storage``, the
    default), as :func:`~taskgraph.storage.resolve_storage_url` chooses it.

    A URL it already chose (a :class:`~taskgraph.storage.urls.ResolvedURL`: the command line
    resolves ``--storage`` before it calls in) is returned as it is: resolved again it would
    be recorded as given by ``--storage``, and a missing default database would be reported as
    the option's.  Any other string is the caller's ``storage``, even when its text is a URL
    chosen before (the default, say): only the value knows where it came from.
    """
    from taskgraph.storage import resolve_storage_url
    from taskgraph.storage.urls import ResolvedURL

    if isinstance(storage, ResolvedURL):
        return storage
    return resolve_storage_url(storage, spec_storage=spec_storage)
