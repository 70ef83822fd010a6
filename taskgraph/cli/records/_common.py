"""What the ``taskgraph records`` commands share: the options that filter runs (``--study``,
``--target``, ``--task-set``, ...) and how an empty result says that no run matched them."""

from __future__ import annotations

from typing import Annotated

import typer

StudyOption = Annotated[str | None, typer.Option("--study", help="Only runs of this study.")]
TargetOption = Annotated[
    str | None,
    typer.Option(
        "--target",
        help="Only runs whose target task is this one (with --format long: every score of "
        "those runs, their auxiliaries' included).",
    ),
]
TaskSetOption = Annotated[
    str | None,
    typer.Option(
        "--task-set", help="Only runs on exactly this task set, e.g. 'ner+pos' (any order)."
    ),
]
ContainsOption = Annotated[
    str | None, typer.Option("--contains", help="Only runs whose task set contains this task.")
]
StatusOption = Annotated[
    str | None,
    typer.Option("--status", help="Only runs with this status: complete, pruned or failed."),
]
ModelOption = Annotated[
    str | None,
    typer.Option("--model-config", help="Only runs of this model configuration (hash or prefix)."),
]

SelectionOption = Annotated[
    str | None,
    typer.Option(
        "--selection",
        help="Only runs with example-level data selection on, or off (on, off).",
    ),
]

PretrainingOption = Annotated[
    str | None,
    typer.Option(
        "--pretraining",
        help="Only runs with this pretraining scheme (random, adaptive; none: without the stage); "
        "a scheme no run used is refused, listing the runs' schemes.",
    ),
]

FamilyOption = Annotated[
    str | None,
    typer.Option(
        "--family",
        help="Only the scores of this model family (its hash or a prefix, as `records show` and "
        "the export's family column give it, or as the long format's error on a task set of "
        "several families lists them; HASH/data:VERSION: of that family measured on that data "
        "version, the export's data_version column): export writes the rows of that family "
        "(json: each "
        "run's scores of it), list the runs with a score of it; a prefix that none of the "
        "runs the other filters pick has is refused, listing their families.",
    ),
]

#: what `records list` and `records export` say on stderr when known names match no run
NO_MATCH = "no run matches these filters"


def _filtered(*filters: object) -> bool:
    """Return whether any filter was given (an empty result then says that none matched)."""
    return any(value is not None for value in filters)
