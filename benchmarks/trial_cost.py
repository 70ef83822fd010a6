"""What one real-data trial costs, phase by phase (issue 14).

Runs a study through the same code path as ``taskgraph study run`` (spec loading and checks,
the study engine with the local runner, Optuna, the records database on SQLite), with every
phase timed in this process:

imports · spec loading and checks · data reading · tokenization and features · model
construction and weight loading · frozen-layer outputs · training steps · evaluation ·
checkpoints · records write · search overhead (the engine's ask/tell between trials).

Configurations (``--config``):

* ``short``: ``searchspaces/bioner_aux.yaml`` shrunk as in issue 14: MiniLM, max_length 64,
  60 steps of batch 16, the target (NCBI-disease) capped at 400 training sentences and each of
  two auxiliaries (BC5CDR-disease, JNLPBA) at 300, evaluation on 150 dev sentences, hard
  sharing, proportional mixing, equal loss weights, learning rate 1e-4.
* ``tr_ner``: the shipped ``searchspaces/tr_ner_aux.yaml`` baseline (Turkish NER alone, 1500
  training sentences, max_length 96, 300 dev sentences, hard sharing, learning rate 5e-5);
  ``--steps`` shrinks its 300 steps.

Steps are total steps over all the tasks (``step_budget="total"``, as the README's table was
measured), not the library's default of target steps, which would train ``short`` about 2.5
times as many.

The study runs two trials of the same task set: trial 0 fine-tunes every layer, trial 1 the
same with ``freeze_layers=K`` (``--freeze``), so ``frozen_step_speedup`` is a ratio of mean
step times measured minutes apart in one process.  (The search space's ``suggest`` returns this
fixed configuration instead of a sampled one; the engine, records and Optuna run as in a study.)
Before the measured process, a child process tokenizes the data once so the disk feature cache
is warm (``--cold`` skips that and clears the feature and frozen-output caches: the numbers of
a first run).

Prints ``setup_s`` (process start to the first training step: imports, checks, study setup,
data and features, model) and ``train_share`` (training steps / whole process), for trial 0;
with ``--freeze`` (default 4) then ``frozen_step_speedup``, ``frozen_score`` and
``full_score``.  A failed trial is one ``error:`` line with its reason.  ``--config short``
takes a few minutes on 2 CPU cores.

    nohup nice python benchmarks/trial_cost.py --config short --threads 1 > short.log 2>&1 &
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from taskgraph.cli.scripts import (
    DATA_DEFAULT,
    ScriptParser,
    nonnegative_int,
    positive_float,
    positive_int,
    run_script,
)

START = time.perf_counter()
ROOT = Path(__file__).resolve().parent.parent
#: The caches' folder when TASKGRAPH_CACHE is not set (kept after a run, reused by the next).
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "taskgraph-bench-cache"

PHASES = [
    "imports",
    "spec loading and checks",
    "data reading",
    "tokenization and features",
    "model construction and weights",
    "frozen-layer outputs",
    "training steps",
    "evaluation",
    "checkpoints",
    "records write",
    "search overhead",
    "other (trial bookkeeping)",
]

CONFIGS: dict[str, dict[str, Any]] = {
    "short": {
        "spec": "searchspaces/bioner_aux.yaml",
        "target": "ncbi_disease",
        "auxiliaries": ["bc5cdr_disease", "jnlpba"],
        "max_length": 64,
        "steps": 60,
        "max_examples": {"ncbi_disease": 400, "*": 300},
        "eval": 150,
        "learning_rate": 1e-4,
    },
    "tr_ner": {
        "spec": "searchspaces/tr_ner_aux.yaml",
        "target": "tr_ner_tur2003",
        "auxiliaries": [],
        "max_length": 96,
        "steps": 300,
        "max_examples": {"tr_ner_tur2003": 1500, "*": 800},
        "eval": 300,
        "learning_rate": 5e-5,
    },
}


class Timer:
    """Exclusive time per phase and per trial: a nested phase's time is not its parent's."""

    def __init__(self) -> None:
        self.trial = -1
        self.seconds: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.stack: list[list[Any]] = []
        self.first_step: dict[int, float] = {}
        self.step_times: dict[int, list[float]] = defaultdict(list)
        self.tokens: dict[int, list[int]] = defaultdict(lambda: [0, 0])

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        entry = [name, time.perf_counter(), 0.0]
        self.stack.append(entry)
        try:
            yield
        finally:
            self.stack.pop()
            total = time.perf_counter() - entry[1]
            self.seconds[self.trial][name] += total - entry[2]
            if self.stack:
                self.stack[-1][2] += total

    def wrap(self, owner: Any, attribute: str, name: str) -> None:
        original = getattr(owner, attribute)
        timer = self

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with timer.phase(name):
                return original(*args, **kwargs)

        setattr(owner, attribute, wrapped)


def prepare(args: argparse.Namespace) -> None:
    """Child process: tokenize the configuration's data once (fills the disk feature cache)."""
    from taskgraph.models import load_encoder
    from taskgraph.tasks import get_task
    from taskgraph.training import TrainingOptions, build_task_data

    config = trial_config(args, freeze=0)
    encoder = load_encoder("minilm")
    build_task_data(
        config,
        {name: get_task(name) for name in config.task_set},
        encoder.tokenizer,
        data_dir=None,
        options=TrainingOptions.from_config(config),
    )


