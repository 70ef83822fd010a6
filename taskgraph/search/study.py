"""The spec a stored study was run with (``taskgraph study resume``).

Running a study (spec -> engine -> runner) is composed by the application layer,
:mod:`taskgraph.app.studies`.
"""

from __future__ import annotations

from typing import Any

from taskgraph.spec.models import StudySpec

__all__ = ["stored_spec", "stored_spec_data"]


def stored_spec_data(name: str, *, storage_url: str, trials: int | None = None) -> dict[str, Any]:
    """Return the spec study ``name`` was run with, as stored (not validated: a plug-in
    runner's study reads without the plug-in), its budget the study's (or ``trials``).

    The storage URL in it is masked (it was stored so); ``budget.wall_time`` is the spec
    file's own: an invocation's ``--wall-time`` is never stored.
    """
    from taskgraph.search.progress import BUDGET_ATTR, SPEC_ATTR
    from taskgraph.search.stored_studies import not_taskgraphs, open_study

    study = open_study(name, storage_url=storage_url)
    data = dict(study.user_attrs.get(SPEC_ATTR) or {})
    if not data:
        raise not_taskgraphs(name, study, storage_url=storage_url)  # open_study refuses these
    search = dict(data.get("search") or {})
    # A study stored before `search.step_budget` existed was trained under the total budget.
    search.setdefault("step_budget", "total")
    data["search"] = search
    budget = dict(data.get("budget") or {})
    if trials is None:
        # A driver killed after the spec was stored and before the budget was leaves no
        # budget attribute: the spec's own budget is the study's (not 1).
        trials = study.user_attrs.get(BUDGET_ATTR, budget.get("trials", 1))
    budget["trials"] = trials
    data["budget"] = budget
    return data


def stored_spec(name: str, *, storage_url: str, trials: int | None = None) -> StudySpec:
    """Return the spec study ``name`` was run with, as stored in the database, with overrides.

    ``trials`` raises (or lowers) the budget (a runner given on resume is applied by
    :func:`taskgraph.app.studies.resumable_spec`).  Its ``budget.wall_time`` is the spec
    file's own (none when the file had none): an invocation's ``--wall-time`` is never stored.
    """
    from taskgraph.errors import option_name
    from taskgraph.spec import spec_from_dict

    data = stored_spec_data(name, storage_url=storage_url, trials=trials)
    # An error in a value given as an override names its keyword (or the command line's
    # option), not the stored spec.
    options = {"budget.trials": option_name("trials")} if trials is not None else {}
    return spec_from_dict(data, source=f"study {name!r}", options=options)
