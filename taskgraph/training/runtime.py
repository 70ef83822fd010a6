"""Where and how reproducibly a trial runs: the device, the seeds, the RNG streams.

The device is never hard-coded: an explicit ``device`` argument wins, else CUDA when present,
else the CPU.  Every random stream of the trainer (task sampling, each task's batch order, the
lookahead probes, PCGrad's projection order) has its own generator seeded from the trial seed
and a name, so adding a stream (or a probe) never shifts the others; torch's global generator
only drives weight initialisation and dropout.

Threads: torch's intra-op thread count is set per trial from what the runner was given
(:func:`resolve_threads`): the local runner's cores (the process's CPU affinity, which
``taskset`` or a container's cpuset narrows), a Ray trial's ``resources.cpu``, or the spec's
``runner.threads``.  More threads than cores is the expensive mistake: on two shared cores a
MiniLM trial took 254 s with two threads and 117 s with one (issue 14).
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from taskgraph.errors import ConfigError
from taskgraph.vocabulary import stable_seed

__all__ = [
    "available_cores",
    "describe_device",
    "resolve_device",
    "resolve_threads",
    "seed_everything",
    "stable_seed",
    "torch_threads",
]


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """Return ``device`` when given (checked), else ``cuda`` when available, else ``cpu``."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ConfigError(
            f"`device` must be like 'cpu', 'cuda' or 'cuda:1', but got {device!r}"
        ) from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"`device` is {device!r} but no CUDA device is available")
    return resolved


def describe_device(device: torch.device, *, threads: int | None = None) -> str:
    """Return a short description for :class:`~taskgraph.trial.Cost`: ``cpu`` or ``cuda:NAME``.

    With ``threads``, the CPU's is ``cpu/N threads``: the records keep how a cost was measured.
    """
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{torch.cuda.get_device_name(index)}"
    return "cpu" if threads is None else f"cpu/{threads} threads"


def available_cores() -> int:
    """Return the number of cores this process may run on (its CPU affinity where known)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def resolve_threads(threads: float | None = None) -> int:
    """Return the intra-op thread count for ``threads`` cores (``None``: :func:`available_cores`).

    A fractional share (a Ray trial with ``cpu: 0.5``) still needs one thread; 2.5 cores get 2.
    """
    if threads is None:
        return available_cores()
    if not threads > 0:
        raise ConfigError(f"`threads` must be > 0, but got {threads!r}")
    return max(1, math.floor(threads))


@contextmanager
def torch_threads(threads: int) -> Iterator[int]:
    """Run the block with ``threads`` intra-op threads, then restore the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(previous)