def trial_config(args: argparse.Namespace, *, freeze: int) -> Any:
    from taskgraph.trial import MixingConfig, Objective, TrialConfig

    c = CONFIGS[args.config]
    caps = {
        t: c["max_examples"].get(t, c["max_examples"]["*"])
        for t in [c["target"], *c["auxiliaries"]]
    }
    return TrialConfig(
        target=c["target"],
        auxiliaries=tuple(c["auxiliaries"]),
        encoder="minilm",
        sharing="hard",
        mixing=MixingConfig(scheme="proportional", max_examples=caps),
        loss_weighting="equal",
        learning_rate=args.lr or c["learning_rate"],
        max_steps=args.steps or c["steps"],
        step_budget="total",  # the header's and README's step counts are total steps
        batch_size=16,
        max_length=c["max_length"],
        seed=0,
        objective=Objective(metric="f1", split="dev", direction="maximize"),
        eval_every=args.steps or c["steps"],
        hyperparameters={
            "max_eval_examples": c["eval"],
            "warmup_ratio": 0.1,
            "freeze_layers": freeze,
        },
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = ScriptParser(
        description=__doc__,
        epilog=(
            f"The data: {DATA_DEFAULT} (no --data option).  The tokenized features and the "
            "frozen-layer outputs are cached in $TASKGRAPH_CACHE, else "
            f"{DEFAULT_CACHE} (about 140 MB for --config short); the cache is kept after the "
            "run and reused by the next one (--cold clears it first; delete the folder to "
            "free the space)."
        ),
    )
    parser.add_argument("--config", choices=sorted(CONFIGS), default="short")
    parser.add_argument(
        "--steps", type=positive_int, default=None, help="training steps (default: the config's)"
    )
    parser.add_argument(
        "--freeze",
        type=nonnegative_int,
        default=4,
        help="frozen bottom layers of trial 1 (0: no trial 1)",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="runner.threads (default: the cores given)",
    )
    parser.add_argument(
        "--lr", type=positive_float, default=None, help="learning rate (default: the config's)"
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="clear the caches first (tokenized features and frozen-layer outputs): a first run",
    )
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.prepare:
        prepare(args)
        return
    cache = Path(os.environ.setdefault("TASKGRAPH_CACHE", str(DEFAULT_CACHE)))
    if args.cold:
        for kind in ("features", "frozen"):  # both are read back by a later run
            shutil.rmtree(cache / kind, ignore_errors=True)
    else:
        started = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--prepare", "--config", args.config], check=True)
        print(
            f"# warming the feature cache in a child process: {time.perf_counter() - started:.1f} s"
        )
    measure(args)


def measure(args: argparse.Namespace) -> None:
    global START
    START = time.perf_counter()  # the measured process starts here (the warm-up child is apart)
    timer = Timer()
    with timer.phase("imports"):
        import taskgraph.models
        import taskgraph.training as training
        import taskgraph.training.run as run
        import taskgraph.training.task_data as task_data
        import taskgraph.training.trainer as trainer_module
        from taskgraph.app.studies.running import build_engine as open_engine
        from taskgraph.cli.study import _load_checked
        from taskgraph.runners.local import LocalEvaluator
        from taskgraph.search.engine import StudyEngine
        from taskgraph.tasks.cache import feature_cache
        from taskgraph.training.batching import BatchStream

    c = CONFIGS[args.config]
    steps = args.steps or c["steps"]
    overrides: dict[str, Any] = {
        "encoder": {"name": "minilm", "max_length": c["max_length"]},
        "budget": {"trials": 2 if args.freeze else 1, "max_failures": 0},
        "pruner": {"name": "none"},
    }
    if args.threads:
        overrides["runner"] = {"name": "local", "threads": args.threads}
    with timer.phase("spec loading and checks"):
        spec = _load_checked(ROOT / c["spec"], overrides)

    # -- instrumentation (exclusive times) ------------------------------------------------------
    for attribute in ("load_examples", "label_vocabulary", "task_fingerprint"):
        timer.wrap(task_data, attribute, "data reading")
    timer.wrap(run, "build_task_data", "tokenization and features")
    timer.wrap(taskgraph.models, "load_encoder", "model construction and weights")
    timer.wrap(taskgraph.models, "build_model", "model construction and weights")
    timer.wrap(run, "attach_frozen_states", "frozen-layer outputs")
    timer.wrap(trainer_module, "evaluate_split", "evaluation")
    timer.wrap(trainer_module.MultiTaskTrainer, "_save", "checkpoints")
    timer.wrap(StudyEngine, "write_records", "records write")
    timer.wrap(StudyEngine, "run", "search overhead")
    timer.wrap(training, "train_trial", "other (trial bookkeeping)")
    original_step = trainer_module.MultiTaskTrainer._step

    def step(self: Any, *a: Any, **k: Any) -> Any:
        timer.first_step.setdefault(timer.trial, time.perf_counter() - START)
        began = time.perf_counter()
        with timer.phase("training steps"):
            out = original_step(self, *a, **k)
        timer.step_times[timer.trial].append(time.perf_counter() - began)
        return out

    trainer_module.MultiTaskTrainer._step = step  # type: ignore[method-assign]
    original_next = BatchStream.next_batch

    def next_batch(self: Any) -> Any:
        batch, examples, tokens = original_next(self)
        counts = timer.tokens[timer.trial]
        counts[0] += tokens
        counts[1] += int(batch["input_ids"].numel())
        return batch, examples, tokens

    BatchStream.next_batch = next_batch  # type: ignore[method-assign]

    schedule = [0, args.freeze] if args.freeze else [0]
    results: list[Any] = []
    checkpoints = Path(tempfile.mkdtemp(prefix="trial-cost-ckpt-"))

    class Recorded(LocalEvaluator):
        """The local runner; keeps each result and closes the trial's share of the timings."""

        def evaluate(self, config: Any, **kwargs: Any) -> Any:
            result = super().evaluate(config, **kwargs)
            results.append(result)
            timer.trial = -1
            return result

    def suggest(trial: Any) -> Any:
        # This benchmark's fixed configuration instead of a sampled one (records stay true).
        timer.trial = trial.number
        return trial_config(args, freeze=schedule[trial.number])

    with tempfile.TemporaryDirectory(prefix="trial-cost-") as tmp:
        with timer.phase("search overhead"):
            engine = open_engine(spec, storage_url=f"sqlite:///{tmp}/study.db")
            engine.evaluator = Recorded(
                device="cpu", threads=spec.runner.threads, checkpoint_root=checkpoints
            )
            engine.space.suggest = suggest  # type: ignore[method-assign]
        engine.run()
        engine.close()
    shutil.rmtree(checkpoints, ignore_errors=True)
    total = time.perf_counter() - START
    report(args, c, steps, timer, results, total, feature_cache())


def report(
    args: Any,
    c: dict[str, Any],
    steps: int,
    timer: Timer,
    results: list[Any],
    total: float,
    cache: Any,
) -> None:
    import torch

    failed = [(i, r) for i, r in enumerate(results) if r.status.value == "failed"]
    if failed:  # no step timings to report: say why, as one line, and fail
        index, result = failed[0]
        raise SystemExit(f"error: trial {index} failed: {result.failure_reason}")
    print(
        f"# config {args.config}: {c['target']} + {c['auxiliaries'] or 'no auxiliaries'}, MiniLM, "
        f"max_length {c['max_length']}, {steps} steps of batch 16, caps {c['max_examples']}, "
        f"{c['eval']} dev sentences, hard sharing; threads {results[0].cost.threads}; "
        f"torch {torch.__version__}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(
        f"# feature cache: {cache.hits} memory hits, {cache.disk_hits} disk hits, {cache.misses} misses"
    )
    process = timer.seconds[-1]
    for index, result in enumerate(results):
        per = timer.seconds[index]
        label = "full fine-tuning" if index == 0 else f"freeze_layers={args.freeze}"
        print(
            f"\n## trial {index} ({label}, lr {trial_config(args, freeze=0).learning_rate:g}): status {result.status.value}, dev F1 "
            f"{result.objective}, cost {result.cost.seconds:.1f} s on {result.cost.device}"
        )
        rows = {
            name: per.get(name, 0.0) + (process.get(name, 0.0) if index == 0 else 0.0)
            for name in PHASES
        }
        whole = sum(rows.values())
        print(f"{'phase':34s} {'seconds':>9s} {'share':>7s}")
        for name in PHASES:
            print(f"{name:34s} {rows[name]:9.2f} {rows[name] / whole:7.1%}")
        print(f"{'total':34s} {whole:9.2f}")
        tokens, cells = timer.tokens[index]
        times = timer.step_times[index]
        print(
            f"padding of the training batches: {1 - tokens / max(cells, 1):.1%} "
            f"({tokens} tokens in {cells} positions, group_by_length on)"
        )
        print(f"mean step: {sum(times) / len(times):.3f} s over {len(times)} steps")
    full = timer.step_times[0]
    first = timer.first_step.get(0, float("nan"))
    print(
        f"\nprocess total: {total:.1f} s (trial 0's phases include the process's imports, checks and study setup)"
    )
    imports = process.get("imports", 0.0)
    print(f"setup_after_imports_s: {first - imports:.2f}")
    print(f"setup_s: {first:.2f}")
    print(f"train_share: {sum(full) / total:.3f}")
    if len(results) > 1:
        frozen = timer.step_times[1]
        print(f"frozen_step_speedup: {(sum(full) / len(full)) / (sum(frozen) / len(frozen)):.2f}")
        print(f"frozen_score: {results[1].objective:.4f}")
        print(f"full_score: {results[0].objective:.4f}")


if __name__ == "__main__":
    raise SystemExit(run_script(main))
