"""Samplers and pruners by name: the spec's ``sampler`` and ``pruner`` blocks, as Optuna objects.

========  =====================================================================================
sampler   Optuna object
========  =====================================================================================
tpe       ``TPESampler(multivariate=True, group=True, constant_liar=True)``: multivariate
          TPE models the joint effect of the ``aux/<task>`` flags; ``group`` splits the
          conditional space into the subspaces that co-occur (Falkner et al. 2018; Optuna docs
          on ``group``); the constant liar keeps parallel trials from proposing alike.
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

A fixed ``sampler.seed`` does not seed the sampler once: each trial is sampled by a sampler seeded
with :func:`derive_seed` of (the seed, the study name, the trial number).  Optuna numbers a
study's trials atomically in the shared storage, so several drivers on one study with the same
spec (``study run`` twice, Ray workers, a resume) no longer propose the same configurations,
while one driver run twice from scratch proposes exactly the same ones.

Pruners: ``asha`` and ``successive_halving`` are ``SuccessiveHalvingPruner`` (the asynchronous
successive halving of Li et al. 2020, which is what Optuna implements under that name);
``median`` is ``MedianPruner``; ``none`` is ``NopPruner``.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import optuna
from optuna.distributions import BaseDistribution
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from taskgraph.errors import SpecError
from taskgraph.registry import Registry
from taskgraph.search.heartbeat import quiet_optuna
from taskgraph.spec.models import PrunerSpec, StudySpec

__all__ = [
    "SAMPLERS",
    "SamplerFactory",
    "TrialSeededSampler",
    "build_pruner",
    "build_sampler",
    "derive_seed",
]

SamplerFactory = Callable[..., optuna.samplers.BaseSampler]

#: name -> factory ``(spec, *, prior_records=None) -> BaseSampler`` (``graph`` also takes
#: ``startup_scores``, its start-up order, and ``lookahead``, the study's screens:
#: :mod:`taskgraph.search.screening`)
SAMPLERS: Registry[SamplerFactory] = Registry(kind="sampler")

_Sampler = TypeVar("_Sampler", bound=optuna.samplers.BaseSampler)


#: sampler class name -> option -> (lowest value, whether the lowest itself is refused): the
#: numbers Optuna (or the sampler) checks only when a trial uses them, so a bad value failed
#: every run after its start-up trials (``n_ei_candidates: 0``: "The size of samples must be
#: positive"); the samplers' own constructor checks (``alpha``, ``max_repeats``) are theirs
_RANGES: dict[str, dict[str, tuple[float, bool]]] = {
    "TPESampler": {
        "n_startup_trials": (0, False),
        "n_ei_candidates": (1, False),
        "prior_weight": (0, True),
    },
    "GPSampler": {"n_startup_trials": (0, False)},
    "GraphGuidedSampler": {"n_startup_trials": (0, False), "max_enumeration": (1, False)},
    "BanditSampler": {"max_redraws": (0, False), "max_enumeration": (1, False)},
}


def _annotation(parameter: inspect.Parameter) -> str:
    """Return ``parameter``'s annotation as written (a string under postponed annotations)."""
    annotation = parameter.annotation
    if annotation is inspect.Parameter.empty:
        return ""
    if isinstance(annotation, str):
        return annotation
    return getattr(annotation, "__name__", str(annotation))


def _is_object(annotation: str) -> bool:
    """Return True when a keyword annotated ``annotation`` takes a function or a sampler.

    Such a value (TPE's ``gamma``, ``weights``, ``constraints_func``; the ``independent_sampler``
    of gp, graph and bandit) cannot be written in YAML: a number or a name in its place was
    accepted by the constructor and failed at the first trial that used it.
    """
    return "Callable" in annotation or "Sampler" in annotation


