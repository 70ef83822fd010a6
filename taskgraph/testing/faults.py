"""Faults the tests inject: a training run killed at a step, processes to find and kill, a
filesystem to fill.

It imports the trainer's callback types, not torch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from taskgraph.training.callbacks import TrainerCallback, TrainerControl, TrainerState
from taskgraph.trial import TrialConfig


def _process_table() -> dict[int, tuple[int, str]]:
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # ended while we looked
        table[int(entry.name)] = (int(stat.rsplit(")", 1)[1].split()[1]), cmdline)
    return table


def descendant_processes(pid: int) -> list[tuple[int, str]]:
    """Return (pid, command line) of every process below ``pid`` (Linux ``/proc``).

    A local Ray started by a driver runs below it: its GCS, raylet and workers, whose command
    lines name what they run (``ray::ImplicitFunc.train`` while a Tune trial trains).
    """
    table = _process_table()
    children: dict[int, list[int]] = {}
    for child, (parent, _) in table.items():
        children.setdefault(parent, []).append(child)
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append((child, table[child][1]))
            stack.append(child)
    return found


def processes_naming(text: str) -> list[int]:
    """Return the pids of the processes (not this one) whose command line contains ``text``."""
    return [pid for pid, (_, cmd) in _process_table().items() if text in cmd and pid != os.getpid()]


@contextmanager
def small_filesystem(path: Path, *, size_kb: int) -> Iterator[bool]:
    """Create ``path`` and mount a ``size_kb`` tmpfs on it where this process may (root with
    ``mount``); yield whether it did.  Unmounted on the way out (lazily if still busy)."""
    import shutil
    import subprocess

    path.mkdir()
    mounted = False
    if os.geteuid() == 0 and shutil.which("mount") and shutil.which("umount"):
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0755", "tmpfs", str(path)],
            capture_output=True,
            check=False,
        )
        mounted = done.returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            done = subprocess.run(["umount", str(path)], capture_output=True, check=False)
            if done.returncode != 0:
                subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def limit_file_size(limit: int) -> None:
    """Limit this process's files to ``limit`` bytes, writes past it failing with ``EFBIG``
    (``SIGXFSZ`` ignored): a full filesystem without one (a ``preexec_fn``)."""
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


class KillAtStep(TrainerCallback):
    """Raise ``KeyboardInterrupt`` at the end of training step ``step`` (of ``phase`` when
    given): a run killed there, for the tests that resume it from its checkpoint."""

    def __init__(self, step: int, *, phase: str | None = None) -> None:
        self.step = step
        self.phase = phase

    def on_step_end(
        self, args: TrialConfig, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> TrainerControl | None:
        if state.global_step == self.step and self.phase in (None, state.phase):
            raise KeyboardInterrupt
        return None
