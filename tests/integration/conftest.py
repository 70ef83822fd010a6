"""End-to-end tests: the `taskgraph` CLI as a user runs it (subprocesses, real training)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


def _helpers() -> ModuleType:
    name = "taskgraph_integration_helpers"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("helpers.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def cli() -> ModuleType:
    """The helpers module: ``cli.taskgraph(*args)``, ``cli.show``, ``cli.Dashboard``."""
    return _helpers()