def _check_value(cls: type, parameter: inspect.Parameter, value: Any) -> str | None:
    """Return why ``value`` is no value of ``parameter`` of ``cls`` (None when it is)."""
    annotation = _annotation(parameter)
    parts = {part.strip() for part in annotation.split("|")}
    if value is None and ("None" in parts or parameter.default is None):
        return None
    kinds = parts - {"None"}
    if isinstance(parameter.default, bool) or kinds == {"bool"}:
        if not isinstance(value, bool):
            return f"expected true or false, got {value!r}"  # "no" is a true string
        return None
    if kinds == {"int"}:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"expected an integer, got {value!r}"
    elif kinds == {"float"}:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"expected a number, got {value!r}"
    elif kinds == {"str"} and not isinstance(value, str):
        return f"expected a string, got {value!r}"
    bound = _RANGES.get(cls.__name__, {}).get(parameter.name)
    if bound is not None and isinstance(value, int | float) and not isinstance(value, bool):
        low, strict = bound
        if value < low or (strict and value == low):
            return f"must be {'>' if strict else '>='} {low:g}, got {value!r}"
    return None


def _construct(
    cls: type[_Sampler],
    options: Mapping[str, Any],
    *,
    given: Mapping[str, Any] | None = None,
    **fixed: Any,
) -> _Sampler:
    """Return ``cls(**fixed, **options)``: ``options`` from ``sampler.options`` (over the
    factory's defaults), ``fixed`` what the factory takes from the rest of the spec.

    ``given`` (default: ``options``) are the spec's own ``sampler.options``, the ones checked:
    a key that is not a keyword of ``cls``, one the factory sets itself, or one whose value is
    a function or a sampler (which YAML cannot give) is refused by name with the keywords
    allowed (the constructor's signature is the list, so it cannot drift); a value of the
    wrong type (``multivariate: "no"``, a true string) or out of range is refused too.
    """
    parameters = inspect.signature(cls).parameters
    objects = {name for name, p in parameters.items() if _is_object(_annotation(p))}
    allowed = sorted(set(parameters) - set(fixed) - objects)
    for key, value in (options if given is None else given).items():
        if key not in allowed:
            if key in fixed:
                problem = f"{cls.__name__} takes it from the spec, not from sampler.options"
            elif key in objects:
                what = "a sampler" if "Sampler" in _annotation(parameters[key]) else "a function"
                problem = (
                    f"{cls.__name__} takes {what} here ({_annotation(parameters[key])}), which "
                    "a spec cannot give; leave it out for the default"
                )
            else:
                problem = f"unknown option of {cls.__name__}"
            raise SpecError(
                f"sampler.options.{key}: {problem}; allowed: {', '.join(allowed) or '(none)'}"
            )
        wrong = _check_value(cls, parameters[key], value)
        if wrong is not None:
            raise SpecError(f"sampler.options.{key}: {wrong} ({cls.__name__})")
    return cls(**fixed, **options)


