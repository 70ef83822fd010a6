"""The live bar's `done/total` counts trials that have ended, not a running trial at its last
step (its final evaluation is still to come): the audit saw `2/2 trials` while trial 1 ran."""

from __future__ import annotations

import re
from types import SimpleNamespace

from taskgraph.cli.study import _ProgressObserver


def _count(observer: _ProgressObserver) -> str:
    task = observer.progress.tasks[0]
    shown = [str(column.render(task)) for column in observer.progress.columns[1:]]
    [count] = [text for text in shown if re.fullmatch(r"\d+/\d+", text)]
    return count


def test_a_trial_at_its_last_step_is_not_counted_done() -> None:
    observer = _ProgressObserver(name="demo", quiet=True, budget=2)
    progress = SimpleNamespace(budget=2, n_done=1, best_value=0.5)
    observer.open(progress)
    config = SimpleNamespace(
        auxiliaries=("pos",), sharing="hard", pretraining=None, data_selection=None
    )
    observer.observer.on_trial_start(1, config)
    step = SimpleNamespace(
        fraction=1.0, step=13, max_steps=13, n_phases=1, phase_index=0, n_seeds=1,
        seed_index=0, objective=0.5,
    )  # fmt: skip
    observer.step(1, step)
    assert observer.progress.tasks[0].completed == 2.0  # the bar is full: its steps are done
    assert _count(observer) == "1/2"  # but the trial has not ended
    observer.observer.on_trial_end(1, SimpleNamespace(value=0.6, last_intermediate=None,
        failure_reason=None, status=SimpleNamespace(value="complete")),
        SimpleNamespace(budget=2, n_done=2, best_value=0.6))  # fmt: skip
    assert _count(observer) == "2/2"
