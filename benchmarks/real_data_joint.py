"""Real data on the CPU: MiniLM trained jointly on Turkish NER, UPOS and dependency parsing,
once per sharing architecture; prints the scores reached and the time taken.

Target ``tr_ner_tur2003`` (entity F1), auxiliaries ``ud_tr_imst_upos`` (accuracy) and
``ud_tr_imst_deps`` (UAS/LAS), each subsampled to ``--max-examples`` training sentences (a
fixed random subset) and evaluated on ``--eval-examples`` dev sentences; uniform task sampling,
equal loss weighting, AdamW with linear warmup/decay.  It reproduces the table in
docs/training.md:

    python benchmarks/real_data_joint.py --data ../shared/data --threads 1
    python benchmarks/real_data_joint.py --architectures hard,soft --steps 100

Ends with one ``<architecture>_ner_f1: X`` line per architecture.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from taskgraph.cli.scripts import (
    DATA_HELP,
    ScriptParser,
    directory,
    int_range,
    json_file,
    nonnegative_int,
    positive_float,
    positive_int,
    run_script,
)
from taskgraph.models import SHARING_ARCHITECTURES
from taskgraph.training import train_trial
from taskgraph.training.runtime import resolve_threads
from taskgraph.trial import MixingConfig, TrialConfig, TrialStatus

TARGET = "tr_ner_tur2003"
AUXILIARIES = ("ud_tr_imst_upos", "ud_tr_imst_deps")
#: The longest ``--max-length`` (the spec's ``encoder.max_length`` bound; MiniLM reads 512).
MAX_LENGTH = 512


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ScriptParser(description=__doc__)
    parser.add_argument(
        "--architectures",
        default=",".join(SHARING_ARCHITECTURES.names()),
        help="comma-separated sharing architectures (default: all registered)",
    )
    parser.add_argument("--steps", type=positive_int, default=300, help="training steps per run")
    parser.add_argument("--batch-size", type=positive_int, default=16)
    parser.add_argument("--learning-rate", type=positive_float, default=1e-4)
    parser.add_argument(
        "--max-length", type=int_range(8, MAX_LENGTH), default=128, help="tokens per sentence"
    )
    parser.add_argument(
        "--max-examples", type=positive_int, default=2000, help="training cap per task"
    )
    parser.add_argument("--eval-examples", type=positive_int, default=300, help="dev cap per task")
    parser.add_argument("--seed", type=nonnegative_int, default=0)
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="torch CPU threads (default: the cores this process may use)",
    )
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--data", type=directory, default=None, help=DATA_HELP)
    parser.add_argument(
        "--json", type=json_file, default=None, help="also write the rows to this JSON file"
    )
    args = parser.parse_args(argv)
    names = [a for a in args.architectures.split(",") if a]
    unknown = sorted(set(names) - set(SHARING_ARCHITECTURES.names()))
    if unknown:
        parser.error(
            f"--architectures: unknown {unknown}; choose from "
            f"{', '.join(SHARING_ARCHITECTURES.names())}"
        )
    if not names:
        parser.error(
            f"--architectures names none; choose from {', '.join(SHARING_ARCHITECTURES.names())}"
        )
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    names = [a for a in args.architectures.split(",") if a]
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    caps = {task: args.max_examples for task in (TARGET, *AUXILIARIES)}
    rows = []
    for architecture in names:
        config = TrialConfig(
            target=TARGET,
            auxiliaries=AUXILIARIES,
            encoder="minilm",
            sharing=architecture,
            max_steps=args.steps,
            step_budget="total",  # architectures compared at equal total steps, as measured
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            max_length=args.max_length,
            seed=args.seed,
            eval_every=args.steps,
            mixing=MixingConfig(scheme="uniform", max_examples=caps),
            hyperparameters={"max_eval_examples": args.eval_examples, "log_every": 50},
        )
        started = time.perf_counter()
        cpu_started = time.process_time()
        result = train_trial(
            config, data_dir=args.data, device=args.device, threads=args.threads, progress=True
        )
        row = {
            "architecture": architecture,
            "status": result.status.value,
            "ner_f1": result.score(TARGET, "dev", "f1"),
            "upos_accuracy": result.score("ud_tr_imst_upos", "dev", "accuracy"),
            "uas": result.score("ud_tr_imst_deps", "dev", "uas"),
            "las": result.score("ud_tr_imst_deps", "dev", "las"),
            "seconds": round(time.perf_counter() - started, 1),
            "cpu_seconds": round(time.process_time() - cpu_started, 1),
            "tokens": result.cost.tokens,
            "device": result.cost.device,
            "failure": result.failure_reason,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        if result.status is not TrialStatus.COMPLETE:
            print(f"{architecture}: {result.failure_reason}", flush=True)
    print()
    print("| architecture | NER F1 | UPOS acc | UAS | LAS | wall s | CPU s |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        cells = [_fmt(row[k]) for k in ("ner_f1", "upos_accuracy", "uas", "las")]
        print(
            f"| {row['architecture']} | {' | '.join(cells)} | {row['seconds']} | "
            f"{row['cpu_seconds']} |"
        )
    for row in rows:
        print(f"{row['architecture']}_ner_f1: {_fmt(row['ner_f1'])}", flush=True)
    if args.json:  # after the summary lines: a file that cannot be written loses nothing
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(
                {"args": vars(args), "threads": resolve_threads(args.threads), "rows": rows},
                handle,
                indent=1,
            )
    failed = [row["architecture"] for row in rows if row["status"] != "complete"]
    if failed:  # a failed run has no score: say which, and fail
        raise SystemExit(f"error: the runs of {', '.join(failed)} failed (reasons above)")


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    raise SystemExit(run_script(main))
