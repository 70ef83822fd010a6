"""Where and how reproducibly a trial runs: the device, the seeds, the RNG streams.

The device is never hard-coded: an explicit ``device`` argument wins, else CUDA when present,
else the CPU.  Every random stream of the trainer (task sampling, each task's batch order, the
lookahead probes, PCGrad's projection order) has its own generator seeded from the trial seed
and a name, so adding a stream (or a probe) never shifts the others; torch's global generator
only drives weight initialisation and dropout.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from taskgraph.errors import ConfigError
from taskgraph.vocabulary import stable_seed

__all__ = ["describe_device", "resolve_device", "seed_everything", "stable_seed"]


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


def describe_device(device: torch.device) -> str:
    """Return a short description for :class:`~taskgraph.trial.Cost`: ``cpu`` or ``cuda:NAME``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{torch.cuda.get_device_name(index)}"
    return "cpu"
