"""Trainer throughput against a hand-written PyTorch loop, and the cost of lookahead probes.

1. ``throughput_ratio``: tokens per second of :class:`taskgraph.training.MultiTaskTrainer`
   (hard sharing, one task) divided by those of a minimal loop (forward, backward, clip, fused
   AdamW, linear schedule, zero_grad) on the same model, initial weights and batches, measured
   in the same process.  Goal: >= 0.9.
2. ``lookahead_overhead``: wall time of a joint run with lookahead probes every 10 steps divided
   by the same run without probes.  Goal: <= 1.3.

Runs alternate (A, B, A, B, ...) and each figure uses the fastest repetition, which is the
least disturbed by other load on a shared machine.  Warm-up steps are excluded (``--warmup 0``
times from before the first step); timing spans the training steps only (no data loading, no
evaluation).  On the CPU the clock is the
process's CPU time (``time.process_time``): on a machine shared with other jobs, wall time
mostly measures the neighbours; on CUDA it is wall time after ``torch.cuda.synchronize()``.

    python benchmarks/trainer_throughput.py                 # MiniLM, synthetic sentences
    python benchmarks/trainer_throughput.py --encoder tiny-bert --steps 200

The last lines are ``lookahead_overhead: X`` and ``throughput_ratio: X``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import torch
from transformers import get_linear_schedule_with_warmup

from taskgraph.cli.scripts import (
    DATA_HELP,
    ScriptParser,
    directory,
    nonnegative_int,
    positive_int,
    run_script,
)
from taskgraph.training import BatchStream, TrainerCallback, build_trainer, stable_seed
from taskgraph.training.batching import to_device
from taskgraph.trial import MixingConfig, TrialConfig

#: Below these, the first timed run still pays one-time costs (allocator, kernels' first calls,
#: the first probe's set-up) and a figure measures them: ``--steps 10 --warmup 1 --repeats 1``
#: gave a lookahead_overhead of 0.24.  Such a run still runs (a smoke test), with a warning.
MEANINGFUL = {"steps": 20, "warmup": 3, "repeats": 2}


def clock(device: torch.device) -> float:
    """Return the benchmark clock: CPU time of this process on the CPU, wall time on CUDA."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        return time.perf_counter()
    return time.process_time()


class StepClock(TrainerCallback):
    """Records the time and token count at the end of the warm-up (before the first step
    without one) and of the last step."""

    def __init__(self, *, warmup: int, last: int, device: torch.device) -> None:
        self.warmup, self.last, self.device = warmup, last, device
        self.marks: dict[int, tuple[float, int]] = {}

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.warmup == 0 and state.global_step == 0:
            self.marks[0] = (clock(self.device), state.tokens)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step in (self.warmup, self.last):
            self.marks[state.global_step] = (clock(self.device), state.tokens)

    def rate(self) -> tuple[float, float]:
        """Return (seconds, tokens per second) between the two marks."""
        (t0, k0), (t1, k1) = self.marks[self.warmup], self.marks[self.last]
        return t1 - t0, (k1 - k0) / (t1 - t0)


def make_config(args: argparse.Namespace, **overrides: Any) -> TrialConfig:
    values: dict[str, Any] = {
        "target": args.task,
        "encoder": args.encoder,
        "max_steps": args.warmup + args.steps,
        "step_budget": "total",  # throughput per optimizer step: every step counts
        "batch_size": args.batch_size,
        "learning_rate": 5e-5,
        "max_length": 128,
        "eval_every": 10**9,
        "mixing": MixingConfig(scheme="uniform"),
        "hyperparameters": {"max_eval_examples": 8, "log_every": 10**9},
    }
    values.update(overrides)
    return TrialConfig(**values)


def run_trainer(config: TrialConfig, args: argparse.Namespace) -> tuple[float, float]:
    trainer = build_trainer(config, device=args.device, data_dir=args.data)
    clock = StepClock(warmup=args.warmup, last=args.warmup + args.steps, device=trainer.device)
    trainer.handler.callbacks.append(clock)
    trainer.train()
    return clock.rate()


