"""Masked-LM pretraining schemes compared at an equal token budget, then fine-tuned on SQuAD 2.0.

The same encoder (all-MiniLM-L6-v2), the same corpus (the text of the ``squad2`` task's train
split: its Wikipedia contexts, each once, and its questions, cut into windows of
``--max-length`` word pieces, a fixed random ``--corpus-cap`` of them) and the same budget
(``--steps`` steps of ``--batch-size`` windows, 15 % of their tokens masked) under each
scheme; then the usual fine-tuning on ``squad2`` (``--train-cap`` training questions, a fixed
random subset; ``--finetune-steps`` steps) and scoring on ``--eval-cap`` dev questions (a fixed
random subset; SQuAD v2 F1, unanswerable questions included).  ``squad2`` is carved
deterministically from ``squad2_dev_half`` by article (docs/tasks.md), so the corpus holds no
dev or test article.  Seeds vary the masks, the batch order and the fine-tuning.

    python benchmarks/masking_bench.py --data ../shared/data            # the README's scale
    python benchmarks/masking_bench.py --quick                          # smoke test, minutes

Every trial runs its pretraining (the pretraining cache is off here, so seconds are real).
Prints a table (mean and 95 % t-interval over seeds of the dev F1, the stage's seconds and
tokens and the final held-out masked-token accuracy; the paired adaptive - random difference)
and ends with the lines ``random_score: X``, ``adaptive_score: X``, ``random_seconds: X``,
``adaptive_seconds: X`` (seconds: the pretraining stage's mean wall-clock seconds).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["TASKGRAPH_PRETRAIN_CACHE"] = "off"

import torch

from taskgraph.cli.scripts import (
    DATA_HELP,
    ScriptParser,
    directory,
    json_file,
    positive_float,
    positive_int,
    run_script,
)
from taskgraph.errors import ConfigError, TaskgraphError
from taskgraph.training import train_trial
from taskgraph.training.masking import MASKING_SCHEMES, build_masking
from taskgraph.trial import MixingConfig, PretrainingConfig, TrialConfig, TrialStatus

TARGET = "squad2"
# Two-sided 95 % Student t quantiles by degrees of freedom.
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def interval(values: list[float]) -> tuple[float, float]:
    """Return (mean, half-width of the 95 % t-interval; 0 for one value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 0.0
    t = _T95.get(len(values) - 1, 1.96)
    return mean, t * statistics.stdev(values) / math.sqrt(len(values))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ScriptParser(description=__doc__)
    parser.add_argument(
        "--schemes", default="random,adaptive", help="comma-separated; `none` adds no pretraining"
    )
    parser.add_argument("--steps", type=positive_int, default=100, help="pretraining steps")
    parser.add_argument("--finetune-steps", type=positive_int, default=100)
    parser.add_argument("--batch-size", type=positive_int, default=16)
    parser.add_argument("--pretrain-lr", type=positive_float, default=1e-4)
    parser.add_argument("--learning-rate", type=positive_float, default=1e-4, help="fine-tuning")
    parser.add_argument(
        "--max-length", type=positive_int, default=128, help="fine-tuning input length"
    )
    parser.add_argument(
        "--pretrain-max-length", type=positive_int, default=64, help="pretraining window length"
    )
    parser.add_argument("--corpus-cap", type=positive_int, default=2000, help="pretraining windows")
    parser.add_argument(
        "--train-cap", type=positive_int, default=400, help="squad2 training questions"
    )
    parser.add_argument("--eval-cap", type=positive_int, default=200, help="squad2 dev questions")
    parser.add_argument("--seeds", type=positive_int, default=3)
    parser.add_argument("--options", default="{}", help="adaptive options as JSON")
    parser.add_argument("--threads", type=positive_int, default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--data", type=directory, default=None, help=DATA_HELP)
    parser.add_argument(
        "--json", type=json_file, default=None, help="also write every run to this JSON file"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke test: tiny scale")
    args = parser.parse_args(argv)
    if args.quick:  # the smoke sizes are defaults: a size given on the command line still wins
        parser.set_defaults(
            steps=6,
            finetune_steps=6,
            corpus_cap=80,
            train_cap=24,
            eval_cap=16,
            seeds=2,
            max_length=64,
            pretrain_max_length=32,
        )
        args = parser.parse_args(argv)
    # Checked now, not when the first trial of an unknown scheme fails after loading MiniLM.
    known = ["none", *MASKING_SCHEMES.names()]
    schemes = [s.strip() for s in args.schemes.split(",") if s.strip()]
    if not schemes:
        parser.error(f"--schemes names no scheme; known: {', '.join(known)}")
    unknown = [s for s in schemes if s not in known]
    if unknown:
        parser.error(f"--schemes: unknown {unknown}; known: {', '.join(known)}")
    try:
        args.adaptive_options = json.loads(args.options)
    except json.JSONDecodeError as error:
        parser.error(f"--options: not JSON ({error})")
    if not isinstance(args.adaptive_options, dict):
        parser.error("--options: expected a JSON object, e.g. '{\"q_start\": 0.2}'")
    try:
        build_masking("adaptive", args.adaptive_options)
    except (TaskgraphError, TypeError) as error:
        parser.error(f"--options: {error}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    adaptive_options = args.adaptive_options
    schemes = [s.strip() for s in args.schemes.split(",") if s.strip()]
    print(
        f"scale: pretraining {args.steps} steps x {args.batch_size} windows of <= "
        f"{args.pretrain_max_length} tokens (corpus: squad2 train text, {args.corpus_cap} windows); "
        f"fine-tuning {args.finetune_steps} steps x {args.batch_size} on {args.train_cap} "
        f"squad2 train questions; dev F1 on {args.eval_cap} questions; seeds 0..{args.seeds - 1}",
        flush=True,
    )
    runs: list[dict[str, Any]] = []
    for seed in range(args.seeds):
        for scheme in schemes:
            pretraining = None
            if scheme != "none":
                pretraining = PretrainingConfig(
                    scheme=scheme,
                    steps=args.steps,
                    corpus=(TARGET,),
                    learning_rate=args.pretrain_lr,
                    batch_size=args.batch_size,
                    max_length=args.pretrain_max_length,
                    max_sequences=args.corpus_cap,
                    options=adaptive_options if scheme == "adaptive" else {},
                )
            config = TrialConfig(
                target=TARGET,
                encoder="minilm",
                pretraining=pretraining,
                learning_rate=args.learning_rate,
                max_steps=args.finetune_steps,
                eval_every=args.finetune_steps,
                batch_size=args.batch_size,
                max_length=args.max_length,
                seed=seed,
                mixing=MixingConfig(max_examples={TARGET: args.train_cap}),
                hyperparameters={"max_eval_examples": args.eval_cap},
            )
            start = time.perf_counter()
            result = train_trial(
                config, data_dir=args.data, device=args.device, threads=args.threads
            )
            wall = time.perf_counter() - start
            if result.status is not TrialStatus.COMPLETE:
                raise SystemExit(
                    f"{scheme} seed {seed}: {result.status.value}: {result.failure_reason}"
                )
            report = result.pretraining or {}
            curve = report.get("curve", [])
            row = {
                "scheme": scheme,
                "seed": seed,
                "f1": result.score(TARGET, "dev", "f1"),
                "exact": result.score(TARGET, "dev", "exact"),
                "pretrain_seconds": float(report.get("seconds", 0.0)),
                "pretrain_tokens": int(report.get("tokens", 0)),
                "masked_tokens": int(report.get("masked_tokens", 0)),
                "final_mlm_accuracy": curve[-1][1] if curve else None,
                "curve": curve,
                "trial_seconds": round(wall, 1),
            }
            runs.append(row)
            print(
                f"{scheme:9s} seed {seed}: dev F1 {row['f1']:.4f}  pretraining "
                f"{row['pretrain_seconds']:.0f} s, {row['pretrain_tokens']} tokens, MLM acc "
                f"{row['final_mlm_accuracy']}  trial {wall:.0f} s",
                flush=True,
            )
    summary: dict[str, dict[str, float]] = {}
    print(
        f"\n{'scheme':9s} {'dev F1 (95% CI)':>22s} {'pretrain s':>16s} {'tokens':>9s} {'MLM acc':>8s}"
    )
    for scheme in schemes:
        rows = [r for r in runs if r["scheme"] == scheme]
        f1, f1_ci = interval([float(r["f1"]) for r in rows])
        sec, sec_ci = interval([r["pretrain_seconds"] for r in rows])
        tokens = statistics.fmean(r["pretrain_tokens"] for r in rows)
        accs = [r["final_mlm_accuracy"] for r in rows if r["final_mlm_accuracy"] is not None]
        acc = statistics.fmean(accs) if accs else float("nan")
        summary[scheme] = {"score": f1, "seconds": sec}
        print(
            f"{scheme:9s} {f1:10.4f} ± {f1_ci:.4f}     {sec:8.1f} ± {sec_ci:5.1f} "
            f"{tokens:9.0f} {acc:8.4f}"
        )
    if "random" in schemes and "adaptive" in schemes:
        diffs = [
            float(a["f1"]) - float(r["f1"])
            for a in runs
            if a["scheme"] == "adaptive"
            for r in runs
            if r["scheme"] == "random" and r["seed"] == a["seed"]
        ]
        mean, ci = interval(diffs)
        verdict = (
            "within noise"
            if abs(mean) <= ci
            else ("adaptive better" if mean > 0 else "random better")
        )
        print(f"paired adaptive - random dev F1: {mean:+.4f} ± {ci:.4f} ({verdict})")
    for scheme in ("random", "adaptive"):
        if scheme in summary:
            print(f"{scheme}_score: {summary[scheme]['score']:.4f}")
    for scheme in ("random", "adaptive"):
        if scheme in summary:
            print(f"{scheme}_seconds: {summary[scheme]['seconds']:.1f}")
    if args.json:  # after the summary: a file that cannot be written loses no result
        try:
            with open(args.json, "w", encoding="utf-8") as out:
                json.dump({"args": vars(args), "runs": runs}, out, indent=1)
        except OSError as error:
            raise ConfigError(f"--json: cannot write {args.json}: {error.strerror}") from None


if __name__ == "__main__":
    raise SystemExit(run_script(main))
