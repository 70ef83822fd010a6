"""Argument types and the error handling shared by the scripts in ``benchmarks/``.

A light module (nothing of taskgraph's but :mod:`taskgraph.errors`): ``benchmarks/trial_cost.py``
times the imports of the process it runs in, and this import must not load Optuna or torch.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

__all__ = ["directory", "nonnegative_int", "positive_int", "run_script"]


def positive_int(text: str) -> int:
    """An argparse ``type``: an integer >= 1 (a count of seeds, steps, trials...)."""
    return _bounded_int(text, 1)


def nonnegative_int(text: str) -> int:
    """An argparse ``type``: an integer >= 0 (a seed, a warm-up count)."""
    return _bounded_int(text, 0)


def directory(text: str) -> str:
    """An argparse ``type``: a directory that exists (``~`` expanded), e.g. ``--data``."""
    import argparse
    from pathlib import Path

    path = Path(text).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"no directory {text}")
    return str(path)


def _bounded_int(text: str, minimum: int) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
    return value


def run_script(main: Callable[[], object]) -> int:
    """Run a benchmark script's ``main``; a :class:`TaskgraphError` is one ``error:`` line, exit 2."""
    from taskgraph.errors import TaskgraphError

    try:
        outcome = main()
    except TaskgraphError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return outcome if isinstance(outcome, int) else 0
