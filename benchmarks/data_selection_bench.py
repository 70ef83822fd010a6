"""Example-level data selection (Ruder and Plank 2017) against all data and random subsets.

One target (default NCBI-disease NER) is trained jointly with a pool of auxiliary datasets
(default the BC5CDR disease and chemical sets and JNLPBA, biomedical NER from other corpora and
entity types).  Per seed, at an equal trial budget of ``--trials`` trainings for every searched
method, each picking its best trial by the target's dev F1 and reporting that trial's test F1:

* ``none``: the target alone (1 trial; for reference).
* ``all``: every pooled auxiliary example (1 trial: nothing to search).
* ``random``: a random ``keep`` share of each auxiliary (all weights 0, so ties are broken in a
  fixed random order), ``keep`` drawn by Optuna's random sampler.
* ``similarity``: the ``keep`` share most similar to the target by Jensen-Shannon divergence of
  term distributions (weight +1 on ``jsd``, Plank and van Noord 2011's measure), ``keep``
  searched by TPE.
* ``learned``: all ten features with weights in [-1, 1] and ``keep`` searched by TPE (the
  paper's Bayesian optimisation), through the study's own search space and sampler
  (``SearchSpace``, ``build_sampler``).

It ends with ``all_score``, ``random_score`` and ``learned_score`` (mean test F1 over seeds);
the lines above them give each method's mean, standard error and 95% t interval, and the
cost of computing the features.  ``--feature-cost`` only times the features of the largest
shipped datasets.  ``--quick`` is a smoke run (tiny sizes, 1 seed, 2 trials).

    python benchmarks/data_selection_bench.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from typing import Any

import optuna

from taskgraph.cli.scripts import (
    DATA_HELP,
    ScriptParser,
    check_freeze,
    directory,
    int_range,
    nonnegative_int,
    positive_int,
    run_script,
)
from taskgraph.search.samplers import build_sampler
from taskgraph.search.space import SearchSpace
from taskgraph.spec import spec_from_dict
from taskgraph.spec.limits import MAX_ENCODER_LENGTH
from taskgraph.trial import TrialConfig, TrialResult, TrialStatus

optuna.logging.set_verbosity(optuna.logging.WARNING)

ALL_FEATURES = [
    "jsd",
    "renyi",
    "cosine",
    "euclidean",
    "embedding_cosine",
    "ngram_overlap",
    "types",
    "ttr",
    "entropy",
    "simpson",
]
#: the compared methods, in the order their scores are printed
METHODS = ("none", "similarity", "all", "random", "learned")
# t quantiles (0.975) for the 95% interval of a mean of n values, by n - 1
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ScriptParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=directory, default=None, help=DATA_HELP)
    p.add_argument("--target", default="ncbi_disease")
    p.add_argument("--pool", default="bc5cdr_disease,bc5cdr_chem,jnlpba", help="auxiliaries")
    p.add_argument("--encoder", default="minilm")
    p.add_argument("--max-length", type=int_range(8, MAX_ENCODER_LENGTH), default=64)
    p.add_argument(
        "--target-train", type=positive_int, default=300, help="target training sentences"
    )
    p.add_argument(
        "--pool-size", type=positive_int, default=600, help="sentences per auxiliary pool"
    )
    p.add_argument("--steps", type=positive_int, default=80, help="target steps per trial")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument(
        "--freeze-layers", type=nonnegative_int, default=4, help="at most the encoder's depth"
    )
    p.add_argument("--target-weight", type=float, default=3.0, help="target's mixing weight")
    p.add_argument("--eval", type=positive_int, default=300, help="dev and test sentences scored")
    p.add_argument(
        "--trials", type=positive_int, default=4, help="trial budget of each searched method"
    )
    p.add_argument(
        "--startup", type=nonnegative_int, default=2, help="TPE's random start-up trials"
    )
    p.add_argument("--keep-low", type=float, default=0.1)
    p.add_argument("--keep-high", type=float, default=1.0)
    p.add_argument("--seeds", type=positive_int, default=3)
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads per trial")
    p.add_argument("--methods", default="none,all,random,similarity,learned")
    p.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, 1 seed, 2 trials")
    p.add_argument(
        "--feature-cost",
        default=None,
        help="only time the features of these tasks (comma-separated) against --target",
    )
    args = p.parse_args(argv)
    if args.quick:  # the smoke sizes are defaults: a size given on the command line still wins
        p.set_defaults(
            target_train=40, pool_size=60, steps=6, eval=40, trials=2, seeds=1, startup=1
        )
        args = p.parse_args(argv)
    unknown = sorted(set(filter(None, args.methods.split(","))) - set(METHODS))
    if unknown:
        p.error(f"--methods: unknown {unknown}; choose from {', '.join(METHODS)}")
    check_freeze(p, "--freeze-layers", args.freeze_layers, args.encoder)
    return args


def study_spec(args: argparse.Namespace, method: str, seed: int) -> Any:
    """Return the study spec of one searched method (its search space and sampler)."""
    pool = [t for t in args.pool.split(",") if t]
    keep = {"low": args.keep_low, "high": args.keep_high}
    selection: dict[str, Any] | None
    if method == "random":
        selection, sampler = {"features": ["jsd"], "weights": 0.0, "keep": keep}, "random"
    elif method == "similarity":
        selection, sampler = {"features": ["jsd"], "weights": 1.0, "keep": keep}, "tpe"
    elif method == "learned":
        selection = {"features": ALL_FEATURES, "weights": {"low": -1.0, "high": 1.0}, "keep": keep}
        sampler = "tpe"
    else:
        selection, sampler = None, "random"
    search: dict[str, Any] = {
        "auxiliaries": {"include": [] if method == "none" else pool},
        "mixing": {
            "scheme": "uniform",
            "weights": {args.target: args.target_weight},
            "max_examples": {args.target: args.target_train, "*": args.pool_size},
        },
        "learning_rate": args.lr,
        "max_steps": args.steps,
        "step_budget": "target",
        "batch_size": args.batch_size,
        "hyperparameters": {"freeze_layers": args.freeze_layers},
    }
    if selection is not None:
        search["data_selection"] = selection
    return spec_from_dict(
        {
            "name": f"selection_bench_{method}_{seed}",
            "target": args.target,
            "objective": {"metric": "f1", "split": "dev"},
            "candidates": pool,
            "encoder": {"name": args.encoder, "max_length": args.max_length},
            "search": search,
            "training": {
                "eval_every": args.steps,
                "eval_splits": ["dev", "test"],
                "hyperparameters": {"max_eval_examples": args.eval},
            },
            "seeds": [seed],
            # (random has no start-up trials: study validate refuses the setting for it)
            "sampler": {"name": sampler, "seed": seed}
            | ({} if sampler == "random" else {"n_startup_trials": args.startup}),
        }
    )


def train(args: argparse.Namespace, config: TrialConfig) -> TrialResult:
    from taskgraph.training import train_trial

    return train_trial(config, data_dir=args.data, threads=args.threads)


def run_method(args: argparse.Namespace, method: str, seed: int) -> dict[str, Any]:
    """Return the chosen trial's dev and test F1 (best dev of the method's trials) and costs."""
    spec = study_spec(args, method, seed)
    space = SearchSpace(spec=spec)
    study = optuna.create_study(direction="maximize", sampler=build_sampler(spec))
    trials = 1 if method in ("none", "all") else args.trials
    best: dict[str, Any] | None = None
    seconds = 0.0
    for number in range(trials):
        trial = study.ask()
        config = space.suggest(trial)
        start = time.perf_counter()
        result = train(args, config)
        seconds += time.perf_counter() - start
        if result.status is not TrialStatus.COMPLETE or result.objective is None:
            print(
                f"  {method} seed {seed} trial {number}: {result.status.value} "
                f"{result.failure_reason}",
                flush=True,
            )
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        study.tell(trial, result.objective)
        test = result.score(args.target, "test", "f1")
        kept = {  # keep applies to the capped pool, not the whole training split
            name: f"{rec['kept']}/{rec.get('pool', rec['examples'])} (of {rec['examples']})"
            for name, rec in (result.selection or {}).items()
        }
        selection = config.data_selection
        print(
            f"  {method} seed {seed} trial {number}: dev f1 {result.objective:.4f} "
            f"test f1 {test if test is None else round(test, 4)} "
            f"keep {selection.keep if selection else '-'} kept {kept or '-'} "
            f"{time.perf_counter() - start:.0f} s",
            flush=True,
        )
        if best is None or result.objective > best["dev"]:
            best = {"dev": result.objective, "test": test, "config": config}
    if best is None:
        return {"dev": math.nan, "test": math.nan, "seconds": seconds, "weights": None}
    chosen = best["config"].data_selection
    return {
        "dev": best["dev"],
        "test": best["test"] if best["test"] is not None else math.nan,
        "seconds": seconds,
        "weights": None if chosen is None else (dict(chosen.weights), chosen.keep),
    }


def summary(values: list[float]) -> tuple[float, float, float]:
    """Return (mean, standard error, half width of the 95% t interval)."""
    clean = [v for v in values if not math.isnan(v)]
    if not clean:
        return math.nan, math.nan, math.nan
    mean = statistics.fmean(clean)
    if len(clean) < 2:
        return mean, math.nan, math.nan
    se = statistics.stdev(clean) / math.sqrt(len(clean))
    return mean, se, _T975.get(len(clean) - 1, 1.96) * se


def feature_cost(args: argparse.Namespace) -> None:
    """Time the selection features of each task's whole training split (cache off)."""
    os.environ["TASKGRAPH_FEATURE_CACHE"] = "off"
    import numpy as np

    from taskgraph.models import load_encoder
    from taskgraph.tasks import count_examples, get_task, load_examples
    from taskgraph.training.selection import selection_features

    encoder = load_encoder(args.encoder)
    table = encoder.model.get_input_embeddings().weight.detach().float().numpy()
    target = get_task(args.target)
    target_size = count_examples(target, "train", data_dir=args.data)
    for name in args.feature_cost.split(","):
        task = get_task(name)
        start = time.perf_counter()
        size = len(load_examples(task, "train", data_dir=args.data))
        read = time.perf_counter() - start
        for with_embedding in (False, True):
            features = selection_features(
                task,
                target,
                data_dir=args.data,
                pool=np.arange(size),
                size=size,
                target_pool=np.arange(target_size),
                tokenizer=encoder.tokenizer,
                embedding_table=table if with_embedding else None,
                encoder_key=args.encoder,
                max_length=args.max_length,
            )
            label = "with" if with_embedding else "without"
            print(
                f"feature_seconds[{name}, {size} examples, {label} embedding_cosine]: "
                f"{features.seconds:.2f} (reading the file once: {read:.2f} s; target "
                f"{args.target}, {target_size} examples)",
                flush=True,
            )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from taskgraph.tasks import get_task

    for name in [args.target, *filter(None, args.pool.split(","))]:
        get_task(name)  # an unknown task: one error line (run_script), before any training
    if args.feature_cost:
        feature_cost(args)
        return 0
    methods = [m for m in args.methods.split(",") if m]
    print(
        f"scale: target {args.target} ({args.target_train} train sentences), pool "
        f"{args.pool} ({args.pool_size} sentences each), {args.encoder} max_length "
        f"{args.max_length}, freeze_layers {args.freeze_layers}, {args.steps} target steps of "
        f"{args.batch_size}, lr {args.lr}, target mixing weight {args.target_weight}, "
        f"{args.eval} dev/test sentences, {args.trials} trials per searched method, "
        f"keep in [{args.keep_low}, {args.keep_high}], seeds 0..{args.seeds - 1}, "
        f"{args.threads} thread(s)",
        flush=True,
    )
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    start = time.perf_counter()
    for seed in range(args.seeds):
        for method in methods:
            outcome = run_method(args, method, seed)
            results[method].append(outcome)
            print(
                f"{method} seed {seed}: chosen dev f1 {outcome['dev']:.4f} test f1 "
                f"{outcome['test']:.4f} ({outcome['seconds']:.0f} s) weights {outcome['weights']}",
                flush=True,
            )
    print(f"wall_seconds: {time.perf_counter() - start:.0f}")
    for method in methods:
        mean, se, half = summary([r["test"] for r in results[method]])
        dev_mean, _, _ = summary([r["dev"] for r in results[method]])
        per_seed = " ".join(f"{r['test']:.4f}" for r in results[method])
        print(
            f"{method}: test f1 {mean:.4f} ± {half:.4f} (95% t interval; se {se:.4f}; "
            f"per seed {per_seed}; chosen dev f1 {dev_mean:.4f})"
        )
    return report(results)


def report(results: dict[str, list[dict[str, Any]]]) -> int:
    """Print each method's ``<method>_score`` line; 1 (no score lines) when a method got none.

    A method every trial of which failed has a score of nan, which is no measurement: the run
    says which and fails, before any score line (a reader of ``name: value`` lines sees none).
    """
    failed = [m for m, runs in results.items() if all(math.isnan(r["test"]) for r in runs)]
    if failed:
        print(f"error: every trial of {', '.join(failed)} failed (reasons above)", file=sys.stderr)
        return 1
    for method in METHODS:
        if method in results:
            print(f"{method}_score: {summary([r['test'] for r in results[method]])[0]:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))
