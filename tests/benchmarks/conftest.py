"""Load a script of ``benchmarks/`` as a module, once per test session."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="session")
def benchmark_script() -> Callable[[str], ModuleType]:
    """Return a loader: ``benchmark_script("search_variants.py")`` is that script as a module.

    The module is registered in ``sys.modules`` as ``benchmarks_<path without .py>`` (its
    dataclasses need a module to belong to), and loaded once per name and session.
    """
    loaded: dict[str, ModuleType] = {}

    def load(relative: str) -> ModuleType:
        if relative not in loaded:
            path = BENCHMARKS / relative
            name = "benchmarks_" + path.with_suffix("").relative_to(BENCHMARKS).as_posix().replace(
                "/", "_"
            )
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None, f"cannot load {path}"
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            loaded[relative] = module
        return loaded[relative]

    return load
