"""Frozen bottom layers against full fine-tuning: the score and the cost of each (issue 14).

``benchmarks/trial_cost.py`` measures what ``freeze_layers`` saves per step, at budgets too
short to compare scores.  This script trains the same trial both ways at the budget of the
quick NCBI-disease study (``searchspaces/quick/bioner_aux.yaml``'s baseline: MiniLM,
max_length 64, 300 training sentences, 200 steps of batch 16, learning rate 1e-4, dev F1 on
200 sentences every 25 steps; the best evaluation's weights are scored), for several seeds,
alternating the two options so that a change of load on a shared machine hits both alike.

Prints one line per run, then per option the mean dev F1 with its standard error over seeds
and the mean seconds per training step, and ends with::

    full_score: X
    frozen_score: X
    score_difference: X +- SE      (frozen - full, paired by seed)
    frozen_step_speedup: X         (full step seconds / frozen step seconds, this run)

    nohup python benchmarks/freeze_scores.py --seeds 3 > freeze_scores.log 2>&1 &
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from typing import Any

from taskgraph.cli.scripts import (
    DATA_HELP,
    ScriptParser,
    check_freeze,
    directory,
    int_range,
    positive_float,
    positive_int,
    run_script,
)

#: The fewest ``--steps``: a step's time is the gap between two step ends, and the figures are
#: medians of those gaps (``--steps 1`` has none: a median step of nan).
MIN_STEPS = 2


def trial_config(args: argparse.Namespace, *, seed: int, freeze: int) -> Any:
    from taskgraph.trial import MixingConfig, Objective, TrialConfig

    return TrialConfig(
        target=args.target,
        encoder="minilm",
        sharing="hard",
        mixing=MixingConfig(scheme="proportional", max_examples={args.target: args.train}),
        learning_rate=args.lr,
        max_steps=args.steps,
        batch_size=16,
        max_length=64,
        seed=seed,
        objective=Objective(metric="f1", split="dev", direction="maximize"),
        eval_every=args.eval_every,
        hyperparameters={"max_eval_examples": args.eval, "freeze_layers": freeze},
    )


def mean_se(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return mean, se


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ScriptParser(description=__doc__)
    parser.add_argument("--target", default="ncbi_disease", help="a catalog task")
    parser.add_argument(
        "--freeze",
        type=positive_int,
        default=4,
        help="frozen bottom layers (1 to MiniLM's 6), compared with 0 (full fine-tuning)",
    )
    parser.add_argument("--seeds", type=positive_int, default=3)
    parser.add_argument(
        "--steps",
        type=int_range(MIN_STEPS),
        default=200,
        help=f"training steps (at least {MIN_STEPS}: the step time is a median of step gaps)",
    )
    parser.add_argument("--eval-every", type=positive_int, default=25)
    parser.add_argument("--train", type=positive_int, default=300, help="training sentences")
    parser.add_argument("--eval", type=positive_int, default=200, help="dev sentences")
    parser.add_argument("--lr", type=positive_float, default=1e-4)
    parser.add_argument("--threads", type=positive_int, default=1)
    parser.add_argument("--data", type=directory, default=None, help=DATA_HELP)
    args = parser.parse_args(argv)
    # Both found only after a full trial otherwise: checked here, before any training.
    from taskgraph.errors import TaskgraphError
    from taskgraph.tasks import get_task

    try:
        get_task(args.target)
    except TaskgraphError as error:
        parser.error(f"--target: {error}")
    check_freeze(parser, "--freeze", args.freeze, "minilm")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from taskgraph.training import TrainerCallback, train_trial

    class StepClock(TrainerCallback):
        """Seconds between consecutive step ends (the median leaves out the evaluations)."""

        def __init__(self) -> None:
            self.times: list[float] = []
            self._last: float | None = None

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            now = time.perf_counter()
            if self._last is not None:
                self.times.append(now - self._last)
            self._last = now

    print(
        f"scale: MiniLM, {args.target}, {args.train} training sentences, max_length 64, "
        f"{args.steps} steps of batch 16, lr {args.lr:g}, dev F1 on {args.eval} sentences every "
        f"{args.eval_every} steps, {args.seeds} seeds, {args.threads} thread(s), "
        f"freeze_layers {args.freeze} vs 0; load average at start {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    scores: dict[int, list[float]] = {0: [], args.freeze: []}
    steps: dict[int, list[float]] = {0: [], args.freeze: []}
    for seed in range(args.seeds):
        order = (0, args.freeze) if seed % 2 == 0 else (args.freeze, 0)
        for freeze in order:
            clock = StepClock()
            started = time.perf_counter()
            result = train_trial(
                trial_config(args, seed=seed, freeze=freeze),
                callbacks=[clock],
                threads=args.threads,
                data_dir=args.data,
            )
            wall = time.perf_counter() - started
            if result.objective is None:
                raise SystemExit(f"seed {seed} freeze {freeze}: {result.failure_reason}")
            scores[freeze].append(float(result.objective))
            step = statistics.median(clock.times) if clock.times else float("nan")
            steps[freeze].append(step)
            print(
                f"seed {seed} freeze_layers {freeze}: dev F1 {result.objective:.4f} "
                f"(best at step {max(result.intermediate, key=lambda p: p[1])[0]}), "
                f"median step {step:.3f} s, trial {wall:.0f} s, "
                f"load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    full_mean, full_se = mean_se(scores[0])
    frozen_mean, frozen_se = mean_se(scores[args.freeze])
    diff_mean, diff_se = mean_se(
        [f - u for f, u in zip(scores[args.freeze], scores[0], strict=True)]
    )
    full_step = statistics.fmean(steps[0])
    frozen_step = statistics.fmean(steps[args.freeze])
    print(f"full fine-tuning: dev F1 {full_mean:.4f} +- {full_se:.4f}, {full_step:.3f} s/step")
    print(
        f"freeze_layers {args.freeze}: dev F1 {frozen_mean:.4f} +- {frozen_se:.4f}, "
        f"{frozen_step:.3f} s/step"
    )
    print(f"full_score: {full_mean:.4f}")
    print(f"frozen_score: {frozen_mean:.4f}")
    print(f"score_difference: {diff_mean:+.4f} +- {diff_se:.4f}")
    print(f"frozen_step_speedup: {full_step / frozen_step:.2f}")


if __name__ == "__main__":
    raise SystemExit(run_script(main))
