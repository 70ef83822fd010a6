"""How a spec check says no: a refusal, a warning printed once, an unknown registry name.

Shared by the check modules of this package.  ``_WARNED`` is the one record of the warnings
this process has printed, whichever module printed them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from taskgraph.errors import SpecError

#: the warnings printed so far: a command checks its spec more than once (loading, then
#: building the engine), and says each thing once
_WARNED: set[str] = set()


def _warn_once(line: str) -> None:
    """Print ``line`` on stderr unless this process printed it already."""
    if line not in _WARNED:
        _WARNED.add(line)
        print(line, file=sys.stderr)


def _refuse_or_warn(line: str, *, stored: bool) -> None:
    """Raise ``SpecError(line)``, or, for a stored study's spec, print it once as a warning."""
    if not stored:
        raise SpecError(line)
    _warn_once(f"warning: {line}")


def _check_registry(source: str, where: str, names: Iterable[Any], module: str, attr: str) -> None:
    import importlib

    registry = getattr(importlib.import_module(module), attr)
    for name in names:
        if name not in registry:
            raise SpecError(
                f"{source}: {where}: unknown {registry.kind} {name!r}; allowed: "
                f"{', '.join(registry.names())}"
            )
