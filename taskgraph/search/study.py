"""Run a study with the runner its spec names: the library call behind ``taskgraph study run``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from taskgraph.search.engine import EngineObserver, RunSummary, StudyEngine
from taskgraph.spec.models import StudySpec

__all__ = ["build_evaluator", "open_engine", "run_study", "stored_spec"]


def build_evaluator(spec: StudySpec, *, data_dir: str | Path | None = None) -> Any:
    """Return the evaluator of the spec's runner (``None`` for ``ray``: its workers build theirs)."""
    runner = spec.runner
    if runner.name == "tabular":
        from taskgraph.runners.tabular import TabularEvaluator

        return TabularEvaluator(table=runner.table, split=runner.split)
    if runner.name == "ray":
        return None
    from taskgraph.runners.local import LocalEvaluator
    from taskgraph.spec.checks import inline_task_defs

    return LocalEvaluator(
        tasks=inline_task_defs(spec),
        data_dir=data_dir,
        device=spec.training.device,
        threads=runner.threads,
    )


def open_engine(
    spec: StudySpec,
    *,
    storage_url: str,
    data_dir: str | Path | None = None,
    observer: EngineObserver | None = None,
    source: str = "spec",
) -> StudyEngine:
    """Return an engine for ``spec`` on ``storage_url`` with the runner's evaluator (not opened).

    The data directory and every task's files are checked first (``source`` names the spec in
    the error), before the engine touches the database: a wrong ``--data`` leaves nothing
    behind, not a study of failed trials that a corrected rerun could not continue.
    """
    from taskgraph.spec.checks import check_data

    resolved = check_data(spec, data_dir=data_dir, source=source)
    data_dir = resolved if resolved is not None else (data_dir or spec.data_dir)
    task_defs: dict[str, Any] | None = None
    sharing_spaces: dict[str, dict[str, Any]] | None = None
    if spec.runner.name == "tabular":
        # A published table was measured with one fixed model: only the task set matters, so
        # the architectures' own parameters (and importing torch to read them) are skipped.
        sharing_spaces = {name: {} for name in spec.search.sharing}
    else:
        from taskgraph.spec.checks import inline_task_defs

        task_defs = inline_task_defs(spec)
    return StudyEngine(
        spec=spec,
        storage_url=storage_url,
        evaluator=build_evaluator(spec, data_dir=data_dir),
        sharing_spaces=sharing_spaces,
        task_defs=task_defs,
        data_dir=data_dir,
        observer=observer,
    )


def run_study(
    spec: StudySpec,
    *,
    storage_url: str,
    data_dir: str | Path | None = None,
    observer: EngineObserver | None = None,
    source: str = "spec",
) -> RunSummary:
    """Open (or continue) the study and run it to its budget with the spec's runner.

    Nothing is written before the spec's data is found (:func:`open_engine`).
    """
    engine = open_engine(
        spec, storage_url=storage_url, data_dir=data_dir, observer=observer, source=source
    )
    try:
        engine.open()
        if spec.runner.name == "ray":
            from taskgraph.runners.ray import RayTuneRunner

            return RayTuneRunner(engine=engine, data_dir=engine.data_dir).run()
        return engine.run()
    finally:
        engine.close()


def stored_spec(
    name: str,
    *,
    storage_url: str,
    trials: int | None = None,
    wall_time: float | str | None = None,
    runner: dict[str, Any] | None = None,
) -> StudySpec:
    """Return the spec study ``name`` was run with, as stored in the database, with overrides.

    ``trials`` raises (or lowers) the budget, ``wall_time`` limits this invocation, and
    ``runner`` replaces the runner (its other settings are kept when the name is the same).
    """
    from taskgraph.errors import StorageError
    from taskgraph.search.progress import BUDGET_ATTR, SPEC_ATTR
    from taskgraph.search.report import open_study
    from taskgraph.spec import spec_from_dict

    study = open_study(name, storage_url=storage_url)
    data = dict(study.user_attrs.get(SPEC_ATTR) or {})
    if not data:
        raise StorageError(f"study {name!r} was not created by taskgraph (it has no spec)")
    search = dict(data.get("search") or {})
    # A study stored before `search.step_budget` existed was trained under the total budget.
    search.setdefault("step_budget", "total")
    data["search"] = search
    budget = dict(data.get("budget") or {})
    budget["trials"] = trials if trials is not None else study.user_attrs.get(BUDGET_ATTR, 1)
    if wall_time is not None:
        budget["wall_time"] = wall_time
    data["budget"] = budget
    if runner is not None:
        current = data.get("runner") or {}
        same = runner.get("name", current.get("name")) == current.get("name")
        data["runner"] = {**current, **runner} if same else runner
    # An error in a value given on the command line names the option, not the stored spec.
    options = {"budget.wall_time": "--wall-time"} if wall_time is not None else {}
    if trials is not None:
        options["budget.trials"] = "--trials"
    return spec_from_dict(data, source=f"study {name!r}", options=options)