def _tpe(
    spec: StudySpec, *, prior_records: Sequence[Any] | None = None
) -> optuna.samplers.BaseSampler:
    options: dict[str, Any] = {"multivariate": True, "group": True, "constant_liar": True}
    if spec.sampler.n_startup_trials is not None:
        options["n_startup_trials"] = spec.sampler.n_startup_trials
    with quiet_optuna():  # `group` and `multivariate` are chosen, not experiments to flag
        return _construct(
            optuna.samplers.TPESampler,
            {**options, **spec.sampler.options},
            given=spec.sampler.options,
            seed=spec.sampler.seed,
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
    return _construct(
        optuna.samplers.GPSampler,
        {**options, **spec.sampler.options},
        given=spec.sampler.options,
        seed=spec.sampler.seed,
    )


def _random(
    spec: StudySpec, *, prior_records: Sequence[Any] | None = None
) -> optuna.samplers.BaseSampler:
    return _construct(optuna.samplers.RandomSampler, spec.sampler.options, seed=spec.sampler.seed)


def _graph(
    spec: StudySpec,
    *,
    prior_records: Sequence[Any] | None = None,
    startup_scores: Mapping[str, float] | None = None,
    lookahead: Sequence[Any] = (),
) -> optuna.samplers.BaseSampler:
    from taskgraph.search.graph_sampler import GraphGuidedSampler

    aux = spec.search.auxiliaries
    options: dict[str, Any] = dict(spec.sampler.options)
    if spec.sampler.n_startup_trials is not None:
        options["n_startup_trials"] = spec.sampler.n_startup_trials
    # The non-subset parameters go to multivariate TPE, as with `sampler: tpe`.
    options.setdefault("independent_sampler", _inner_tpe(spec))
    if startup_scores:
        options.setdefault("startup_scores", dict(startup_scores))
    if lookahead:
        # The study's screens are evidence for the model too (setfn's lookahead feature),
        # unless the spec gives the estimator its own matrices.
        estimator = options.get("estimator", "setfn")
        estimator_options = dict(options.get("estimator_options") or {})
        if _accepts(estimator, "lookahead") and "lookahead" not in estimator_options:
            options["estimator_options"] = {**estimator_options, "lookahead": list(lookahead)}
    return _construct(
        GraphGuidedSampler,
        options,
        given=spec.sampler.options,
        target=spec.target,
        candidates=[t for t in spec.candidate_names if t not in aux.exclude],
        min_size=aux.min_size,
        max_size=aux.max_size,
        include=tuple(aux.include),
        exclude=tuple(aux.exclude),
        prior_records=list(prior_records) if prior_records is not None else None,
        seed=spec.sampler.seed,
    )


def _accepts(estimator: str, keyword: str) -> bool:
    """Return True when the affinity estimator registered as ``estimator`` takes ``keyword``."""
    from taskgraph.affinity.estimators.base import ESTIMATORS

    try:
        cls = ESTIMATORS.get(estimator)
    except KeyError:
        return False  # the sampler names the unknown estimator itself
    return keyword in inspect.signature(cls).parameters


def _bandit(
    spec: StudySpec, *, prior_records: Sequence[Any] | None = None
) -> optuna.samplers.BaseSampler:
    from taskgraph.search.bandit_sampler import BanditSampler

    aux = spec.search.auxiliaries
    options: dict[str, Any] = dict(spec.sampler.options)
    options.setdefault("independent_sampler", _inner_tpe(spec))
    return _construct(
        BanditSampler,
        options,
        given=spec.sampler.options,
        target=spec.target,
        candidates=[t for t in spec.candidate_names if t not in aux.exclude],
        min_size=aux.min_size,
        max_size=aux.max_size,
        include=tuple(aux.include),
        exclude=tuple(aux.exclude),
        seed=spec.sampler.seed,
    )


SAMPLERS.register("tpe", _tpe)
SAMPLERS.register("gp", _gp)
SAMPLERS.register("random", _random)
SAMPLERS.register("graph", _graph)
SAMPLERS.register("bandit", _bandit)


def derive_seed(seed: int, study: str, trial: int) -> int:
    """Return the 32-bit seed of trial number ``trial`` of ``study`` under ``sampler.seed``.

    SHA-256 of ``"seed:study:trial"``: stable across processes and Python versions (unlike
    ``hash``), distinct per trial, and distinct per study for one spec seed.
    """
    digest = hashlib.sha256(f"{seed}:{study}:{trial}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


class TrialSeededSampler(optuna.samplers.BaseSampler):
    """Samples each trial with its own sampler, seeded by :func:`derive_seed` of its number.

    A sampler seeded once replays one random sequence in every process that builds it, so two
    drivers on one study proposed the same configurations (and a resumed study re-proposed
    its first ones).  A trial's number is unique in the study's storage, so seeding by it
    differs between drivers and stays reproducible for one driver.  The samplers wrapped are
    stateless between trials apart from their random generator (they read the history from
    the study), so building one per trial changes nothing else.
    """

    def __init__(
        self, *, make: Callable[[int], optuna.samplers.BaseSampler], seed: int, study: str
    ) -> None:
        self._make = make
        self._seed = seed
        self._study = study
        #: the sampler built with the spec's own seed (options already checked)
        self.base = make(seed)
        self._by_trial: dict[int, optuna.samplers.BaseSampler] = {}

    def sampler_for(self, number: int) -> optuna.samplers.BaseSampler:
        """Return the sampler of trial ``number`` (built on first use)."""
        sampler = self._by_trial.get(number)
        if sampler is None:
            sampler = self._make(derive_seed(self._seed, self._study, number))
            self._by_trial[number] = sampler
        return sampler

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        """Delegate to the trial's sampler."""
        return self.sampler_for(trial.number).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        """Delegate to the trial's sampler."""
        return self.sampler_for(trial.number).sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        """Delegate to the trial's sampler."""
        return self.sampler_for(trial.number).sample_independent(
            study, trial, param_name, param_distribution
        )

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        """Delegate to the trial's sampler."""
        self.sampler_for(trial.number).before_trial(study, trial)

    def after_trial(
        self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        """Delegate to the trial's sampler, then forget it."""
        self.sampler_for(trial.number).after_trial(study, trial, state, values)
        self._by_trial.pop(trial.number, None)

    def exhausted(self, study: Study) -> bool:
        """Delegate to the wrapped sampler's ``exhausted`` (the graph sampler's stop rule)."""
        check = getattr(self.base, "exhausted", None)
        return bool(check(study)) if callable(check) else False

    def reseed_rng(self) -> None:
        """Do nothing: every trial's seed is derived, not drawn (Optuna calls this for n_jobs > 1)."""


class _SeededFactory:
    """``seed -> sampler`` for :class:`TrialSeededSampler`; a class, not a closure, because the
    Ray runner's ``OptunaSearch`` pickles its sampler."""

    def __init__(
        self,
        *,
        factory: SamplerFactory,
        spec: StudySpec,
        prior_records: Sequence[Any] | None,
        startup_scores: Mapping[str, float] | None = None,
        lookahead: Sequence[Any] = (),
    ) -> None:
        self.factory = factory
        self.spec = spec
        self.prior_records = prior_records
        self.startup_scores = dict(startup_scores or {})
        self.lookahead = list(lookahead)

    def __call__(self, seed: int | None) -> optuna.samplers.BaseSampler:
        sampler = self.spec.sampler.model_copy(update={"seed": seed})
        # Only a factory that uses a start-up order and screens is given them (``graph``).
        extra: dict[str, Any] = {}
        if self.startup_scores:
            extra["startup_scores"] = self.startup_scores
        if self.lookahead:
            extra["lookahead"] = self.lookahead
        return self.factory(
            self.spec.model_copy(update={"sampler": sampler}),
            prior_records=self.prior_records,
            **extra,
        )


def build_sampler(
    spec: StudySpec,
    *,
    prior_records: Sequence[Any] | None = None,
    startup_scores: Mapping[str, float] | None = None,
    lookahead: Sequence[Any] = (),
) -> optuna.samplers.BaseSampler:
    """Return the Optuna sampler the spec names (``prior_records`` feed the graph sampler,
    ``startup_scores`` its start-up order: a screen or text-embedding similarity;
    ``lookahead``: the study's screens' matrices, which its affinity model also fits).

    With a fixed ``sampler.seed`` it is a :class:`TrialSeededSampler` around that sampler.
    """
    try:
        factory = SAMPLERS.get(spec.sampler.name)
    except KeyError as error:
        raise SpecError(f"sampler.name: {error}") from None

    make = _SeededFactory(
        factory=factory,
        spec=spec,
        prior_records=prior_records,
        startup_scores=startup_scores,
        lookahead=lookahead,
    )
    try:
        if spec.sampler.seed is None:
            return make(None)
        return TrialSeededSampler(make=make, seed=spec.sampler.seed, study=spec.name)
    except SpecError:
        raise  # `_construct`'s, naming the key
    except (TypeError, ValueError) as error:
        # A value of the wrong type, or one the sampler's own checks refuse (a ConfigError).
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
