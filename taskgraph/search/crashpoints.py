"""Simulated crashes at named points of a driver's trial sequence, for kill tests and benchmarks.

:func:`install` patches this process so that it ends with ``os._exit`` the ``hit``-th time it
reaches ``point``: no ``finally`` block, no ``atexit`` hook, no rollback message, no closed
connection, which is all the database sees of ``kill -9``.  The points, in the order a trial
reaches them (see :mod:`taskgraph.search.engine`):

``asked``
    ``study.ask()`` returned, the trial's first heartbeat is not recorded yet.
``training``
    the configuration is suggested and stored, its seeds are about to be trained.
``stored``
    the seeds' runs are stored on the trial, which is not told yet.
``told``
    the trial is told its state, none of its records is written.
``record_written``
    one seed's record is committed (with ``seeds: 2``, an odd ``hit`` falls between a
    trial's two records).
``in_record``
    inside a record's transaction, before it commits (the record is rolled back).

``python -m taskgraph.cli.crashpoints POINT HIT ARGS...`` (:mod:`taskgraph.cli.crashpoints`) runs ``taskgraph ARGS...`` in a
process patched so; it exits with :data:`CRASH_EXIT` at the crash.  Nothing here runs unless
a test or ``benchmarks/fault_injection.py`` installs it.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["CRASH_EXIT", "POINTS", "install"]

#: the exit status of a process that crashed at its crash point
CRASH_EXIT = 86

POINTS = ("asked", "training", "stored", "told", "record_written", "in_record")


def install(point: str, hit: int) -> None:
    """Patch this process to ``os._exit(CRASH_EXIT)`` the ``hit``-th time ``point`` is reached."""
    if point not in POINTS:
        raise ValueError(f"unknown crash point {point!r}; known: {', '.join(POINTS)}")
    if hit < 1:
        raise ValueError(f"hit must be >= 1, got {hit}")
    reached = [0]

    def crash_on_hit() -> None:
        reached[0] += 1
        if reached[0] == hit:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(CRASH_EXIT)

    def before(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            crash_on_hit()
            return function(*args, **kwargs)

        return wrapper

    def after(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            value = function(*args, **kwargs)
            crash_on_hit()
            return value

        return wrapper

    import optuna

    from taskgraph.search import engine, heartbeat, recording
    from taskgraph.storage import repository

    if point == "asked":
        heartbeat.Heartbeat.add = before(heartbeat.Heartbeat.add)  # type: ignore[method-assign]
    elif point == "training":
        engine.run_seeds = before(engine.run_seeds)
    elif point == "stored":
        optuna.Study.tell = before(optuna.Study.tell)  # type: ignore[method-assign]
    elif point == "told":
        recording.RecordWriter.write = before(recording.RecordWriter.write)  # type: ignore[method-assign]
    elif point == "record_written":
        repository.Repository.add_run_result = after(  # type: ignore[method-assign]
            repository.Repository.add_run_result
        )
    else:  # in_record: the run's rows are inserted in the open transaction, not committed
        repository.insert_run = after(repository.insert_run)
