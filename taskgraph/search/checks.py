"""Checks of a parsed spec's names against the registries and the task catalog.

The pydantic models check a spec's shape; these check its names: tasks in the catalog (or
defined inline), sharing architectures and their parameters, loss weightings, mixing schemes
and per-task settings, samplers and their options (by building the sampler), encoders, trainer
hyperparameters and the objective's metric.  Each failure is a
:class:`~taskgraph.errors.SpecError` naming the field path and the allowed values.  The
registries are read here, not in the spec models, so a new plug-in needs no change to the
spec; this module sits in the search layer because it reads the trainer's settings and the
search space, which sit above the spec.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskgraph.errors import ConfigError, SpecError, TaskgraphError, option_name
from taskgraph.spec.checks import check_inline_data, inline_task_defs
from taskgraph.spec.domains import Domain
from taskgraph.spec.models import RowSpec, StudySpec
from taskgraph.vocabulary import direction_mismatch, metric_direction

if TYPE_CHECKING:
    from taskgraph.search.space import SearchSpace

__all__ = ["check_spec"]


def check_spec(
    spec: StudySpec,
    *,
    source: str = "spec",
    trust_remote_code: bool = False,
    trains: bool = True,
    stored: bool = False,
) -> None:
    """Raise :class:`SpecError` for the first name in ``spec`` that nothing knows.

    ``trains`` is the runner's capability (:class:`~taskgraph.runners.base.RunnerCapabilities`):
    ``False`` for a runner that trains nothing (a published table), whose spec is checked
    for its sampler only.

    ``stored``: the spec a study was created with (``study resume``), which cannot be edited:
    the checks added after studies were stored under looser rules (data selection without an
    auxiliary, a ``freeze_layers`` beyond the encoder's depth) warn instead of refusing, so
    such a study still resumes, as it ran before (its trials that drew such a value fail).

    ``trust_remote_code`` (the CLI's ``--trust-remote-code``) allows
    ``encoder.options.trust_remote_code: true``; without it such a spec is refused, since
    Hugging Face would then import and run Python files from the model directory.
    """
    if spec.encoder.options.get("trust_remote_code", False) not in (False, None) and not (
        trust_remote_code
    ):
        raise SpecError(
            f"{source}: encoder.options.trust_remote_code: runs Python code shipped with the "
            f"model; refused unless the command is given {option_name('trust_remote_code', True)}"
        )
    _check_registry(
        source, "sampler.name", [spec.sampler.name], "taskgraph.search.samplers", "SAMPLERS"
    )
    _check_sampler_options(spec, source)
    _check_pruner(spec, source)
    _check_auxiliary_sizes(spec, source)
    if spec.storage is not None and spec.storage.strip():
        from taskgraph.errors import StorageError
        from taskgraph.storage.urls import parse_storage_url

        try:
            parse_storage_url(spec.storage.strip(), check_directory=False)
        except StorageError as error:
            raise SpecError(f"{source}: storage: {error}") from None
    if not trains:
        # A benchmark table names its own tasks and was measured with one fixed model: only
        # the task set matters, so model settings are not checked (nor torch imported).
        _check_distinct_rows(spec, source, [_row_key(row) for row in spec.rows])
        _check_table_candidates(spec, source)
        return
    _check_tasks(spec, source)
    check_inline_data(spec, source=source)  # what a spec file names (its paths are absolute)
    _check_numbers(spec, source)
    _check_mixing_tasks(spec, source)
    _check_mixing_weights(spec, source)
    _check_encoder(spec, source)
    _check_hyperparameters(spec, source, stored=stored)
    _check_data_selection(spec, source, stored=stored)
    _check_registry(
        source,
        "search.loss_weighting",
        spec.search.loss_weighting.values(),
        "taskgraph.training",
        "LOSS_WEIGHTINGS",
    )
    _check_registry(
        source,
        "search.mixing.scheme",
        spec.search.mixing.scheme.values(),
        "taskgraph.training",
        "SAMPLING_SCHEMES",
    )
    _check_pretraining(spec, source)
    from taskgraph.search.space import SearchSpace

    try:
        space = SearchSpace(spec=spec)  # checks architectures and their parameter names
        # every row a complete configuration, in its domains
        configs = [space.row_config(row) for row in spec.rows]
    except SpecError as error:
        raise SpecError(f"{source}: {error}") from None
    _check_distinct_rows(
        spec, source, [(config.task_set_key, config.model_config_hash()) for config in configs]
    )
    _check_layer_ranges(spec, source, space)


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


def _row_key(row: RowSpec) -> tuple[frozenset[str], tuple[tuple[str, Any], ...]]:
    """Return what a row fixes when nothing is trained: its auxiliaries and its params."""
    return frozenset(row.auxiliaries), tuple(sorted(row.params.items()))  # scalar values


def _check_distinct_rows(spec: StudySpec, source: str, keys: list[Any]) -> None:
    """Refuse two rows that train one configuration (``keys[i]`` is row ``i``'s).

    Their runs could not be told apart: a results table would give them all to one row and
    show the other "not run".
    """
    first: dict[Any, int] = {}
    for index, key in enumerate(keys):
        earlier = first.setdefault(key, index)
        if earlier != index:
            raise SpecError(
                f"{source}: rows[{index}] ({spec.rows[index].name}) trains the same "
                f"configuration as rows[{earlier}] ({spec.rows[earlier].name}); remove one, or "
                "make their auxiliaries or params differ"
            )


def _check_layer_ranges(spec: StudySpec, source: str, space: SearchSpace) -> None:
    """Refuse a spec's own searched range of a layer count that goes past the encoder's depth.

    A layer parameter is one whose registry range follows ``num_layers``.  Such a value above
    the depth would mean the full depth (docs/models.md), so the search would spend trials
    on configurations that are all the same model.  ``space`` is the spec's, built from the
    registry: its encoder depth and its spaces at that depth are reused.
    """
    from taskgraph.search.space import _registry_spaces

    depth = space.encoder_depth
    if depth is None:
        return
    here = space.own_spaces
    deeper = _registry_spaces(list(spec.search.sharing), num_layers=depth + 1)
    for arch, overrides in spec.search.sharing.items():
        for name, domain in overrides.items():
            if here[arch].get(name) == deeper[arch].get(name):
                continue  # not a layer count
            # A fixed value above the depth is one configuration (the full depth, as a spec
            # written for a deeper encoder and run on a smaller one may give); a searched
            # range or choice above it spreads trials over copies of one model.
            values = [domain.high, *(domain.choices or ())]
            over = [v for v in values if isinstance(v, int | float) and v > depth]
            if over:
                raise SpecError(
                    f"{source}: search.sharing.{arch}.{name}: {over[0]:g} is above the "
                    f"{depth} layers of encoder {spec.encoder.name!r}; use at most {depth}"
                )


#: the warnings printed so far: a command checks its spec more than once (loading, then
#: building the engine), and says each thing once
_WARNED: set[str] = set()


def _warn_once(line: str) -> None:
    """Print ``line`` on stderr unless this process printed it already."""
    if line not in _WARNED:
        _WARNED.add(line)
        print(line, file=sys.stderr)


def _refuse_or_warn(line: str, *, stored: bool) -> None:
    """Raise ``SpecError(line)``, or, for a stored study's spec, print it once as a warning."""
    if not stored:
        raise SpecError(line)
    _warn_once(f"warning: {line}")


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


def _check_tasks(spec: StudySpec, source: str) -> None:
    from taskgraph.tasks import get_task

    extra = inline_task_defs(spec, source=source)
    targets: list[tuple[str, str]] = [("target", spec.target)]
    targets += [(f"candidates[{i}]", n) for i, n in enumerate(spec.candidate_names)]
    splits: set[str] = set()
    for where, name in targets:
        try:
            task = get_task(name, extra=extra)
        except TaskgraphError as error:
            raise SpecError(f"{source}: {where}: {error}") from None
        metric = spec.objective.metric
        if where == "target" and metric is not None and metric not in task.metrics:
            raise SpecError(
                f"{source}: objective.metric: {metric!r} is not a metric of "
                f"{name}; allowed: {', '.join(task.metrics)}"
            )
        if where == "target" and spec.objective.split not in task.splits:
            raise SpecError(
                f"{source}: objective.split: {name} has no split {spec.objective.split!r}; "
                f"allowed: {', '.join(task.splits)}"
            )
        if where == "target":
            _check_direction(spec, source, metric or task.primary_metric)
        splits.update(task.splits)
    # Each task is scored on the splits of `training.eval_splits` it has; one that no task has
    # (a typo) was stored in every run's configuration and scored nowhere.
    unknown = [s for s in spec.training.eval_splits if s not in splits]
    if unknown:
        raise SpecError(
            f"{source}: training.eval_splits: no task of the study has a split {unknown[0]!r} "
            f"(default: dev); their splits: {', '.join(sorted(splits))}"
        )


def _check_direction(spec: StudySpec, source: str, metric: str) -> None:
    # The trainer keeps the weights of the metric's best evaluation by the metric's own
    # direction; a study that optimised the other way would record the worst of the search.
    direction = metric_direction(metric)
    if spec.objective.direction != direction:
        raise SpecError(
            direction_mismatch(
                source=source,
                direction=spec.objective.direction,
                wanted=direction,
                scores=f"{metric} is",
            )
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
    auxiliaries = [task for task in spec.candidate_names if task != spec.target]
    entries: list[tuple[str, Domain, list[str]]] = []
    if isinstance(weights, Domain):  # one domain for every auxiliary (the target stays 1.0)
        entries.append(("search.mixing.weights", weights, auxiliaries))
    else:
        for key, domain in weights.items():
            others = [task for task in auxiliaries if task not in weights]
            covered = others if key == "*" else [key]  # "*": every auxiliary not named
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


def _check_table_candidates(spec: StudySpec, source: str) -> None:
    """Refuse a candidate with no row of a tabular runner's table for the target.

    Every trial whose task set holds it failed "no published result".  A table that does not
    read, or lacks ``runner.split`` or the target, is the runner's own check
    (``TabularRunner.check_spec``), which runs next: nothing is said here.
    """
    from taskgraph.spec.models import TabularRunnerSpec

    runner = spec.runner
    if not isinstance(runner, TabularRunnerSpec):
        return
    from taskgraph.affinity.longtable import read_long_csv
    from taskgraph.files import read_unchanged

    try:
        table = read_unchanged(runner.table, read_long_csv)  # the runner's read, cached
    except (TaskgraphError, OSError, ValueError):
        return
    sets = table.task_sets(spec.target, split=runner.split)
    if not sets:
        return
    tasks = sorted(set().union(*sets) - {spec.target})
    excluded = set(spec.search.auxiliaries.exclude)  # never drawn
    for index, name in enumerate(spec.candidate_names):
        if name == spec.target or name in excluded or name in tasks:
            continue
        raise SpecError(
            f"{source}: candidates[{index}]: {name!r} has no row in {runner.table} (target "
            f"{spec.target}, split {runner.split}): every trial with it would fail; the "
            f"table's tasks: {', '.join(tasks) or '(none besides the target)'}"
        )


def _check_encoder(spec: StudySpec, source: str) -> None:
    from taskgraph.models.encoders import ENCODER_NAMES, encoder_config

    name = spec.encoder.name
    if name not in ENCODER_NAMES and not Path(os.path.expanduser(name)).is_dir():
        raise SpecError(
            f"{source}: encoder.name: {name!r} is neither a known encoder nor a directory; "
            f"allowed: {', '.join(ENCODER_NAMES)}, or the path of a local Hugging Face model"
        )
    if name == "tiny-bert":
        _check_tiny_bert_options(spec, source)
    else:
        _check_pretrained_options(spec, source)
    config = encoder_config(name, spec.encoder.options)
    if config is None:  # what the loader refuses, before every trial of a study fails on it
        raise SpecError(
            f"{source}: encoder.name: {name!r} has no readable config.json, so it is not a "
            "Hugging Face model directory"
        )
    positions = _encoder_positions(config)
    if positions is None:
        return
    windows = [("encoder.max_length", spec.encoder.max_length)]
    pretraining = spec.search.pretraining.max_length
    if pretraining is not None:
        windows.append(("search.pretraining.max_length", pretraining))
    for where, length in windows:
        if length > positions:
            raise SpecError(
                f"{source}: {where}: {length} tokens, but encoder {name!r} has "
                f"{positions} positions (max_position_embeddings); use at most {positions}"
            )


def _check_tiny_bert_options(spec: StudySpec, source: str) -> None:
    # The loader's own check of names, types and sizes, without building the model: a bad
    # option otherwise failed every trial of a run as an invalid configuration.
    from taskgraph.models.encoders import EncoderOptionError, tiny_bert_config

    try:
        tiny_bert_config(spec.encoder.options)
    except EncoderOptionError as error:
        raise SpecError(f"{source}: encoder.options.{error.option}: {error.reason}") from None
    except ConfigError as error:
        raise SpecError(f"{source}: encoder.options: {error}") from None


def _check_pretrained_options(spec: StudySpec, source: str) -> None:
    # The options that are fields of the encoder's configuration, of a type its class refuses;
    # the loader's other keywords are judged by loading, once per trial.
    from taskgraph.models.encoders import EncoderOptionError, check_pretrained_options

    try:
        check_pretrained_options(spec.encoder.name, spec.encoder.options)
    except EncoderOptionError as error:
        raise SpecError(f"{source}: encoder.options.{error.option}: {error.reason}") from None


def _encoder_positions(config: dict[str, Any]) -> int | None:
    """Return the encoder's ``max_position_embeddings`` (None when its config does not say)."""
    value = config.get("max_position_embeddings")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_hyperparameters(spec: StudySpec, source: str, *, stored: bool = False) -> None:
    from taskgraph.training import TrainingOptions

    known = {f.name for f in fields(TrainingOptions)} - {"tasks_per_step_override"} | {
        "tasks_per_step"
    }
    for where, keys in (
        ("search.hyperparameters", spec.search.hyperparameters),
        ("training.hyperparameters", spec.training.hyperparameters),
    ):
        unknown = sorted(set(keys) - known)
        if unknown:
            raise SpecError(
                f"{source}: {where}.{unknown[0]}: unknown trainer setting; allowed: "
                f"{', '.join(sorted(known))}"
            )
    _check_setting_values(spec, source, stored=stored)
    _check_doc_stride(spec, source, stored=stored)
    _check_freeze_layers(spec, source, stored=stored)
    _check_head_options(spec, source, stored=stored)
    _check_source_tasks(spec, source, stored=stored)


def _check_setting_values(spec: StudySpec, source: str, *, stored: bool = False) -> None:
    """Refuse a scalar trainer setting of the wrong type or out of its range.

    Each trial checks its settings (``TrainingOptions``), so a ``doc_stride: abc`` or a
    ``warmup_ratio: 5`` failed every trial after the study was created.  The rules are the
    trainer's own (``taskgraph.training.options.SETTINGS``); for a searched range its ends
    are checked, and that it gives integers where the setting counts something.
    ``freeze_layers`` has its own check, against the encoder's depth.
    """
    from taskgraph.training.options import SETTINGS

    for key, setting in SETTINGS.items():
        if key == "freeze_layers":
            continue
        searched = spec.search.hyperparameters.get(key)
        if searched is not None and setting.kind == "integer" and searched.kind == "float":
            _refuse_or_warn(
                f"{source}: search.hyperparameters.{key}: must be {setting.describe()}, got "
                f"the float range {searched.describe()}",
                stored=stored,
            )
            return
        for where, value in _trainer_setting_values(spec, key):
            if not setting.admits(value):
                _refuse_or_warn(
                    f"{source}: {where}: must be {setting.describe()}, got {value!r}",
                    stored=stored,
                )
                return


def _check_doc_stride(spec: StudySpec, source: str, *, stored: bool = False) -> None:
    """Refuse a ``doc_stride`` the spec sets that the study's QA windows cannot take.

    Consecutive QA windows of ``max_length`` tokens must share fewer than half of them
    (``taskgraph.tasks.features.encode_qa``).  The encoding clamps the stride to
    ``max_length // 2 - 1`` so that the default (128) works with short windows; a stride the
    spec names was clamped the same way, in silence (``doc_stride: 200`` with
    ``max_length: 128`` trained with 63).  Only a study with an extractive QA task uses it.
    """
    from taskgraph.tasks import get_task
    from taskgraph.tasks.types import TaskType
    from taskgraph.training.options import SETTINGS

    entries = _trainer_setting_values(spec, "doc_stride")
    if not entries:
        return  # the default, clamped to the windows
    extra = inline_task_defs(spec, source=source)
    tasks = [spec.target, *spec.drawable_candidates()]  # an excluded one never trains
    qa = [t for t in tasks if get_task(t, extra=extra).type is TaskType.EXTRACTIVE_QA]
    if not qa:
        return
    max_length = spec.encoder.max_length
    limit = max_length // 2
    for where, value in entries:
        if not SETTINGS["doc_stride"].admits(value) or value < limit:
            continue  # a value of the wrong type is _check_setting_values' to refuse
        named = ", ".join(map(repr, qa))
        _refuse_or_warn(
            f"{source}: {where}: must be < {limit} (encoder.max_length {max_length} // 2) "
            f"for the extractive QA task{'s' if len(qa) > 1 else ''} {named}, got {value!r}; "
            f"QA windows of {max_length} tokens must overlap by less than half",
            stored=stored,
        )
        return


def _check_source_tasks(spec: StudySpec, source: str, *, stored: bool = False) -> None:
    """Refuse a ``source_tasks`` entry that is not a candidate auxiliary of the study.

    A sequential trial trains the named sources first; one naming none of the trial's
    auxiliaries fails at the model build (``TrainingOptions.phases``), so a name that is no
    candidate (a typo, or the target) made every sequential trial that had no other source
    fail after the baseline had trained.
    """
    entries = _trainer_setting_values(spec, "source_tasks")
    candidates = list(spec.candidate_names)
    for where, value in entries:
        if value is None:
            continue
        names = value
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            _refuse_or_warn(
                f"{source}: {where}: expected a list of candidate task names, got {value!r}",
                stored=stored,
            )
            return
        for name in names:
            if name not in candidates:
                what = "the target" if name == spec.target else "not a candidate of the study"
                _refuse_or_warn(
                    f"{source}: {where}: {name!r} is {what}, so no sequential trial could "
                    f"train it first; the candidates: {', '.join(candidates)}",
                    stored=stored,
                )
                return


def _trainer_setting_values(spec: StudySpec, key: str) -> list[tuple[str, Any]]:
    """Return (where, value) for each value trainer setting ``key`` can take in the study:
    each choice of ``search.hyperparameters.<key>``, else the fixed
    ``training.hyperparameters.<key>``, else none."""
    searched = spec.search.hyperparameters.get(key)
    if searched is not None:
        return [(f"search.hyperparameters.{key}", v) for v in searched.values()]
    if key in spec.training.hyperparameters:
        return [(f"training.hyperparameters.{key}", spec.training.hyperparameters[key])]
    return []


def _check_freeze_layers(spec: StudySpec, source: str, *, stored: bool = False) -> None:
    """Refuse a ``freeze_layers`` that is not a layer count of the encoder.

    The model build refuses it (``taskgraph.models.frozen.freeze_bottom``), so every trial
    drawing such a value would fail after the study was created.  The depth is read from the
    encoder's configuration (``config.json``, or tiny-bert's options) without loading it.
    """
    from taskgraph.search.space import encoder_depth

    depth = encoder_depth(spec)
    name = spec.encoder.name
    values = _trainer_setting_values(spec, "freeze_layers")
    for where, value in values:
        whole = isinstance(value, int) and not isinstance(value, bool)
        if whole and value >= 0 and (depth is None or value <= depth):
            continue
        bounds = f"in [0, {depth}]" if depth is not None else ">= 0"
        layers = f" (encoder {name!r} has {depth} layers)" if depth is not None else ""
        _refuse_or_warn(
            f"{source}: {where}: must be a whole number of layers {bounds}{layers}, got {value!r}",
            stored=stored,
        )
        return
    _check_freeze_sharing(spec, source, [(w, v) for w, v in values if v != 0], stored=stored)


def _check_freeze_sharing(
    spec: StudySpec, source: str, values: list[tuple[str, Any]], *, stored: bool = False
) -> None:
    """Refuse a ``freeze_layers`` above 0 that a searched sharing architecture cannot run.

    The model build refuses it for the architectures that do not run the encoder as one block
    (``taskgraph.models.frozen``, whose list is read here), so each trial drawing one of them
    failed.  A study searching a supported and an unsupported architecture is refused too,
    rather than searched over the supported ones only: dropping an architecture the spec names
    would change the search in silence, and a ``freeze_layers`` meant for one of them is more
    likely a slip than a wish to give it up.
    """
    if not values:
        return
    from taskgraph.models.frozen import FREEZE_ARCHITECTURES as supported  # the build's own

    searched = list(spec.search.sharing)
    unsupported = [name for name in searched if name not in supported]
    if not unsupported:
        return
    where, value = values[0]
    some = len(unsupported) < len(searched)
    fix = (
        f"remove {', '.join(unsupported)} from search.sharing"
        if some
        else f"use sharing {' or '.join(supported)}"
    )
    _refuse_or_warn(
        f"{source}: {where}: freeze_layers {value!r} is implemented for the sharing "
        f"architectures {', '.join(supported)}, not {', '.join(map(repr, unsupported))} "
        f"(search.sharing); every trial drawing {'it' if len(unsupported) == 1 else 'them'} "
        f"would fail: {fix}, or set freeze_layers to 0",
        stored=stored,
    )


def _check_head_options(spec: StudySpec, source: str, *, stored: bool = False) -> None:
    """Refuse ``head_options`` for a task not in the study, or an option its head does not take.

    A trial keeps the head options of its own tasks (``SearchSpace``), so a task name that is
    no task of the study (a typo) was dropped in silence, and its options never applied; an
    option the task's head does not take failed every trial with that task at the model build
    (``taskgraph.models.heads.base.validate_options``, run here on each head's own
    ``OPTIONS``).
    """
    from taskgraph.models.heads.base import HeadSpec, validate_options
    from taskgraph.models.heads.factory import HEAD_CLASSES
    from taskgraph.tasks import get_task

    entries = _trainer_setting_values(spec, "head_options")
    tasks = list(dict.fromkeys([spec.target, *spec.candidate_names]))
    extra = inline_task_defs(spec, source=source)
    for where, value in entries:
        if not isinstance(value, dict):
            _refuse_or_warn(
                f"{source}: {where}: expected a mapping of task to head options, got {value!r}",
                stored=stored,
            )
            return
        for task, options in value.items():
            if task not in tasks:
                _refuse_or_warn(
                    f"{source}: {where}.{task}: not a task of the study, so its head options "
                    f"would be ignored; the study's tasks: {', '.join(tasks)}",
                    stored=stored,
                )
                return
            if not isinstance(options, dict):
                _refuse_or_warn(
                    f"{source}: {where}.{task}: expected a mapping of head options, got "
                    f"{options!r}",
                    stored=stored,
                )
                return
            task_type = get_task(task, extra=extra).type
            head = HeadSpec(task=task, type=task_type, num_labels=1, options=options)
            try:
                validate_options(head, HEAD_CLASSES[task_type].OPTIONS)
            except ConfigError as error:
                _refuse_or_warn(f"{source}: {where}.{task}: {error}", stored=stored)
                return


def _check_pretraining(spec: StudySpec, source: str) -> None:
    from taskgraph.spec.pretraining import NO_PRETRAINING
    from taskgraph.tasks import get_task
    from taskgraph.training.masking import MASKING_SCHEMES, build_masking, masking_options

    space = spec.search.pretraining
    where = "search.pretraining"
    known = ["none", *MASKING_SCHEMES.names()]
    schemes = [n for n in space.scheme.values() if n not in NO_PRETRAINING]
    for name in schemes:
        if name not in MASKING_SCHEMES:
            raise SpecError(
                f"{source}: {where}.scheme: unknown pretraining scheme {name!r}; allowed: "
                f"{', '.join(known)}"
            )
    for scheme, options in space.options.items():
        if scheme not in schemes:
            raise SpecError(
                f"{source}: {where}.options.{scheme}: not a scheme this study searches; "
                f"allowed: {', '.join(map(str, schemes)) or '(none: the study does not pretrain)'}"
            )
        allowed = masking_options(str(scheme))
        for option, domain in options.items():
            if option not in allowed:
                # `{nope:1}` (no space after the colon) is YAML for the key 'nope:1': name
                # the option, not the key with its value glued on
                name, colon, rest = str(option).partition(":")
                if colon and name.strip() in allowed:
                    raise SpecError(
                        f"{source}: {where}.options.{scheme}.{name.strip()}: {option!r} is one "
                        f"YAML key; write '{name.strip()}: {rest.strip()}' (a space after ':')"
                    )
                raise SpecError(
                    f"{source}: {where}.options.{scheme}.{name.strip() or option}: unknown "
                    f"option of {scheme!r}; allowed: {', '.join(allowed)}"
                )
            for value in domain.values():
                try:
                    build_masking(str(scheme), {option: value})
                except (TaskgraphError, TypeError) as error:
                    message = str(error).removeprefix("pretraining.options: ")
                    raise SpecError(
                        f"{source}: {where}.options.{scheme}.{option}: {message}"
                    ) from None
    if not schemes:
        return
    from taskgraph.training.pretraining import corpus_file_lines

    extra = inline_task_defs(spec, source=source)
    file_lines, tasks = 0, 0
    for index, entry in enumerate(space.corpus):
        try:
            get_task(entry, extra=extra)
            tasks += 1
            continue
        except TaskgraphError:
            pass  # as the stage reads it: a task name first, else a text file
        path = Path(os.path.expanduser(entry))
        if not path.is_file():
            raise SpecError(
                f"{source}: {where}.corpus[{index}]: {entry!r} is neither a task nor a text file"
            )
        # Read it whole, a line at a time, through the stage's own reader: a file that is not
        # UTF-8 (or unreadable) is one error now rather than every trial failing on it.
        try:
            file_lines += sum(1 for _ in corpus_file_lines(path, f"{where}.corpus[{index}]"))
        except TaskgraphError as error:
            raise SpecError(f"{source}: {error}") from None
    if space.corpus and not tasks and not file_lines:  # files only (tasks are read later)
        raise SpecError(f"{source}: {where}.corpus: {list(space.corpus)} holds no text")
    if space.corpus:
        _check_corpus_windows(spec, source, extra)


def _check_corpus_windows(spec: StudySpec, source: str, extra: dict[str, Any]) -> None:
    """Refuse a named corpus that gives the stage fewer than 2 windows (every trial fails).

    Counted as the stage counts them (:func:`~taskgraph.training.pretraining.corpus_windows`),
    with the encoder's tokenizer only; when that cannot be read, a corpus without a single
    text is refused.  A task whose data cannot be read here is left to the stage to judge
    (a runner's workers may read another data directory).
    """
    from taskgraph.training.pretraining import (
        corpus_entry_texts,
        corpus_windows,
        encoder_tokenizer,
    )

    space = spec.search.pretraining
    corpus = list(space.corpus)
    length = space.max_length or spec.encoder.max_length
    field = "search.pretraining.max_length" if space.max_length else "encoder.max_length"
    try:
        tokenizer = encoder_tokenizer(spec.encoder.name)
    except TaskgraphError:
        tokenizer = None
    try:
        if tokenizer is None:
            empty = next(corpus_entry_texts(corpus, tasks=extra), None) is None
        else:
            windows = corpus_windows(corpus, tokenizer, max_length=length, tasks=extra, at_most=2)
    except (TaskgraphError, OSError):
        return
    if tokenizer is None:
        if empty:
            raise SpecError(f"{source}: search.pretraining.corpus: {corpus} holds no text")
        return
    if windows < 2:
        raise SpecError(
            f"{source}: search.pretraining.corpus: {corpus} gives {windows} window(s) of "
            f"{length} tokens ({field}); the pretraining stage needs at least 2 (a text "
            f"of fewer than 4 word pieces gives none): add text or name a longer corpus"
        )


def _check_registry(source: str, where: str, names: Iterable[Any], module: str, attr: str) -> None:
    import importlib

    registry = getattr(importlib.import_module(module), attr)
    for name in names:
        if name not in registry:
            raise SpecError(
                f"{source}: {where}: unknown {registry.kind} {name!r}; allowed: "
                f"{', '.join(registry.names())}"
            )
