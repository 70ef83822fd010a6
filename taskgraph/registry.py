"""Name -> implementation registries with lazy imports.

Sharing architectures, loss weightings, samplers, estimators, runners and task readers are each
looked up by name from a study spec.  Entries are registered as ``"module:attribute"`` strings so
that importing :mod:`taskgraph` does not import torch, Ray or Optuna; the object is imported on
first lookup.  An unknown name is an :class:`~taskgraph.errors.UnknownNameError` that lists the
known ones.

Plug-ins outside taskgraph are found the way Python tools find theirs (:func:`load_plugins`):
the ``taskgraph.plugins`` entry-point group of the installed distributions, then the
``TASKGRAPH_PLUGINS`` environment variable (comma-separated ``module`` or ``module:callable``
names, for a plug-in that is not packaged).  Each names a module whose import registers its
runners, samplers, estimators, ... in these registries, or a callable (no arguments) that does.
They are loaded once per process, and only when a lookup misses, so a command that names only
built-in entries imports no plug-in.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import Any, Generic, TypeVar, cast

from taskgraph.errors import ConfigError, UnknownNameError

__all__ = [
    "PLUGINS_ENV",
    "PLUGIN_GROUP",
    "PLUGIN_HINT",
    "RUNNERS",
    "Registry",
    "lazy_exports",
    "load_plugins",
]

#: the entry-point group an installed plug-in declares (``[project.entry-points."taskgraph.plugins"]``)
PLUGIN_GROUP = "taskgraph.plugins"
#: the environment variable naming plug-ins that are not installed: ``module`` or ``module:callable``
PLUGINS_ENV = "TASKGRAPH_PLUGINS"
#: how an unknown name's message says where more names come from (for messages outside a registry)
PLUGIN_HINT = f"a plug-in adds more through the {PLUGIN_GROUP!r} entry points or {PLUGINS_ENV}"

# None: not loaded yet; True: loading or loaded; a ConfigError: a plug-in failed (raised again
# on every later miss, so the failure is never mistaken for an unknown name).
_plugins_state: bool | ConfigError | None = None

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


def load_plugins() -> None:
    """Load every plug-in once per process: the ``taskgraph.plugins`` entry points, then the
    modules ``TASKGRAPH_PLUGINS`` names.

    A registry calls it when a lookup misses; calling it again does nothing.  A plug-in that
    fails to load (an import error, a failing registration) is a
    :class:`~taskgraph.errors.ConfigError` naming the entry point or module and the exception.
    """
    global _plugins_state
    if isinstance(_plugins_state, ConfigError):
        raise _plugins_state
    if _plugins_state is not None:
        return  # loaded, or loading: a plug-in that looks a name up while it registers
    _plugins_state = True
    try:
        for where, load in _plugin_loaders():
            try:
                target = load()
                if callable(target) and not isinstance(target, ModuleType):
                    target()
            except Exception as error:  # a plug-in's own code: any failure is reported
                raise ConfigError(
                    f"plug-in {where} failed to load: {type(error).__name__}: {error}"
                ) from error
    except ConfigError as error:
        _plugins_state = error
        raise


def _plugin_loaders() -> Iterator[tuple[str, Callable[[], Any]]]:
    """Yield (how a message names it, a function that imports it) for each plug-in."""
    from importlib.metadata import entry_points

    for point in entry_points(group=PLUGIN_GROUP):
        yield f"{point.name} = {point.value} (entry point {PLUGIN_GROUP!r})", point.load
    for name in os.environ.get(PLUGINS_ENV, "").split(","):
        if name.strip():
            yield f"{name.strip()!r} ({PLUGINS_ENV})", _importer(name.strip())


def _importer(name: str) -> Callable[[], Any]:
    """Return a function importing ``module`` or ``module:attribute`` (dotted)."""

    def load() -> Any:
        module_name, _, attribute = name.partition(":")
        target: Any = importlib.import_module(module_name)
        for part in attribute.split(".") if attribute else ():
            target = getattr(target, part)
        return target

    return load


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
        """Return the object registered under ``name``, importing it on first use.

        A name not registered loads the plug-ins (:func:`load_plugins`) and is looked up again.
        """
        if name not in self:
            raise UnknownNameError(self.unknown(name))
        entry = self._entries[name]
        if isinstance(entry, str) and ":" in entry:
            module_name, _, attr = entry.partition(":")
            obj = getattr(importlib.import_module(module_name), attr)
            self._entries[name] = obj
            return cast(T, obj)
        return cast(T, entry)

    def unknown(self, name: object) -> str:
        """Return the line that refuses ``name``: the known names and how plug-ins add more."""
        known = ", ".join(sorted(self._entries)) or "(none)"
        return f"unknown {self.kind} {name!r}; known: {known} ({PLUGIN_HINT})"

    def unregister(self, name: str) -> None:
        """Remove ``name`` (a plug-in that a test or a session registered for a while)."""
        if name not in self._entries:
            raise UnknownNameError(f"unknown {self.kind} {name!r}")
        del self._entries[name]

    def names(self) -> list[str]:
        """Return the names registered so far, sorted (it loads no plug-in)."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        # A miss loads the plug-ins once: a name they register is then found.
        if name not in self._entries and isinstance(name, str):
            load_plugins()
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
