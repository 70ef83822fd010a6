"""``taskgraph study``: validate, run, submit, resume and inspect studies.

Every command that touches the database takes ``--storage URL``; the URL comes from that
option, else ``TASKGRAPH_STORAGE``, else the spec's ``storage`` field, else
``sqlite:///taskgraph.db``.

One module per command (or per few that belong together): :mod:`.validate`, :mod:`.run`
(``run`` and ``resume``, with their live display in :mod:`.progress`), :mod:`.manage`
(``status``, ``list``, ``delete``), :mod:`.show`, :mod:`.screen` and :mod:`.submit`; what they
share (options, ``--set``, the database URL) is in :mod:`._common`.  This module builds the
group and registers the commands in the order ``taskgraph study --help`` lists them.
"""

from __future__ import annotations

import typer

from taskgraph.cli.study import manage, run, screen, show, submit, validate

# Re-exported for the callers that import them from here (tests, benchmarks/trial_cost.py).
# A test that patches one must patch the module that uses it, e.g. taskgraph.cli.study.run._run.
from taskgraph.cli.study._common import _load_checked as _load_checked
from taskgraph.cli.study.progress import _ProgressObserver as _ProgressObserver
from taskgraph.cli.study.show import _pretraining_of as _pretraining_of

app = typer.Typer(
    rich_markup_mode="markdown",
    add_completion=False,
    help="Validate, run, submit, resume and inspect studies.",
    no_args_is_help=True,
)

app.command("validate")(validate.validate)
app.command("run")(run.run)
app.command("resume")(run.resume)
app.command("status")(manage.status)
app.command("list")(manage.list_studies)
app.command("delete")(manage.delete)
app.command("show")(show.show)
app.command("screen")(screen.screen)
app.command("submit")(submit.submit)

__all__ = ["app"]
