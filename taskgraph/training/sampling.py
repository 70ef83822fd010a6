"""Task sampling: which task's dataset the next batch comes from.

Each task keeps its own dataset (no example needs labels for every task).  A scheme turns the
tasks' training-set sizes ``n`` into unnormalised weights; ``MixingConfig.weights`` multiply them
(the task-level data-selection weights a study tunes) and the result is normalised:

- ``proportional``: p ~ n (examples are drawn uniformly from the union).
- ``temperature``: p ~ n^(1/T) (T > 1 flattens towards uniform; Arivazhagan et al. 2019).
- ``annealed``: the exponent moves linearly from 1/T at the start to 1 at the end of training,
  as :class:`~taskgraph.trial.MixingConfig` specifies: with T > 1, from flat to proportional.
  That is the reverse of Stickland and Murray (2019), who anneal from proportional towards
  flatter, and not their schedule; with T < 1 this scheme starts sharper and ends
  proportional.
- ``uniform``: p = 1/|tasks|.

Schemes live in :data:`SAMPLING_SCHEMES`; an unknown name is an error listing the known ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from taskgraph.errors import ConfigError
from taskgraph.registry import Registry
from taskgraph.trial import MixingConfig

__all__ = ["SAMPLING_SCHEMES", "SchemeFn", "TaskSampler"]

# Under the target step budget a target drawn less often than this would make a trial
# more than a thousand times longer than its baseline: almost surely a mistake (a zero weight).
_MIN_TARGET_PROBABILITY = 1e-3

# (sizes, temperature, progress in [0, 1]) -> unnormalised weights
SchemeFn = Callable[[np.ndarray, float, float], np.ndarray]


def _proportional(sizes: np.ndarray, temperature: float, progress: float) -> np.ndarray:
    return sizes.astype(float)


def _temperature(sizes: np.ndarray, temperature: float, progress: float) -> np.ndarray:
    return np.power(sizes.astype(float), 1.0 / temperature)


def _annealed(sizes: np.ndarray, temperature: float, progress: float) -> np.ndarray:
    exponent = 1.0 / temperature + (1.0 - 1.0 / temperature) * min(max(progress, 0.0), 1.0)
    return np.power(sizes.astype(float), exponent)


def _uniform(sizes: np.ndarray, temperature: float, progress: float) -> np.ndarray:
    return np.ones(len(sizes))


SAMPLING_SCHEMES: Registry[SchemeFn] = Registry(kind="sampling scheme")
SAMPLING_SCHEMES.register("proportional", _proportional)
SAMPLING_SCHEMES.register("temperature", _temperature)
SAMPLING_SCHEMES.register("annealed", _annealed)
SAMPLING_SCHEMES.register("uniform", _uniform)


class TaskSampler:
    """Draws the task of each training step from the mixing distribution (seeded, resumable)."""

    def __init__(
        self,
        *,
        sizes: Mapping[str, int],
        mixing: MixingConfig,
        total_steps: int,
        seed: int,
    ) -> None:
        if not sizes:
            raise ConfigError("no tasks to sample from")
        self.tasks: list[str] = sorted(sizes)
        self.scheme = SAMPLING_SCHEMES.get(mixing.scheme)
        if not 0 < mixing.temperature < float("inf"):  # NaN too: it made every p NaN
            raise ConfigError(f"`temperature` must be > 0 and finite, but got {mixing.temperature}")
        unknown = sorted(set(mixing.weights) - set(self.tasks))
        if unknown:
            raise ConfigError(
                f"mixing weights name tasks not in the task set: {', '.join(unknown)} "
                f"(task set: {', '.join(self.tasks)})"
            )
        for task, weight in mixing.weights.items():
            if not 0 <= weight < float("inf"):  # an infinite weight made every p NaN
                raise ConfigError(
                    f"mixing weight of {task!r} must be >= 0 and finite, but got {weight}"
                )
        for task, size in sizes.items():
            if size < 1:
                raise ConfigError(f"task {task!r} has no training examples")
        self.sizes = np.array([sizes[t] for t in self.tasks], dtype=np.int64)
        self.weights = np.array([float(mixing.weights.get(t, 1.0)) for t in self.tasks])
        if not self.weights.sum() > 0:
            raise ConfigError("mixing weights are all zero: no task would ever be trained")
        self.temperature = float(mixing.temperature)
        self.total_steps = max(int(total_steps), 1)
        self.rng = np.random.default_rng(seed)
        self._static = mixing.scheme != "annealed"
        self._cached: np.ndarray | None = None

    def probabilities(self, step: int = 0) -> dict[str, float]:
        """Return each task's sampling probability at ``step``."""
        return dict(zip(self.tasks, self._probabilities(step).tolist(), strict=True))

    def _probabilities(self, step: int) -> np.ndarray:
        return self._at(step / self.total_steps)

    def _at(self, progress: float) -> np.ndarray:
        if self._static and self._cached is not None:
            return self._cached
        raw = self.scheme(self.sizes, self.temperature, progress) * self.weights
        probabilities = raw / raw.sum()
        if self._static:
            self._cached = probabilities
        return probabilities

    def sample(self, step: int, count: int = 1) -> list[str]:
        """Return ``count`` task names drawn for ``step``."""
        return self._draw(self._probabilities(step), count)

    def _draw(self, probabilities: np.ndarray, count: int) -> list[str]:
        if len(self.tasks) == 1:
            return [self.tasks[0]] * count
        draws = self.rng.choice(len(self.tasks), size=count, p=probabilities)
        return [self.tasks[i] for i in draws]

    def plan(self, target: str, target_steps: int, count: int = 1) -> list[list[str]]:
        """Return the draws of every step until ``target_steps`` steps have drawn ``target``.

        The schedule of the target step budget: a step that draws the target at least once is a
        target step, and the plan ends with the ``target_steps``-th, so the target gets exactly
        that many updates and the other tasks' steps come on top in the share the mixing
        scheme gives them (about ``target_steps / p_target`` steps in all).  ``annealed``
        mixing measures its progress in target steps here, so the plan is known before the
        first step (the learning-rate schedule needs its length).  Draws come from this
        sampler's generator, as :meth:`sample`'s would.
        """
        if target not in self.tasks:
            raise ConfigError(f"target {target!r} is not among the sampled tasks")
        index = self.tasks.index(target)
        # The probability of a task is smallest at one end of the annealing (log p is concave
        # in the exponent), so the two ends bound the plan's length.
        low = min(float(self._at(0.0)[index]), float(self._at(1.0)[index]))
        if low < _MIN_TARGET_PROBABILITY:
            raise ConfigError(
                f"under the target step budget the target {target!r} is drawn with probability "
                f"{low:.2g}: a trial would take about {target_steps / max(low, 1e-300):.3g} "
                "steps; give the target a larger mixing weight, flatten the mixing (temperature "
                "or uniform), or use the total step budget"
            )
        plan: list[list[str]] = []
        done = 0
        while done < target_steps:
            drawn = self._draw(self._at(done / target_steps), count)
            plan.append(drawn)
            done += target in drawn
        return plan

    def state_dict(self) -> dict[str, Any]:
        """Return the RNG state (so a resumed run draws the same tasks)."""
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the RNG state saved by :meth:`state_dict`."""
        self.rng.bit_generator.state = state["rng"]
