"""Checks of how a study searches: its sampler and pruner, and the ``search:`` settings.

The sampler's options (by building it), the pruner's settings, the auxiliary-set size, data
selection, the numeric search domains and the mixing weights and per-task mappings.
"""

from __future__ import annotations

from taskgraph.errors import SpecError
from taskgraph.search.checks.refusals import _refuse_or_warn, _warn_once
from taskgraph.spec.domains import Domain
from taskgraph.spec.models import StudySpec


def _check_sampler_options(spec: StudySpec, source: str) -> None:
    # Building the sampler is cheap and touches no storage; it is the one check that knows
    # each sampler's keywords and values.  Without it a bad option failed only in `run`, after
    # the database was created.
    from taskgraph.search.samplers import build_sampler

    if spec.sampler.name == "random" and spec.sampler.n_startup_trials is not None:
        # RandomSampler models nothing, so it has no start-up phase: the setting did nothing.
        raise SpecError(
            f"{source}: sampler.n_startup_trials: the random sampler draws every trial at "
            "random, so it has no start-up trials; remove it (tpe, gp, graph and bandit use it)"
        )
    try:
        build_sampler(spec)
    except SpecError as error:
        raise SpecError(f"{source}: {error}") from None


#: pruner setting -> the pruners that read it (``build_pruner``; the Ray runner's schedulers)
_PRUNER_SETTINGS = {
    "min_resource": ("asha", "successive_halving"),
    "reduction_factor": ("asha", "successive_halving"),
    "n_startup_trials": ("median",),
    "n_warmup_steps": ("median",),
}


def _check_pruner(spec: StudySpec, source: str) -> None:
    """Refuse a setting of another pruner than the one named: it would be ignored in silence.

    A spec stored with a study (and one given a runner on the command line) is the model's
    dump, which holds every setting at its default: there, only a value other than the
    default is a setting someone wrote.
    """
    pruner = spec.pruner
    written = pruner.model_fields_set
    dumped = written >= set(_PRUNER_SETTINGS)
    for key, users in _PRUNER_SETTINGS.items():
        if pruner.name in users or key not in written:
            continue
        if dumped and getattr(pruner, key) == type(pruner).model_fields[key].default:
            continue
        raise SpecError(
            f"{source}: pruner.{key}: a setting of the {users[0]} pruner, which pruner "
            f"{pruner.name!r} ignores; remove it, or use pruner: {users[0]}"
        )


def _check_auxiliary_sizes(spec: StudySpec, source: str) -> None:
    # `search.auxiliaries.max_size: 0` allows only the empty set: every trial trains the
    # target alone, the baseline, whatever the sampler proposes.
    if spec.search.auxiliaries.max_size == 0:
        raise SpecError(
            f"{source}: search.auxiliaries.max_size: max_size 0 leaves no auxiliary to search "
            "(every trial would be the baseline, the target alone); use at least 1, or null "
            "for no bound"
        )


def _check_data_selection(spec: StudySpec, source: str, *, stored: bool = False) -> None:
    selection = spec.search.data_selection
    if selection is None:
        return
    from taskgraph.tasks.selection import SELECTION_FEATURES

    for feature in selection.features:
        if feature not in SELECTION_FEATURES:
            raise SpecError(
                f"{source}: search.data_selection.features: unknown feature {feature!r}; "
                f"allowed: {', '.join(SELECTION_FEATURES)}"
            )
    # A feature a weights mapping leaves out gets weight 0 (never scored): a typo more often
    # than a choice, so it is said; not refused, as a stored study's spec may have one.
    weights = selection.weights
    if isinstance(weights, dict) and "*" not in weights:
        unnamed = [f for f in selection.features if f not in weights]
        if unnamed:
            _warn_once(
                f"warning: {source}: search.data_selection.weights names no weight for "
                f"{', '.join(unnamed)}: weight 0, left out of the score (name "
                f'{"it" if len(unnamed) == 1 else "them"}, or add "*": <domain> for every '
                "feature not named)"
            )
    # selection/* parameters are suggested only in trials with auxiliaries: in a study that
    # never has one they would be counted as searched yet never drawn.
    if not spec.drawable_candidates():
        _refuse_or_warn(
            f"{source}: search.data_selection: the study has no auxiliary tasks to select from "
            "(no candidate besides the target that is not excluded); remove data_selection, "
            "or add candidates",
            stored=stored,
        )


