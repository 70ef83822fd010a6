"""The search space of a study, compiled into Optuna define-by-run suggestions.

:class:`SearchSpace` turns one Optuna trial into one :class:`~taskgraph.trial.TrialConfig`.
Parameters are conditional: an architecture's own parameters (``soft/lambda``) are suggested
only when that architecture is chosen, the temperature only for temperature-based mixing, a
task's weight and example cap only when the task is in the set, and the transfer mode only
when there is something to transfer from.

**Auxiliary subset encoding.**  Every free candidate ``t`` is one categorical parameter
``aux/<t>`` with choices ``[False, True]``, always suggested, so TPE and GP learn each task's
effect on the objective and the graph-guided sampler sees all of them in the relative search
space.  Constraints are then repaired deterministically:

* ``include`` tasks are always in the set and ``exclude`` tasks never; neither gets a
  parameter.
* If the set is larger than ``max_size``, the chosen tasks with the largest rank are
  dropped; if smaller than ``min_size``, the unchosen tasks with the smallest rank are added.
  The rank of task ``t`` is ``sha256("<sorted sampled set>|t")``: a pure function of what was
  sampled, so the same sample always gives the same set, without favouring the tasks listed
  first in the spec.

The effective subset is stored as the trial's user attribute ``auxiliaries`` (a sorted list).
The target's single-task baseline is the trial enqueued with user attribute
``taskgraph:role = "baseline"``: its subset is empty whatever the constraints say, so every
trial's gain over it is known.

**Rows.**  A spec's ``rows`` are fixed configurations (a results table's rows), enqueued with
their parameters (:meth:`SearchSpace.row_params`) and the user attribute ``taskgraph:row``
naming them.  :meth:`SearchSpace.row_config` compiles a row without a study (Optuna's
``FixedTrial``), which checks that the row fixes every parameter its trial suggests and that
each value lies in its domain; the results tables find a run's row by that configuration.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import taskgraph.search.sharing_space as sharing_space
from taskgraph.encoder_files import encoder_version
from taskgraph.errors import SpecError
from taskgraph.spec.domains import Domain, Scalar
from taskgraph.spec.models import RowSpec, StudySpec
from taskgraph.spec.pretraining import NO_PRETRAINING
from taskgraph.trial import (
    DataSelectionConfig,
    MixingConfig,
    Objective,
    PretrainingConfig,
    TrialConfig,
)
from taskgraph.vocabulary import task_set_key

__all__ = [
    "AUX_PARAM_PREFIX",
    "BASELINE_ROLE",
    "FAMILY_ATTR",
    "ROLE_ATTR",
    "ROW_ATTR",
    "SUBSET_ATTR",
    "SearchSpace",
    "SuggestingTrial",
    "aux_param",
    "is_first_baseline",
    "repair_subset",
]

AUX_PARAM_PREFIX = "aux/"
SUBSET_ATTR = "auxiliaries"
ROLE_ATTR = "taskgraph:role"
BASELINE_ROLE = "baseline"
#: On a baseline enqueued for a model family that the study's first baseline is not of (a
#: searched target cap or pretraining stage): that family's key (TrialConfig.family_key()).
FAMILY_ATTR = "taskgraph:family"
ROW_ATTR = "taskgraph:row"
_TEMPERATURE_SCHEMES = ("temperature", "annealed")


class SuggestingTrial(Protocol):
    """What :meth:`SearchSpace.suggest` needs from a trial (an ``optuna.Trial`` or Ray's proxy)."""

    @property
    def user_attrs(self) -> dict[str, Any]: ...

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int: ...

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float: ...

    def set_user_attr(self, key: str, value: Any) -> None: ...


def is_first_baseline(trial: Any) -> bool:
    """Return whether ``trial`` (anything with ``user_attrs``) is the study's first baseline.

    Not a baseline enqueued for another model family (``taskgraph:family``): the study's
    report and progress measure every trial against the first one.
    """
    attrs = trial.user_attrs
    return attrs.get(ROLE_ATTR) == BASELINE_ROLE and FAMILY_ATTR not in attrs


def aux_param(task: str) -> str:
    """Return the Optuna parameter name of candidate ``task``'s inclusion flag."""
    return f"{AUX_PARAM_PREFIX}{task}"


def repair_subset(
    chosen: Sequence[str],
    *,
    free: Sequence[str],
    include: Sequence[str] = (),
    min_size: int = 0,
    max_size: int | None = None,
) -> tuple[str, ...]:
    """Return the auxiliary subset after the deterministic constraint repair (module docstring)."""
    picked = sorted(set(chosen) & set(free))
    key = task_set_key(picked)

    def rank(task: str) -> str:
        return hashlib.sha256(f"{key}|{task}".encode()).hexdigest()

    low = max(min_size - len(include), 0)
    high = None if max_size is None else max(max_size - len(include), 0)
    if high is not None and len(picked) > high:
        picked = sorted(sorted(picked, key=rank)[:high])
    if len(picked) < low:
        unchosen = sorted((t for t in free if t not in picked), key=rank)
        picked = sorted(picked + unchosen[: low - len(picked)])
    return tuple(sorted({*include, *picked}))


class SearchSpace:
    """A study's search space: suggests a :class:`TrialConfig` from an Optuna trial.

    ``sharing_spaces`` maps each architecture to its own searchable parameters as plain data
    (what ``SHARING_ARCHITECTURES.get(name).search_space()`` returns); when omitted they are
    read from the registry, with layer ranges up to the spec encoder's depth (1..2 for
    tiny-bert, 1..6 for MiniLM).  Ranges in the spec override the architecture's.
    """

    def __init__(
        self,
        *,
        spec: StudySpec,
        sharing_spaces: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
    ) -> None:
        self.spec = spec
        aux = spec.search.auxiliaries
        self.include = tuple(aux.include)
        self.free = tuple(
            t for t in spec.candidate_names if t not in aux.include and t not in aux.exclude
        )
        #: the encoder's depth the registry's layer ranges were written for (None: the
        #: spaces were given, or the encoder's config does not say)
        self.encoder_depth: int | None = None
        if sharing_spaces is None:
            self.encoder_depth = sharing_space.encoder_depth(spec)
            sharing_spaces = sharing_space.registry_spaces(
                list(spec.search.sharing), num_layers=self.encoder_depth
            )
        #: each architecture's own parameters as plain data, before the spec's overrides
        self.own_spaces = sharing_spaces
        self.sharing = sharing_space.sharing_domains(
            spec.search.sharing, sharing_spaces, num_layers=self.encoder_depth
        )

    # -- suggestions -------------------------------------------------------------------------

    def suggest(self, trial: SuggestingTrial) -> TrialConfig:
        """Return the configuration for ``trial``, suggesting every (conditional) parameter."""
        spec = self.spec
        search = spec.search
        baseline = trial.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE
        flags = [t for t in self.free if trial.suggest_categorical(aux_param(t), [False, True])]
        if baseline:
            auxiliaries: tuple[str, ...] = ()
        else:
            auxiliaries = repair_subset(
                flags,
                free=self.free,
                include=self.include,
                min_size=search.auxiliaries.min_size,
                max_size=search.auxiliaries.max_size,
            )
        trial.set_user_attr(SUBSET_ATTR, list(auxiliaries))

        architectures = list(self.sharing)
        sharing = str(_pick(trial, "sharing", Domain(choices=tuple(architectures))))
        sharing_params = {
            name: _pick(trial, f"{sharing}/{name}", domain)
            for name, domain in self.sharing[sharing].items()
        }
        tasks = (spec.target, *auxiliaries)
        mixing = self._mixing(trial, auxiliaries, tasks)
        transfer = _pick(trial, "transfer_mode", search.transfer_mode) if auxiliaries else "joint"
        hyper: dict[str, Any] = dict(spec.training.hyperparameters)
        hyper.update({k: _pick(trial, f"hp/{k}", d) for k, d in search.hyperparameters.items()})
        if isinstance(hyper.get("head_options"), Mapping):
            # Head options are written for every task a study may train; a trial gets its own.
            hyper["head_options"] = {
                k: v for k, v in hyper["head_options"].items() if k in (spec.target, *auxiliaries)
            }
        max_steps = _pick(trial, "max_steps", search.max_steps)
        return TrialConfig(
            target=spec.target,
            auxiliaries=auxiliaries,
            encoder=spec.encoder.name,
            encoder_options=dict(spec.encoder.options),
            # Read at every trial: weights replaced while the study runs are another family.
            encoder_version=encoder_version(spec.encoder.name),
            sharing=sharing,
            sharing_params=sharing_params,
            mixing=mixing,
            data_selection=self._data_selection(trial, auxiliaries),
            loss_weighting=str(_pick(trial, "loss_weighting", search.loss_weighting)),
            transfer_mode="sequential" if transfer == "sequential" else "joint",
            pretraining=self._pretraining(trial),
            learning_rate=float(_number(_pick(trial, "learning_rate", search.learning_rate))),
            epochs=float(_number(_pick(trial, "epochs", search.epochs))),
            max_steps=None if max_steps is None else int(_number(max_steps)),
            step_budget=search.step_budget,
            batch_size=int(_number(_pick(trial, "batch_size", search.batch_size))),
            max_length=spec.encoder.max_length,
            seed=spec.seeds[0],
            objective=Objective(
                metric=spec.objective.metric,
                split=spec.objective.split,
                direction=spec.objective.direction,
            ),
            eval_splits=tuple(dict.fromkeys((*spec.training.eval_splits, spec.objective.split))),
            eval_every=spec.training.eval_every,
            early_stopping_patience=spec.training.early_stopping_patience,
            lookahead_every=spec.training.lookahead_every,
            hyperparameters=hyper,
        )

    def _mixing(
        self, trial: SuggestingTrial, auxiliaries: tuple[str, ...], tasks: tuple[str, ...]
    ) -> MixingConfig:
        mixing = self.spec.search.mixing
        scheme = (
            str(_pick(trial, "mixing/scheme", mixing.scheme)) if auxiliaries else "proportional"
        )
        temperature = 1.0
        if scheme in _TEMPERATURE_SCHEMES:
            temperature = float(_number(_pick(trial, "mixing/temperature", mixing.temperature)))
        weights: dict[str, float] = {}
        # A single weight domain applies to the auxiliaries (the target stays at 1.0); a
        # mapping may name the target too, and "*" covers every auxiliary not named.
        for task in tasks:
            domain = _per_task(mixing.weights, task, default_all=task != self.spec.target)
            # An unsearched weight of 1 is the default: leaving it out keeps the model
            # configuration (and its hash) the same as a study that never mentions weights.
            if domain is not None and domain.is_fixed and domain.fixed_value() == 1.0:
                continue
            if domain is not None and auxiliaries:
                weights[task] = float(_number(_pick(trial, f"weight/{task}", domain)))
        caps: dict[str, int] = {}
        for task in tasks:
            cap_domain = _per_task(mixing.max_examples, task, default_all=True)
            if cap_domain is not None:
                cap = _pick(trial, f"max_examples/{task}", cap_domain)
                if cap is not None:
                    caps[task] = int(_number(cap))
        return MixingConfig(
            scheme=scheme,  # type: ignore[arg-type]  # names checked against SAMPLING_SCHEMES
            temperature=temperature,
            weights=weights,
            max_examples=caps,
        )

    def _data_selection(
        self, trial: SuggestingTrial, auxiliaries: tuple[str, ...]
    ) -> DataSelectionConfig | None:
        space = self.spec.search.data_selection
        if space is None:
            return None
        features = tuple(space.features)
        if not auxiliaries:
            # Nothing to select; the baseline still carries the feature set, so it shares the
            # model family of the study's trials.
            return DataSelectionConfig(features=features)
        weights: dict[str, float] = {}
        for feature in sorted(features):
            domain = _per_task(space.weights, feature, default_all=True)
            if domain is not None:
                weights[feature] = float(_number(_pick(trial, f"selection/{feature}", domain)))
        keep = float(_number(_pick(trial, "selection/keep", space.keep)))
        return DataSelectionConfig(features=features, weights=weights, keep=keep)

    def _pretraining(self, trial: SuggestingTrial) -> PretrainingConfig | None:
        # The scheme keeps the parameter name `pretraining` it always had; the stage's own
        # settings are suggested only when a trial pretrains (conditional parameters).
        space = self.spec.search.pretraining
        scheme = _pick(trial, "pretraining", space.scheme)
        if scheme in NO_PRETRAINING:
            return None
        max_length = space.max_length
        return PretrainingConfig(
            scheme=str(scheme),
            steps=int(_number(_pick(trial, "pretraining/steps", space.steps))),
            corpus=space.corpus,
            learning_rate=float(
                _number(_pick(trial, "pretraining/learning_rate", space.learning_rate))
            ),
            batch_size=int(_number(_pick(trial, "pretraining/batch_size", space.batch_size))),
            max_length=max_length,
            max_sequences=space.max_sequences,
            options={
                name: _pick(trial, f"pretraining/{scheme}/{name}", domain)
                for name, domain in sorted(space.options.get(str(scheme), {}).items())
            },
        )

    # -- enqueued trials ---------------------------------------------------------------------

    def baseline_params(self) -> dict[str, Any]:
        """Return the parameters that fix the subset to the target alone (for ``enqueue_trial``)."""
        return {aux_param(t): False for t in self.free}

    def baseline_user_attrs(self) -> dict[str, Any]:
        """Return the user attributes that mark the enqueued trial as the baseline."""
        return {ROLE_ATTR: BASELINE_ROLE}

    def family_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Return the parameters among a trial's ``params`` that define its model family.

        :meth:`TrialConfig.family_key` keys a family by the encoder, the input length, the
        data-selection features (all fixed by the spec), the target's example cap and the
        pretraining stage: of these only the cap (``max_examples/<target>``) and the stage
        (``pretraining`` and its ``pretraining/...`` settings) can be searched.
        """
        cap = f"max_examples/{self.spec.target}"
        return {
            name: value
            for name, value in params.items()
            if name in (cap, "pretraining") or name.startswith("pretraining/")
        }

    def setting_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Return the parameters among a trial's ``params`` that set how its target trains
        alone outside the model family (:meth:`TrialConfig.alone_settings`): the learning
        rate, batch size, steps, epochs, loss weighting, sharing architecture and its
        parameters, and the trainer settings (``hp/<key>``) other than multi-task bookkeeping.

        The architecture is the trial's ``sharing`` parameter, or the space's only one (a
        single architecture is never suggested, but its own parameters are).
        """
        from taskgraph.trial import NOT_ALONE_SETTINGS

        plain = ("learning_rate", "batch_size", "max_steps", "epochs", "loss_weighting", "sharing")
        sharing = params.get("sharing")
        if sharing is None and len(self.sharing) == 1:
            sharing = next(iter(self.sharing))
        return {
            name: value
            for name, value in params.items()
            if name in plain
            or (sharing is not None and name.startswith(f"{sharing}/"))
            or (name.startswith("hp/") and name[3:] not in NOT_ALONE_SETTINGS)
        }

    def searched_alone_settings(self) -> list[str]:
        """Return the searched parameters (:meth:`describe`'s names) that set how the target
        trains alone outside its model family (:meth:`setting_params`), sharing
        architectures whose single-task model is the plain one left out.

        Under ``budget.baselines: per_family`` the baseline samples its own values of these,
        so a trial that draws others measures that change besides the transfer.
        """
        from taskgraph.trial import (
            NOT_ALONE_SETTINGS,
            PLAIN_SINGLE_TASK_SHARING,
            PLAIN_SINGLE_TASK_WEIGHTING,
        )

        plain = {
            "sharing": PLAIN_SINGLE_TASK_SHARING,
            "loss_weighting": PLAIN_SINGLE_TASK_WEIGHTING,
        }
        names: list[str] = []
        for name, domain in self.describe().items():
            prefix = name.split("/", 1)[0]
            if name in plain:
                if not set(domain) <= plain[name]:
                    names.append(name)
            elif name in ("learning_rate", "batch_size", "max_steps", "epochs"):
                names.append(name)
            elif name.startswith("hp/"):
                if name[3:] not in NOT_ALONE_SETTINGS:
                    names.append(name)
            elif "/" in name and prefix in self.sharing and prefix not in PLAIN_SINGLE_TASK_SHARING:
                names.append(name)
        return names

    def family_baseline(
        self, params: Mapping[str, Any], family: str, *, settings: bool = False
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Return (params, user attributes) of the baseline of another trial's model family.

        ``params`` are that trial's; the baseline fixes its family-defining parameters
        (:meth:`family_params`), with ``settings`` its alone settings' too
        (:meth:`setting_params`, ``budget.baselines: per_setting``), and leaves the rest to
        the sampler, like the first baseline.
        """
        fixed = {**self.baseline_params(), **self.family_params(params)}
        if settings:
            fixed.update(self.setting_params(params))
        return fixed, {**self.baseline_user_attrs(), FAMILY_ATTR: family}

    def row_params(self, row: RowSpec) -> dict[str, Any]:
        """Return the parameters that make a trial train ``row`` (for ``enqueue_trial``)."""
        flags = {aux_param(t): t in row.auxiliaries for t in self.free}
        return {**flags, **row.params}

    def row_user_attrs(self, row: RowSpec) -> dict[str, Any]:
        """Return the user attributes of ``row``'s enqueued trial (the baseline's role too)."""
        attrs: dict[str, Any] = {ROW_ATTR: row.name}
        if not row.auxiliaries:
            attrs.update(self.baseline_user_attrs())
        return attrs

    def row_config(self, row: RowSpec, *, seed: int | None = None) -> TrialConfig:
        """Return the configuration ``row`` trains (with ``seed``, default the first seed).

        Raises :class:`SpecError` naming the row when it leaves a parameter to the sampler,
        names one its trial never suggests, gives a value outside the parameter's domain or
        one its sharing architecture refuses
        (:func:`~taskgraph.search.sharing_space.sharing_refusal`), names an ``aux/<task>``
        parameter (the row's ``auxiliaries`` say which tasks it trains), or names auxiliaries
        that ``search.auxiliaries`` would change.
        """
        import optuna

        where = f"rows[{self.spec.rows.index(row)}] ({row.name})"
        flags = sorted(name for name in row.params if name.startswith(AUX_PARAM_PREFIX))
        if flags:  # they would override the row's own list (row_params)
            raise SpecError(
                f"{where}: params.{flags[0]}: a row names its auxiliary tasks in `auxiliaries`, "
                f"not as {AUX_PARAM_PREFIX}<task> parameters"
            )
        params = self.row_params(row)
        trial = optuna.trial.FixedTrial(params)
        for key, value in self.row_user_attrs(row).items():
            trial.set_user_attr(key, value)
        try:
            with warnings.catch_warnings():  # out-of-domain values are reported below
                warnings.simplefilter("ignore")
                config = self.suggest(trial)
        except ValueError as error:
            text = str(error)
            if "is not found" not in text:
                raise SpecError(f"{where}: params: {text}") from None
            missing = text.split("'")[1]
            raise SpecError(
                f"{where}: parameter {missing!r} is left to the sampler; fix it in the row's "
                "params (or make it a single value in the spec)"
            ) from None
        for name, distribution in trial.distributions.items():
            value = trial.params[name]
            if not distribution._contains(distribution.to_internal_repr(value)):
                raise SpecError(
                    f"{where}: params.{name}: {value!r} is outside its domain "
                    f"{self._domain_text(distribution)}"
                )
        prefix = f"{config.sharing}/"
        for name in row.params:
            param = name.removeprefix(prefix)
            if name.startswith(prefix) and param in config.sharing_params:
                value = config.sharing_params[param]  # as the trial builds its model with it
                reason = sharing_space.sharing_refusal(
                    config.sharing, param, value, num_layers=self.encoder_depth
                )
                if reason is not None:
                    raise SpecError(f"{where}: params.{name}: {reason}")
        unused = sorted(set(row.params) - set(trial.distributions))
        if unused:
            raise SpecError(
                f"{where}: params.{unused[0]}: not a parameter this row's trial suggests; it "
                f"suggests: {', '.join(_settable(trial.distributions)) or '(none)'}"
            )
        if set(config.auxiliaries) != set(row.auxiliaries):
            raise SpecError(
                f"{where}: auxiliaries {list(row.auxiliaries)} break search.auxiliaries "
                f"(the trial would train {list(config.auxiliaries)})"
            )
        if seed is not None:
            from dataclasses import replace

            config = replace(config, seed=seed)
        return config

    @staticmethod
    def _domain_text(distribution: Any) -> str:
        choices = getattr(distribution, "choices", None)
        if choices is not None:
            return "[" + ", ".join(map(str, choices)) + "]"
        return f"[{distribution.low}, {distribution.high}]"

    def describe(self) -> dict[str, Any]:
        """Return the searched parameters as plain data (name -> domain), for docs and the CLI.

        Per-task parameters are listed with ``<task>`` standing for each task they apply to;
        conditional ones only appear in trials where their condition holds.
        """
        search = self.spec.search
        out: dict[str, Any] = {aux_param(t): [False, True] for t in self.free}
        if len(self.sharing) > 1:
            out["sharing"] = list(self.sharing)
        for arch, params in self.sharing.items():
            out.update({f"{arch}/{k}": d.describe() for k, d in params.items() if not d.is_fixed})
        mixing = search.mixing
        named: list[tuple[str, Domain | Mapping[str, Domain] | None]] = [
            ("mixing/scheme", mixing.scheme),
            ("mixing/temperature", mixing.temperature),
            ("weight/<task>", mixing.weights),
            ("max_examples/<task>", mixing.max_examples),
            ("transfer_mode", search.transfer_mode),
            ("loss_weighting", search.loss_weighting),
            ("pretraining", search.pretraining.scheme),
            ("pretraining/steps", search.pretraining.steps),
            ("pretraining/learning_rate", search.pretraining.learning_rate),
            ("pretraining/batch_size", search.pretraining.batch_size),
            *(
                (f"pretraining/{scheme}/{k}", d)
                for scheme, options in search.pretraining.options.items()
                for k, d in options.items()
            ),
            ("learning_rate", search.learning_rate),
            ("epochs", search.epochs),
            ("max_steps", search.max_steps),
            ("batch_size", search.batch_size),
            *((f"hp/{k}", d) for k, d in search.hyperparameters.items()),
        ]
        for name, value in named:
            if isinstance(value, Domain):
                if not value.is_fixed:
                    out[name] = value.describe()
            elif value is not None:
                searched = {k: d.describe() for k, d in value.items() if not d.is_fixed}
                if searched:
                    out[name] = searched
        if not any(s in mixing.scheme.values() for s in _TEMPERATURE_SCHEMES):
            out.pop("mixing/temperature", None)
        selection = search.data_selection
        if selection is not None:
            for feature in sorted(selection.features):
                domain = _per_task(selection.weights, feature, default_all=True)
                if domain is not None and not domain.is_fixed:
                    out[f"selection/{feature}"] = domain.describe()
            if not selection.keep.is_fixed:
                out["selection/keep"] = selection.keep.describe()
        return out


def _settable(names: Mapping[str, Any]) -> list[str]:
    return sorted(n for n in names if not n.startswith(AUX_PARAM_PREFIX))


def _pick(trial: SuggestingTrial, name: str, domain: Domain) -> Scalar:
    """Return ``domain``'s value for ``trial``: fixed values are not suggested at all."""
    if domain.is_fixed:
        return domain.fixed_value()
    kind = domain.kind
    if kind == "choice":
        assert domain.choices is not None
        return trial.suggest_categorical(name, list(domain.choices))
    assert domain.low is not None and domain.high is not None
    if kind == "int":
        step = int(domain.step) if domain.step is not None else 1
        return trial.suggest_int(name, int(domain.low), int(domain.high), step=step, log=domain.log)
    return trial.suggest_float(
        name, float(domain.low), float(domain.high), step=domain.step, log=domain.log
    )


def _per_task(
    value: Domain | Mapping[str, Domain] | None, task: str, *, default_all: bool
) -> Domain | None:
    if value is None:
        return None
    if isinstance(value, Domain):
        return value if default_all else None
    if task in value:
        return value[task]
    return value.get("*") if default_all else None


def _number(value: Scalar) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"expected a number in the search space, got {value!r}")
    return value
