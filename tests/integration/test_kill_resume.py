"""kill -9 `taskgraph study run` midway, `taskgraph study resume`: the study ends with exactly
its budget of trials, the interrupted trial is failed and retried, and no record is duplicated."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path
from types import ModuleType

import optuna
import pytest

from taskgraph.search.progress import trial_state
from taskgraph.storage import open_repository

pytestmark = pytest.mark.slow

BUDGET = 5
SPEC = f"""\
name: killed
target: synth_target
candidates: [synth_related, synth_conflict, synth_unrelated]
encoder: {{name: tiny-bert, max_length: 32}}
search:
  learning_rate: {{low: 5.0e-4, high: 3.0e-3, log: true}}
  # Every task's steps count (not the target's alone, the default): a trial with an auxiliary
  # 100x the target's size then takes seconds, not a minute, and is still long enough to be
  # stopped mid-training.
  step_budget: total
  max_steps: 250
  batch_size: 16
training:
  eval_every: 4
  hyperparameters: {{max_eval_examples: 50}}
budget: {{trials: {BUDGET}}}
sampler: {{name: random, seed: 0}}
recovery: {{heartbeat_interval: 1, grace_period: 3}}
"""


def training_trials(db: Path) -> int:
    """Return how many RUNNING trials have started training (their configuration is stored)."""
    with sqlite3.connect(db, timeout=30) as connection:
        try:
            rows = connection.execute(
                "SELECT COUNT(*) FROM trials t JOIN trial_user_attributes a "
                "ON a.trial_id = t.trial_id WHERE t.state = 'RUNNING' AND a.key = 'taskgraph:config'"
            ).fetchall()
        except sqlite3.OperationalError:
            return 0
    return int(rows[0][0])


def states(db: Path) -> Counter[str]:
    with sqlite3.connect(db, timeout=30) as connection:
        try:
            rows = connection.execute("SELECT state FROM trials").fetchall()
        except sqlite3.OperationalError:  # tables not created yet
            return Counter()
    return Counter(state for (state,) in rows)


def start_and_stop(tmp_path: Path, cli: ModuleType, sig: signal.Signals) -> tuple[str, str, int]:
    """Start `taskgraph study run`, send ``sig`` while its third trial trains; return
    (storage URL, stderr, exit code)."""
    spec = tmp_path / "killed.yaml"
    spec.write_text(SPEC)
    db = tmp_path / "study.db"
    storage = f"sqlite:///{db}"
    process = subprocess.Popen(
        [str(cli.TASKGRAPH), "study", "run", str(spec), "--storage", storage, "--quiet"],
        env=cli.cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: a background parent may have SIGINT ignored, which children inherit.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 300
        # Stop it while a trial is training, after at least two have finished.
        while time.monotonic() < deadline:
            counts = states(db)
            finished = counts["COMPLETE"] + counts["PRUNED"]
            if finished >= 2 and counts["RUNNING"] == 1 and training_trials(db) == 1:
                break
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            time.sleep(0.2)
        else:
            pytest.fail(f"the study never reached a running third trial: {states(db)}")
        os.kill(process.pid, sig)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    return storage, stderr, process.returncode


def test_kill_9_then_resume_finishes_the_budget_exactly(tmp_path: Path, cli: ModuleType) -> None:
    storage, _, code = start_and_stop(tmp_path, cli, signal.SIGKILL)
    assert code == -signal.SIGKILL
    killed_at = states(tmp_path / "study.db")
    assert killed_at["RUNNING"] == 1 and sum(killed_at.values()) < BUDGET + 1

    done = cli.taskgraph("study", "resume", "killed", "--storage", storage, "--json", "--quiet")
    assert '"stopped_because": "budget"' in done.stdout
    assert_budget_exactly(storage)


@pytest.mark.parametrize(
    ("sig", "code_expected", "said"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated (SIGTERM)")],
    ids=["ctrl-c", "sigterm"],
)
def test_ctrl_c_or_sigterm_prints_the_resume_command_and_resume_finishes(
    tmp_path: Path, cli: ModuleType, sig: signal.Signals, code_expected: int, said: str
) -> None:
    # SIGTERM is how a background driver (`nohup ... &`, SIGINT ignored) is stopped: it takes
    # Ctrl-C's path, not kill -9's.
    storage, stderr, code = start_and_stop(tmp_path, cli, sig)
    assert code == code_expected, stderr
    assert f"{said}: the study is saved" in stderr
    assert f"`taskgraph study resume killed --storage {storage}`" in stderr
    stopped_at = states(tmp_path / "study.db")
    # Ctrl-C fails the running trial at once and queues its retry: nothing waits to go stale.
    assert stopped_at["RUNNING"] == 0 and stopped_at["FAIL"] == 1 and stopped_at["WAITING"] == 1
    done = cli.taskgraph("study", "resume", "killed", "--storage", storage, "--json", "--quiet")
    assert '"stopped_because": "budget"' in done.stdout
    assert_budget_exactly(storage)


def assert_budget_exactly(storage: str) -> None:
    study = optuna.load_study(study_name="killed", storage=storage)
    counted = [t for t in study.trials if trial_state(t) in ("complete", "pruned", "failed")]
    interrupted = [t for t in study.trials if trial_state(t) == "interrupted"]
    assert len(counted) == BUDGET
    assert len(interrupted) == 1
    retries = [
        t for t in study.trials if t.system_attrs.get("failed_trial") == interrupted[0].number
    ]
    assert len(retries) == 1 and retries[0].params == interrupted[0].params
    assert not [t for t in study.trials if t.state.name in ("RUNNING", "WAITING")]

    with open_repository(storage) as repo:
        runs = repo.runs(study="killed")
    keys = Counter((r.trial_number, r.seed) for r in runs)
    assert max(keys.values()) == 1  # no duplicate record
    assert {r.trial_number for r in runs} == {t.number for t in counted}  # none lost
    assert interrupted[0].number not in {r.trial_number for r in runs}
