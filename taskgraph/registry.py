"""Name -> implementation registries with lazy imports.

Sharing architectures, loss weightings, samplers, estimators, runners and task readers are each
looked up by name from a study spec.  Entries are registered as ``"module:attribute"`` strings so
that importing :mod:`taskgraph` does not import torch, Ray or Optuna; the object is imported on
first lookup.  An unknown name is an :class:`~taskgraph.errors.UnknownNameError` that lists the
known ones.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar, cast

from taskgraph.errors import UnknownNameError

__all__ = ["RUNNERS", "Registry", "lazy_exports"]

T = TypeVar("T")


def lazy_exports(
    package: str, namespace: dict[str, Any], names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return a package's PEP 562 ``__getattr__`` and ``__dir__`` for lazily imported names.

    ``names`` maps an exported name to the module that defines it; the first use of a name
    imports that module and keeps the value in ``namespace`` (the package's ``globals()``), so
    importing the package itself imports none of them.  An unknown name is the usual
    :class:`AttributeError`.
    """

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted([*namespace, *names])

    return __getattr__, __dir__


class Registry(Generic[T]):
    """A mapping from names to (lazily imported) objects of one kind."""

    def __init__(self, *, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, str | T] = {}

    def register(self, name: str, target: str | T) -> None:
        """Register ``target`` (an object or a ``"module:attr"`` path) under ``name``."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = target

    def get(self, name: str) -> T:
        """Return the object registered under ``name``, importing it on first use."""
        try:
            entry = self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "(none)"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known: {known}") from None
        if isinstance(entry, str) and ":" in entry:
            module_name, _, attr = entry.partition(":")
            obj = getattr(importlib.import_module(module_name), attr)
            self._entries[name] = obj
            return cast(T, obj)
        return cast(T, entry)

    def unregister(self, name: str) -> None:
        """Remove ``name`` (a plug-in that a test or a session registered for a while)."""
        if name not in self._entries:
            raise UnknownNameError(f"unknown {self.kind} {name!r}")
        del self._entries[name]

    def names(self) -> list[str]:
        """Return the registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


#: Runners by the name a spec's ``runner.name`` gives: :class:`taskgraph.runners.base.Runner`
#: objects.  It lives here, at the bottom of the layering, because the spec models check a
#: runner name against it while the runners sit above the spec; a plug-in registers its own
#: (``RUNNERS.register("slurm", "my_package.runner:SLURM")``) without editing taskgraph.
RUNNERS: Registry[Any] = Registry(kind="runner")
RUNNERS.register("local", "taskgraph.runners.builtin:LOCAL")
RUNNERS.register("ray", "taskgraph.runners.builtin:RAY")
RUNNERS.register("tabular", "taskgraph.runners.builtin:TABULAR")
