"""``python -m taskgraph.cli.fakes ARGS...``: the command line with test runners.

``tabular`` answers from its table after ``TASKGRAPH_TEST_TRIAL_S`` seconds per trial (default
0), so that a fault lands between trials and inside them; ``ray`` trains with
:func:`taskgraph.testing.fake_evaluator_factory` in its workers.  The fault tests and
``benchmarks/fault_injection.py`` run their studies with it.  It lives in the command-line
layer because it runs the CLI (as :mod:`taskgraph.cli.crashpoints` does).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from taskgraph.registry import RUNNERS
from taskgraph.runners.builtin import RayRunner, TabularRunner
from taskgraph.testing import TRIAL_SECONDS_ENV, PacedEvaluator, fake_evaluator_factory

__all__ = ["main"]


class PacedTabularRunner(TabularRunner):
    """The ``tabular`` runner, taking ``seconds`` per trial."""

    def __init__(self, *, seconds: float) -> None:
        self.seconds = seconds

    def build_evaluator(self, spec: Any, *, data_dir: Any = None) -> Any:
        inner = super().build_evaluator(spec, data_dir=data_dir)
        return PacedEvaluator(inner=inner, seconds=self.seconds)


def main(argv: Sequence[str] | None = None) -> None:
    """Register the test runners, then run ``taskgraph ARGS...``."""
    seconds = float(os.environ.get(TRIAL_SECONDS_ENV) or 0)
    RUNNERS.unregister("tabular")
    RUNNERS.register("tabular", PacedTabularRunner(seconds=seconds))
    RUNNERS.unregister("ray")
    RUNNERS.register("ray", RayRunner(evaluator_factory=fake_evaluator_factory))
    from taskgraph.cli.app import main as cli_main

    sys.argv = ["taskgraph", *(sys.argv[1:] if argv is None else argv)]
    cli_main()


if __name__ == "__main__":
    main()
