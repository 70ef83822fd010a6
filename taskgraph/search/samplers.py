"""Samplers and pruners by name: the spec's ``sampler`` and ``pruner`` blocks, as Optuna objects.

========  =====================================================================================
sampler   Optuna object
========  =====================================================================================
tpe       ``TPESampler(multivariate=True, group=True)``: multivariate TPE models the joint
          effect of the ``aux/<task>`` flags; ``group`` splits the conditional space into the
          subspaces that co-occur (Falkner et al. 2018; Optuna docs on ``group``).
gp        ``GPSampler``: Gaussian-process Bayesian optimisation (conditional parameters that
          are absent from a trial fall back to its independent sampler).
random    ``RandomSampler``.
graph     :class:`taskgraph.search.graph_sampler.GraphGuidedSampler`: auxiliary subsets from
          the fitted task-affinity model (records of earlier studies included), TPE for the
          rest.
bandit    :class:`taskgraph.search.bandit_sampler.BanditSampler`: AutoSeM-style Beta-Bernoulli
          Thompson sampling over the auxiliary tasks (Guo et al. 2019), a baseline for
          ``graph``; TPE for the rest.
========  =====================================================================================

Pruners: ``asha`` and ``successive_halving`` are ``SuccessiveHalvingPruner`` (the asynchronous
successive halving of Li et al. 2020, which is what Optuna implements under that name);
``median`` is ``MedianPruner``; ``none`` is ``NopPruner``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import optuna

from taskgraph.errors import SpecError
from taskgraph.registry import Registry
from taskgraph.search.heartbeat import quiet_optuna
from taskgraph.spec.models import PrunerSpec, StudySpec

__all__ = ["SAMPLERS", "SamplerFactory", "build_pruner", "build_sampler"]

SamplerFactory = Callable[..., optuna.samplers.BaseSampler]

#: name -> factory ``(spec, *, prior_records=None) -> BaseSampler``
SAMPLERS: Registry[SamplerFactory] = Registry(kind="sampler")


def _tpe(
    spec: StudySpec, *, prior_records: Sequence[Any] | None = None
) -> optuna.samplers.BaseSampler:
    options: dict[str, Any] = {"multivariate": True, "group": True, "constant_liar": True}
    if spec.sampler.n_startup_trials is not None:
        options["n_startup_trials"] = spec.sampler.n_startup_trials
    with quiet_optuna():  # `group` and `multivariate` are chosen, not experiments to flag
        return optuna.samplers.TPESampler(
            seed=spec.sampler.seed, **{**options, **spec.sampler.options}
        )


def _inner_tpe(spec: StudySpec) -> optuna.samplers.BaseSampler:
    # `sampler.options` belong to the outer sampler (graph's `acquisition`...), not to its TPE.
    return _tpe(
        spec.model_copy(update={"sampler": spec.sampler.model_copy(update={"options": {}})})
    )


def _gp(
    spec: StudySpec, *, prior_records: Sequence[Any] | None = None
) -> optuna.samplers.BaseSampler:
    options: dict[str, Any] = {"warn_independent_sampling": False}
    if spec.sampler.n_startup_trials is not None:
        options["n_startup_trials"] = spec.sampler.n_startup_trials
    return optuna.samplers.GPSampler(seed=spec.sampler.seed, **{**options, **spec.sampler.options})


def _random(
    spec: StudySpec, *, prior_records: Sequence[Any] | None = None
) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=spec.sampler.seed, **spec.sampler.options)


def _graph(
    spec: StudySpec, *, prior_records: Sequence[Any] | None = None
) -> optuna.samplers.BaseSampler:
    from taskgraph.search.graph_sampler import GraphGuidedSampler

    aux = spec.search.auxiliaries
    options: dict[str, Any] = dict(spec.sampler.options)
    if spec.sampler.n_startup_trials is not None:
        options["n_startup_trials"] = spec.sampler.n_startup_trials
    # The non-subset parameters go to multivariate TPE, as with `sampler: tpe`.
    options.setdefault("independent_sampler", _inner_tpe(spec))
    sampler: optuna.samplers.BaseSampler = GraphGuidedSampler(
        target=spec.target,
        candidates=[t for t in spec.candidate_names if t not in aux.exclude],
        min_size=aux.min_size,
        max_size=aux.max_size,
        include=tuple(aux.include),
        exclude=tuple(aux.exclude),
        prior_records=list(prior_records) if prior_records is not None else None,
        seed=spec.sampler.seed,
        **options,
    )
    return sampler


def _bandit(
    spec: StudySpec, *, prior_records: Sequence[Any] | None = None
) -> optuna.samplers.BaseSampler:
    from taskgraph.search.bandit_sampler import BanditSampler

    aux = spec.search.auxiliaries
    options: dict[str, Any] = dict(spec.sampler.options)
    options.setdefault("independent_sampler", _inner_tpe(spec))
    return BanditSampler(
        target=spec.target,
        candidates=[t for t in spec.candidate_names if t not in aux.exclude],
        min_size=aux.min_size,
        max_size=aux.max_size,
        include=tuple(aux.include),
        exclude=tuple(aux.exclude),
        seed=spec.sampler.seed,
        **options,
    )


SAMPLERS.register("tpe", _tpe)
SAMPLERS.register("gp", _gp)
SAMPLERS.register("random", _random)
SAMPLERS.register("graph", _graph)
SAMPLERS.register("bandit", _bandit)


def build_sampler(
    spec: StudySpec, *, prior_records: Sequence[Any] | None = None
) -> optuna.samplers.BaseSampler:
    """Return the Optuna sampler the spec names (``prior_records`` feed the graph sampler)."""
    try:
        factory = SAMPLERS.get(spec.sampler.name)
    except KeyError as error:
        raise SpecError(f"sampler.name: {error}") from None
    try:
        return factory(spec, prior_records=prior_records)
    except TypeError as error:
        # A misspelt key in `sampler.options` reaches the constructor as a keyword.
        raise SpecError(f"sampler.options: {error}") from None


def build_pruner(spec: PrunerSpec) -> optuna.pruners.BasePruner:
    """Return the Optuna pruner for the spec's ``pruner`` block."""
    if spec.name in ("asha", "successive_halving"):
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=spec.min_resource, reduction_factor=spec.reduction_factor
        )
    if spec.name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=spec.n_startup_trials, n_warmup_steps=spec.n_warmup_steps
        )
    return optuna.pruners.NopPruner()
