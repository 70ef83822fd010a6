"""``taskgraph study validate``: check a spec, its search space and its data, write nothing."""

from __future__ import annotations

from rich.text import Text

from taskgraph.cli.errors import refusal_line
from taskgraph.cli.options import DataOption, JsonOption, SpecArgument
from taskgraph.cli.output import emit_json, stdout_console
from taskgraph.cli.study._common import (
    SetOption,
    TrustOption,
    _labels,
    _load_checked,
    _parse_sets,
    _storage,
)


def validate(
    spec: SpecArgument,
    sets: SetOption = None,
    as_json: JsonOption = False,
    trust_remote_code: TrustOption = False,
    data: DataOption = None,
) -> None:
    """Check a study spec: its shape, its names, the search space it compiles to, and the
    data directory and every task's files, as `study run` checks them before it writes."""
    try:
        _validate(spec, sets, as_json=as_json, trust_remote_code=trust_remote_code, data=data)
    except Exception as error:
        # A script reads the answer from stdout either way; the error line still goes to
        # stderr and the exit status is the error's (the command group prints both).
        line = refusal_line(error) if as_json else None
        if line is not None:
            emit_json({"valid": False, "file": str(spec), "error": line})
        raise


def _validate(
    spec: SpecArgument,
    sets: SetOption,
    *,
    as_json: bool,
    trust_remote_code: bool,
    data: DataOption,
) -> None:
    """Print what `study validate` found in a valid spec; raise (TaskgraphError, or the
    OSError of a spec file the system refuses to read) otherwise."""
    from taskgraph.app.studies.specs import runner_of
    from taskgraph.search.space import SearchSpace
    from taskgraph.spec.checks import check_data

    overrides = _parse_sets(sets)
    labels = _labels(overrides, {})
    checked = _load_checked(spec, overrides, labels=labels, trust_remote_code=trust_remote_code)
    # The same checks as `study run` (taskgraph.app.studies.running.build_engine): a spec that is
    # "valid" here does not fail there for data that is missing, or for a database URL
    # (`$TASKGRAPH_STORAGE`, else the spec's `storage`) whose directory does not exist.
    _storage(None, checked, labels)
    data_dir = check_data(
        checked,
        data_dir=data,
        source=str(spec),
        trains=runner_of(checked).capabilities.trains,
    )
    space = SearchSpace(spec=checked)
    summary = {
        "valid": True,
        "file": str(spec),
        "name": checked.name,
        "target": checked.target,
        "candidates": checked.candidate_names,
        "sharing": list(checked.search.sharing),
        "sampler": checked.sampler.name,
        "pruner": checked.pruner.name,
        "runner": checked.runner.name,
        "budget": checked.budget.model_dump(mode="json"),
        "seeds": list(checked.seeds),
        "parameters": space.describe(),
        # searched settings that change the target trained alone: a baseline of its own for
        # each under `budget.baselines: per_setting`, else gains hold their change too
        "searched_alone_settings": space.searched_alone_settings(),
        "data_dir": None if data_dir is None else str(data_dir),  # None: no task reads files
    }
    if as_json:
        emit_json(summary)
        return
    stdout_console.print(
        Text("valid", style="green"),
        f"{spec}: study {checked.name!r}, target {checked.target}, "
        f"{len(checked.candidate_names)} candidates, {len(summary['parameters'])} searched "
        f"parameters, sampler {checked.sampler.name}, pruner {checked.pruner.name}, "
        f"runner {checked.runner.name}, budget {checked.budget.trials} trials x "
        f"{len(checked.seeds)} seed(s)",
        soft_wrap=True,
    )
    searched = summary["searched_alone_settings"]
    if searched and checked.budget.baselines != "per_setting":
        stdout_console.print(
            f"note: the space searches {', '.join(searched)}, which change the target trained "
            "alone: the baseline draws its own, so a trial that draws others measures that "
            "change besides the transfer (`study show` and the affinity commands name it); "
            "`budget.baselines: per_setting` trains a baseline for each, or fix them",
            soft_wrap=True,
        )
