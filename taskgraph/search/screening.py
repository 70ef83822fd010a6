"""Screening: the configuration of a study's screen, and the graph sampler's start-up prior.

A screen (``taskgraph study screen SPEC``) is one joint run of the target with every
candidate, lookahead probes on (Fifty et al. 2021), stored with the study
(:meth:`~taskgraph.storage.Repository.add_screen`).  :func:`screen_config` builds it from the
spec: the spec's encoder, caps (``mixing.max_examples``), batch size, learning rate (a fixed
value, or the geometric middle of a log range, the middle of a linear one) and mixing scheme
(its first choice); always hard sharing (Caruana 1997), equal loss weights, joint training, no
pretraining stage and no data selection, so that the probes measure the tasks' gradients on
one shared encoder.  The steps count every task's batches (``step_budget: total``); the
probes measure the target's loss only (``lookahead_targets``), ``n`` forwards per probe
instead of ``n^2``, unless the full matrix is asked for.

:func:`startup_scores` is what the graph-guided sampler tries first
(:func:`~taskgraph.search.graph_sampler.startup_order`): the study's latest screen, else the
text-embedding (TextEmb, Vu et al. 2020) cosine similarity of each candidate to the target,
else nothing (the popular-source prior or a seeded random order).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from taskgraph.errors import ConfigError, TaskgraphError, option_name
from taskgraph.search.space import AUX_PARAM_PREFIX, SearchSpace
from taskgraph.spec.models import StudySpec
from taskgraph.trial import TrialConfig

__all__ = [
    "DEFAULT_PROBES",
    "SCREEN_CHECKPOINT_KEY",
    "default_screen_steps",
    "screen_config",
    "screen_probe_count",
    "screen_probe_steps",
    "screen_tasks",
    "startup_scores",
    "textemb_scores",
]

#: probes of a screen unless ``--probes`` says otherwise (fewer when the steps allow fewer)
DEFAULT_PROBES = 20
SCREEN_CHECKPOINT_KEY = "screen"

Embedder = Callable[..., Mapping[str, np.ndarray]]


class _MiddleTrial:
    """A :class:`~taskgraph.search.space.SuggestingTrial` that answers every suggestion with
    the middle of its domain (first choice; every candidate flag on)."""

    def __init__(self) -> None:
        self.user_attrs: dict[str, Any] = {}

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        if name.startswith(AUX_PARAM_PREFIX):
            return True
        preferred = {"sharing": "hard", "loss_weighting": "equal", "transfer_mode": "joint"}
        if name in preferred and preferred[name] in choices:
            return preferred[name]
        return choices[0]

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int:
        middle = math.sqrt(low * high) if log and low > 0 else (low + high) / 2
        return int(low + step * round((middle - low) / step))

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        middle = math.sqrt(low * high) if log and low > 0 else (low + high) / 2
        return middle if step is None else low + step * round((middle - low) / step)

    def set_user_attr(self, key: str, value: Any) -> None:
        self.user_attrs[key] = value


def screen_tasks(spec: StudySpec) -> tuple[str, ...]:
    """Return the candidates a screen trains with the target (every one not excluded), sorted."""
    return tuple(sorted(spec.drawable_candidates()))


def default_screen_steps(spec: StudySpec) -> int:
    """Return the screen's default step count: about one run (one seed) of a trial with one
    auxiliary: ``max_steps``, twice that under ``step_budget: target`` (the auxiliary's
    batches come on top of the target's), 300 without ``max_steps``."""
    config = _middle_config(spec)
    if config.max_steps is None:
        return 300
    return config.max_steps * (2 if config.step_budget == "target" else 1)


def _middle_config(spec: StudySpec, space: SearchSpace | None = None) -> TrialConfig:
    return (space or SearchSpace(spec=spec)).suggest(_MiddleTrial())


def screen_config(
    spec: StudySpec,
    *,
    steps: int | None = None,
    probes: int | None = None,
    full_matrix: bool = False,
    space: SearchSpace | None = None,
) -> TrialConfig:
    """Return the screen's :class:`~taskgraph.trial.TrialConfig` (module docstring).

    ``steps``: optimizer steps of the joint run, every task's counted (default
    :func:`default_screen_steps`); ``probes``: lookahead probes, exactly that many, spread
    evenly over them (:func:`screen_probe_steps`: ``lookahead_every`` when a fixed gap gives
    them, else the trainer option ``lookahead_steps``), at most the steps, and below them
    while the warmup holds the first step's learning rate at 0 (no probe runs there); default
    :data:`DEFAULT_PROBES`, or as many as the steps allow when that is fewer
    (:func:`screen_probe_count` reads the count back from the configuration);
    ``full_matrix``: measure every task's loss after each step, not only the target's.
    Raises :class:`ConfigError` for a bad count (more probes than the steps allow) or a spec
    without candidates.
    """
    if steps is not None and steps < 1:
        raise ConfigError(f"`{option_name('steps')}` must be >= 1, but got {steps}")
    if probes is not None and probes < 1:
        raise ConfigError(f"`{option_name('probes')}` must be >= 1, but got {probes}")
    candidates = screen_tasks(spec)
    if not candidates:
        raise ConfigError(f"study {spec.name!r} has no candidate to screen")
    space = space or SearchSpace(spec=spec)
    trial = _MiddleTrial()
    middle = _middle_config(spec, space)
    total = steps if steps is not None else default_screen_steps(spec)
    tasks = (spec.target, *candidates)
    # The screen sets its own probe steps, whatever the spec's trials probe.
    hyper = {
        k: v
        for k, v in middle.hyperparameters.items()
        if k not in ("head_options", "lookahead_steps")
    }
    every_step = _first_step_probed(hyper, total)
    allowed = total if every_step else total - 1
    if allowed < 1:
        raise ConfigError(
            f"a screen of {total} step leaves no step to probe: the warmup starts the learning "
            f"rate at 0, and no probe runs at the first step; give {option_name('steps')} 2 or more"
        )
    if probes is None:
        probes = min(DEFAULT_PROBES, allowed)
    elif probes > allowed:
        named = f"`{option_name('probes')}` ({probes})"
        bound = (
            f"`{option_name('steps')}` ({total})" if steps is not None else f"the steps ({total})"
        )
        if probes > total:
            raise ConfigError(f"{named} must not exceed {bound}")
        raise ConfigError(
            f"{named} must be below {bound}: the warmup starts the learning rate at 0, and no "
            "probe runs at the first step"
        )
    heads = spec.training.hyperparameters.get("head_options")
    if isinstance(heads, Mapping):
        hyper["head_options"] = {k: v for k, v in heads.items() if k in tasks}
    if not full_matrix:
        hyper["lookahead_targets"] = [spec.target]
    probe_steps = screen_probe_steps(total, probes)
    gap: int | None = probe_steps[0]
    if probe_steps != tuple(range(probe_steps[0], total + 1, probe_steps[0])):
        # No fixed gap gives exactly these steps: list them (a screen whose gap gives them
        # keeps `lookahead_every`, so its configuration is what it was before the option).
        gap = None
        hyper["lookahead_steps"] = list(probe_steps)
    return replace(
        middle,
        auxiliaries=candidates,
        sharing="hard",
        sharing_params={},
        mixing=space._mixing(trial, candidates, tasks),
        data_selection=None,
        loss_weighting="equal",
        transfer_mode="joint",
        pretraining=None,
        max_steps=total,
        step_budget="total",
        eval_every=total,  # one evaluation, at the end: the screen's product is the matrix
        eval_splits=(spec.objective.split,),
        early_stopping_patience=None,
        lookahead_every=gap,
        hyperparameters=hyper,
    )


def screen_probe_count(config: TrialConfig) -> int:
    """Return how many probes the screen configuration ``config`` (:func:`screen_config`)
    runs."""
    listed = config.hyperparameters.get("lookahead_steps")
    if listed:
        return len(listed)
    if not config.lookahead_every or not config.max_steps:
        return 0
    return config.max_steps // config.lookahead_every


def screen_probe_steps(total: int, probes: int) -> tuple[int, ...]:
    """Return the steps (1 for the first) after which a screen of ``total`` steps probes:
    exactly ``probes`` of them, spread evenly over the run.

    Every ``total // probes``-th step when that fixed gap gives exactly ``probes`` (300 steps,
    20 probes: every 15; 20 steps, 6 probes: every 3, the last two steps unprobed), as screens
    always probed; else the end of each of ``probes`` equal stretches of the run, rounded up
    (20 steps, 7 probes: 3, 6, 9, 12, 15, 18, 20), so that the first step is probed only when
    every step is.
    """
    if not 1 <= probes <= total:
        raise ConfigError(f"`probes` must be in [1, {total}] (the steps), but got {probes}")
    gap = total // probes
    if total // gap == probes:
        return tuple(range(gap, gap * probes + 1, gap))
    return tuple(-(-(i + 1) * total // probes) for i in range(probes))


def _first_step_probed(hyper: Mapping[str, Any], total: int) -> bool:
    """Return whether the trainer can probe at the first of ``total`` steps: not when the
    warmup (``warmup_ratio``) starts the learning rate at 0 and no ``lookahead_lr`` replaces
    it, since a probe's step would move nothing there."""
    from taskgraph.training.options import TrainingOptions

    ratio = hyper.get("warmup_ratio", TrainingOptions.warmup_ratio)
    if hyper.get("lookahead_lr") or not isinstance(ratio, int | float):
        return True  # a bad ratio is the trainer's to name
    return int(ratio * total) == 0


def textemb_scores(
    target: str,
    candidates: Sequence[str],
    *,
    data_dir: str | Path | None = None,
    embed: Embedder | None = None,
) -> dict[str, float]:
    """Return candidate -> cosine similarity of its TextEmb vector to the target's.

    ``embed`` is :func:`taskgraph.models.task_embeddings.task_text_embeddings` (MiniLM) by
    default.  Tasks without an embedding (not in the catalog, data missing) are left out; no
    target embedding, or no encoder, gives an empty mapping with a warning.
    """
    if embed is None:
        from taskgraph.models.task_embeddings import task_text_embeddings

        embed = task_text_embeddings
    try:
        vectors = embed([target, *candidates], data_dir=None if data_dir is None else str(data_dir))
    except (TaskgraphError, ImportError, OSError) as error:
        warnings.warn(f"no text-embedding start-up prior: {error}", stacklevel=2)
        return {}
    if target not in vectors:
        return {}
    u = np.asarray(vectors[target], dtype=float).ravel()
    out: dict[str, float] = {}
    for name in candidates:
        if name in vectors:
            v = np.asarray(vectors[name], dtype=float).ravel()
            denominator = float(np.linalg.norm(u) * np.linalg.norm(v))
            out[name] = float(u @ v) / denominator if denominator > 0 else 0.0
    return out


def startup_scores(
    *,
    target: str,
    candidates: Sequence[str],
    screens: Sequence[Any],
    cached: Mapping[str, Any] | None = None,
    embed: Callable[[], Mapping[str, float]] | None = None,
) -> tuple[str, dict[str, float]]:
    """Return (source, candidate -> score) of the graph sampler's start-up order.

    ``screens``: the study's :class:`~taskgraph.storage.StoredScreen`, oldest first (the
    latest wins); ``cached``: the ``{"source", "scores"}`` stored on the study by an earlier
    open; ``embed``: computes the text-embedding similarities when nothing else is there.
    The source is ``screen``, ``textemb`` or ``none`` (empty scores).
    """
    from taskgraph.affinity.screening import screen_scores

    for screen in reversed(screens):
        scores = screen_scores(screen.matrix, target, candidates)
        if scores:
            return "screen", scores
    if cached and cached.get("source") == "textemb" and cached.get("scores"):
        return "textemb", {k: float(v) for k, v in cached["scores"].items() if k in candidates}
    if embed is not None:
        scores = dict(embed())
        if scores:
            return "textemb", scores
    return "none", {}
