"""Checks of the trainer settings (``search.hyperparameters``, ``training.hyperparameters``).

Their names and values by the trainer's own rules, and the settings that depend on the rest of
the study: ``doc_stride`` (the QA windows), ``freeze_layers`` (the encoder's depth and the
sharing architectures), ``head_options`` (the study's tasks and their heads) and
``source_tasks`` (the candidates).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from taskgraph.errors import ConfigError, SpecError
from taskgraph.search.checks.refusals import _refuse_or_warn
from taskgraph.spec.checks import inline_task_defs
from taskgraph.spec.models import StudySpec


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
    fail after the baseline had trained; so did a list of candidates that
    ``search.auxiliaries.exclude`` keeps out of every trial.
    """
    entries = _trainer_setting_values(spec, "source_tasks")
    # What a trial can draw: an excluded candidate is never among a trial's auxiliaries.
    candidates = spec.drawable_candidates()
    excluded = set(spec.search.auxiliaries.exclude)
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
        # An excluded name beside a drawable one is harmless (the list acts as the drawable
        # names alone); a list of excluded names only fails every sequential trial.
        every_excluded = bool(names) and all(name in excluded for name in names)
        for name in names:
            if name in excluded and name != spec.target and not every_excluded:
                continue
            if name not in candidates:
                what = (
                    "the target"
                    if name == spec.target
                    else "excluded from the search (search.auxiliaries.exclude), as is every "
                    "name of the list"
                    if name in excluded
                    else "not a candidate of the study"
                )
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
    from taskgraph.search.sharing_space import encoder_depth

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
