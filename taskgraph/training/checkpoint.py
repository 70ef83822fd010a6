"""Checkpoints: everything a killed run needs to resume exactly where it stopped.

A checkpoint directory holds ``checkpoint.pt`` (model, loss weighting, optimizer, scheduler,
task sampler and batch-stream RNG states, torch RNG states, trainer state, lookahead sums,
elapsed cost) and, once an evaluation improved the objective, ``best.pt`` (the best weights,
restored before the final evaluation).  Files are written to a temporary name and renamed, so a
kill during a save leaves the previous checkpoint intact.  ``config.json`` records the trial the
directory belongs to; resuming into a directory of another trial is an error.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from taskgraph.errors import ConfigError
from taskgraph.files import replace_file
from taskgraph.trial import TrialConfig

__all__ = ["CheckpointStore"]


class CheckpointStore:
    """Reads and writes one trial's checkpoints in ``directory``."""

    def __init__(self, *, directory: str | os.PathLike[str], config: TrialConfig) -> None:
        self.directory = Path(directory)
        # The target is part of the key: the same task set with another target is another
        # trial (its best weights and best objective are measured on another task).
        self.config_hash = (
            f"{config.model_config_hash()}/{config.target}/{config.task_set_key}/{config.seed}"
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        marker = self.directory / "config.json"
        if marker.exists():
            recorded = json.loads(marker.read_text(encoding="utf-8"))
            if recorded.get("key") != self.config_hash:
                raise ConfigError(
                    f"checkpoint directory {str(self.directory)!r} belongs to another trial "
                    f"(target {recorded.get('target')}, tasks {recorded.get('task_set')}, seed "
                    f"{recorded.get('seed')}); use an empty "
                    "directory for this one"
                )
        else:
            self._atomic_write_text(
                marker,
                json.dumps(
                    {
                        "key": self.config_hash,
                        "target": config.target,
                        "task_set": config.task_set_key,
                        "seed": config.seed,
                        "config": config.to_dict(),
                    },
                    indent=1,
                ),
            )

    @property
    def path(self) -> Path:
        """Return the path of the resumable checkpoint."""
        return self.directory / "checkpoint.pt"

    @property
    def best_path(self) -> Path:
        """Return the path of the best weights so far."""
        return self.directory / "best.pt"

    def exists(self) -> bool:
        """Return whether a resumable checkpoint is there."""
        return self.path.is_file()

    def save(self, payload: dict[str, Any]) -> None:
        """Write the resumable checkpoint atomically."""
        self._atomic_save(payload, self.path)

    def save_best(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Write the best weights atomically."""
        self._atomic_save(state_dict, self.best_path)

    def load(self) -> dict[str, Any]:
        """Return the resumable checkpoint (tensors on the CPU)."""
        return torch.load(self.path, map_location="cpu", weights_only=False)

    def discard(self) -> None:
        """Remove the resumable checkpoint and the best weights (the trial starts afresh)."""
        self.path.unlink(missing_ok=True)
        self.best_path.unlink(missing_ok=True)

    def load_best(self) -> dict[str, torch.Tensor] | None:
        """Return the best weights, or None when none were saved."""
        if not self.best_path.is_file():
            return None
        return torch.load(self.best_path, map_location="cpu", weights_only=True)

    @staticmethod
    def _atomic_save(payload: Any, path: Path) -> None:
        replace_file(path, lambda temporary: torch.save(payload, temporary))

    @staticmethod
    def _atomic_write_text(path: Path, text: str) -> None:
        replace_file(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))