def _numeric_domains(spec: StudySpec) -> list[tuple[str, Domain, bool]]:
    """Return (field path, domain, may be null) of every search setting a trial reads as a number."""
    search = spec.search
    mixing = search.mixing
    out: list[tuple[str, Domain, bool]] = [
        ("search.learning_rate", search.learning_rate, False),
        ("search.epochs", search.epochs, False),
        ("search.max_steps", search.max_steps, True),
        ("search.batch_size", search.batch_size, False),
        ("search.mixing.temperature", mixing.temperature, False),
    ]
    for where, value, nullable in (
        ("search.mixing.weights", mixing.weights, False),
        ("search.mixing.max_examples", mixing.max_examples, True),
    ):
        if isinstance(value, Domain):
            out.append((where, value, nullable))
        elif value is not None:
            out.extend((f"{where}.{task}", domain, nullable) for task, domain in value.items())
    return out


def _check_numbers(spec: StudySpec, source: str) -> None:
    # A domain holds any scalar (`learning_rate: [1e-4, 3e-4]` or `scheme: [a, b]`), so a
    # string where a number belongs (`--set search.max_steps=abc`) passes the models and
    # would only fail when the first trial reads it, after the study was created.
    for where, domain, nullable in _numeric_domains(spec):
        for value in domain.values():
            if value is None and nullable:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SpecError(f"{source}: {where}: expected a number, got {value!r}")


def _check_mixing_tasks(spec: StudySpec, source: str) -> None:
    # A trial looks up each of its tasks in these mappings, so a key that is no task of the
    # study (a typo) would be ignored in silence.
    tasks = [spec.target, *spec.candidate_names]
    for where, value in (
        ("search.mixing.weights", spec.search.mixing.weights),
        ("search.mixing.max_examples", spec.search.mixing.max_examples),
    ):
        if not isinstance(value, dict):
            continue
        for key in value:
            if key != "*" and key not in tasks:
                raise SpecError(
                    f"{source}: {where}.{key}: not a task of the study; allowed: "
                    f"{', '.join(tasks)}, or * for every task not named"
                )


def _check_mixing_weights(spec: StudySpec, source: str) -> None:
    """Refuse a mixing weight that can be 0: the task's batches would never be drawn.

    An auxiliary with weight 0 is never trained, yet its run is recorded with it in the task
    set (a gain measured for a set that was not trained); a target with weight 0 is never
    trained either (under the target step budget every trial with an auxiliary fails).  A
    range can be 0 when its low end is: an int range or a ``step`` grid holds its low end,
    and the ``gp`` sampler's optimiser stops on a range's end, so such ranges are refused
    too, whatever the sampler.
    """
    weights = spec.search.mixing.weights
    # An excluded candidate is never drawn, so a weight of 0 for it trains nothing less.
    auxiliaries = spec.drawable_candidates()
    excluded = set(spec.search.auxiliaries.exclude) - {spec.target}
    entries: list[tuple[str, Domain, list[str]]] = []
    if isinstance(weights, Domain):  # one domain for every auxiliary (the target stays 1.0)
        entries.append(("search.mixing.weights", weights, auxiliaries))
    else:
        for key, domain in weights.items():
            others = [task for task in auxiliaries if task not in weights]
            covered = others if key == "*" else [key]  # "*": every auxiliary not named
            covered = [task for task in covered if task not in excluded]
            entries.append((f"search.mixing.weights.{key}", domain, covered))
    for where, domain, tasks in entries:
        zero = _zero_weight(domain) if tasks else None
        if zero is None:
            continue
        if spec.target in tasks:
            raise SpecError(
                f"{source}: {where}: {zero}, which never draws a batch of the target "
                f"{spec.target}: it would never be trained, and every trial with an auxiliary "
                "would fail (the target drawn with probability 0); give it a weight above 0"
            )
        ranged = domain.low is not None
        raise SpecError(
            f"{source}: {where}: {zero}, which never draws a batch of {', '.join(tasks)}: an "
            "auxiliary with weight 0 is never trained, and the run would be recorded as a "
            f"task set it did not train; {'start the range above 0, or ' if ranged else ''}"
            f"leave {'it' if len(tasks) == 1 else 'them'} out of the candidates (or the "
            "auxiliaries' include) instead"
        )


def _zero_weight(domain: Domain) -> str | None:
    """Return how ``domain`` can give a weight of 0 (None when it cannot)."""
    if domain.low is None:  # a fixed value or choices
        if any(not isinstance(v, bool) and v == 0 for v in domain.values()):
            return "a weight of 0" if domain.is_fixed else "the choice 0"
        return None
    if domain.low != 0:
        return None  # a range's ends are >= 0 (the models' check): low > 0 stays above 0
    if domain.kind == "int" or domain.step is not None:
        how = "its low end is on its grid"
    else:
        how = "the gp sampler's optimiser stops on a range's ends"
    text = ", ".join(f"{key}: {value}" for key, value in domain.describe().items())
    return f"the range {{{text}}} can draw 0 ({how})"