def run_hand_loop(config: TrialConfig, args: argparse.Namespace) -> tuple[float, float]:
    """The minimal loop, on the trainer's model and the batches the trainer would draw."""
    trainer = build_trainer(config, device=args.device, data_dir=args.data)
    model, device, task = trainer.model, trainer.device, config.target
    tensors = trainer.data[task].train
    assert tensors is not None
    # The same stream the trainer builds for its single joint phase gives the same batches.
    stream = BatchStream(
        tensors=tensors,
        batch_size=config.batch_size,
        seed=stable_seed(config.seed, "stream", "joint", task),
        group_by_length=trainer.options.group_by_length,
    )
    total = args.warmup + args.steps
    batches = [stream.next_batch() for _ in range(total)]
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, fused=True, weight_decay=0.01
    )
    scheduler = get_linear_schedule_with_warmup(optimizer, int(0.1 * total), total)
    autocast = trainer.autocast
    model.train()
    # Without warm-up the clock starts before the first step, as StepClock's does.
    start, tokens = (clock(device) if args.warmup == 0 else 0.0), 0
    for step, (batch, _, count) in enumerate(batches, start=1):
        batch = to_device(batch, device)
        with autocast():
            loss = model(task, batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if step == args.warmup:
            start = clock(device)
        elif step > args.warmup:
            tokens += count
    seconds = clock(device) - start
    return seconds, tokens / seconds


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ScriptParser(
        description=__doc__,
        epilog=(
            "Figures of runs with fewer than "
            + ", ".join(f"{v} --{k}" for k, v in MEANINGFUL.items())
            + " are not meaningful (one-time costs dominate); such a run warns on stderr."
        ),
    )
    parser.add_argument("--encoder", default="minilm", help="minilm, tiny-bert or a model dir")
    parser.add_argument("--task", default="synth_related", help="the single task of part 1")
    parser.add_argument(
        "--joint",
        default="synth_related,synth_conflict",
        help="comma-separated tasks of the lookahead comparison",
    )
    parser.add_argument("--steps", type=positive_int, default=40, help="timed steps per run")
    parser.add_argument("--warmup", type=nonnegative_int, default=5, help="untimed steps first")
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--repeats", type=positive_int, default=2, help="alternating repetitions")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument(
        "--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's)"
    )
    parser.add_argument("--data", type=directory, default=None, help=DATA_HELP)
    return parser.parse_args(argv)


def too_small(args: argparse.Namespace) -> list[str]:
    """Return the settings of ``args`` below :data:`MEANINGFUL`, as ``--name N < M``."""
    return [
        f"--{name} {getattr(args, name)} < {least}"
        for name, least in MEANINGFUL.items()
        if getattr(args, name) < least
    ]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    small = too_small(args)
    if small:
        print(
            f"warning: {', '.join(small)}: the figures below are not meaningful "
            "(one-time costs dominate them)",
            file=sys.stderr,
            flush=True,
        )
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    single = make_config(args)
    trainer_rates, hand_rates = [], []
    for _ in range(args.repeats):
        trainer_rates.append(run_trainer(single, args)[1])
        hand_rates.append(run_hand_loop(single, args)[1])
    print(
        f"device: {args.device or ('cuda' if torch.cuda.is_available() else 'cpu')}, "
        f"threads: {torch.get_num_threads()}, encoder: {args.encoder}"
    )
    print(
        f"trainer_tokens_per_s: {max(trainer_rates):.1f}  (runs: "
        f"{', '.join(f'{r:.1f}' for r in trainer_rates)})"
    )
    print(
        f"hand_loop_tokens_per_s: {max(hand_rates):.1f}  (runs: "
        f"{', '.join(f'{r:.1f}' for r in hand_rates)})"
    )

    tasks = args.joint.split(",")
    joint = make_config(args, target=tasks[0], auxiliaries=tuple(tasks[1:]))
    probed = make_config(args, target=tasks[0], auxiliaries=tuple(tasks[1:]), lookahead_every=10)
    plain_times, probed_times = [], []
    for _ in range(args.repeats):
        plain_times.append(run_trainer(joint, args)[0])
        probed_times.append(run_trainer(probed, args)[0])
    print(
        f"joint_seconds: {min(plain_times):.2f}  with_lookahead_seconds: {min(probed_times):.2f}"
        f"  ({len(tasks)} tasks, probes every 10 of {args.steps} timed steps)"
    )
    print(f"lookahead_overhead: {min(probed_times) / min(plain_times):.3f}")
    print(f"throughput_ratio: {max(trainer_rates) / max(hand_rates):.3f}")


if __name__ == "__main__":
    raise SystemExit(run_script(main))
