"""Checks of a parsed spec's names against the registries and the task catalog.

The pydantic models check a spec's shape; these check its names: tasks in the catalog (or
defined inline), sharing architectures and their parameters, loss weightings, mixing schemes
and per-task settings, samplers and their options (by building the sampler), encoders, trainer
hyperparameters and the objective's metric.  Each failure is a
:class:`~taskgraph.errors.SpecError` naming the field path and the allowed values.  The
registries are read here, not in the spec models, so a new plug-in needs no change to the
spec; this package sits in the search layer because it reads the trainer's settings and the
search space, which sit above the spec.

:func:`check_spec` runs the checks; each module holds those of one part of the spec:
:mod:`.tasks` (tasks, objective, rows), :mod:`.search_settings` (sampler, pruner, the
``search:`` settings), :mod:`.encoder`, :mod:`.trainer_settings` and :mod:`.pretraining`;
:mod:`.refusals` holds how they refuse or warn.
"""

from __future__ import annotations

from taskgraph.errors import SpecError, option_name
from taskgraph.search.checks.encoder import _check_encoder, _check_layer_ranges
from taskgraph.search.checks.pretraining import _check_pretraining
from taskgraph.search.checks.refusals import _check_registry
from taskgraph.search.checks.search_settings import (
    _check_auxiliary_sizes,
    _check_data_selection,
    _check_mixing_tasks,
    _check_mixing_weights,
    _check_numbers,
    _check_pruner,
    _check_sampler_options,
)
from taskgraph.search.checks.tasks import (
    _check_distinct_rows,
    _check_table_candidates,
    _check_tasks,
    _row_key,
)
from taskgraph.search.checks.trainer_settings import _check_hyperparameters
from taskgraph.spec.checks import check_inline_data
from taskgraph.spec.models import StudySpec

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
