"""Per-trial overhead of the Ray runner against the local runner, for trials that do no work.

Each trial is :func:`taskgraph.testing.noop_evaluator_factory`'s fake: one evaluation, reported
at once, nothing trained.  The same small study runs with the local runner (the engine's own
loop, in this process) and with the Ray runner on a warm local Ray (2 CPUs, started once; a
warm-up study starts the worker pool first), one trial at a time so that the time per trial
is its latency, with actor reuse (Tune's ``reuse_actors``, the runner's default) and without.
A trial that does no work spends all its time on orchestration: overhead = wall / trials.

Where the time goes, per trial, from timestamps taken in the driver (Tune callbacks, the
searcher's and the engine's calls) and the records (each run's ``started_at``/``finished_at``,
stamped in the worker):

* ``searcher``: ``suggest`` (the stopping rule ``engine.check_stop``, shown apart, then
  Optuna's ask and the configuration);
* ``trial_start``: ``suggest`` returned -> the worker began the trial (Tune's scheduling, the
  actor's start or reset, the trainable's set-up);
* ``work``: the evaluator itself (~0 here);
* ``result_reporting``: the worker's last timestamp -> the searcher hears the trial ended;
* ``database_write``: ``engine.finish`` (Optuna tell and the records);
* ``other``: what is left (Tune's loop between trials).

``steady`` is the median time from one trial's suggestion to the next, the first gap (which
holds the first actor's start, paid once per run) left out: the per-trial cost once that actor
has started.  It needs >= 4 trials (2 gaps after the first); with fewer it is nan.

    python benchmarks/orchestration_overhead.py --trials 20

Ends with ``ray_overhead_s_per_trial: X`` (with actor reuse; the goal is <= 0.3 s) and
``local_overhead_s_per_trial: X``.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from taskgraph.cli.scripts import ScriptParser, json_file, nonnegative_int, positive_int, run_script
from taskgraph.errors import ConfigError
from taskgraph.search.engine import StudyEngine
from taskgraph.spec import spec_from_dict
from taskgraph.storage import open_repository
from taskgraph.testing import SHARING_SPACES, FakeEvaluator, noop_evaluator_factory

PHASES = ("searcher", "check_stop", "trial_start", "work", "result_reporting", "database_write")


class Clock:
    """Timestamps (``time.time()``) and call durations, by Optuna trial number."""

    def __init__(self) -> None:
        self.calls: dict[str, list[float]] = defaultdict(list)
        self.events: dict[tuple[str, int], float] = {}


@contextmanager
def timed(clock: Clock, owner: Any, name: str, key: str) -> Iterator[None]:
    """Wrap ``owner.name`` so each call's duration lands in ``clock.calls[key]``."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            clock.calls[key].append(time.perf_counter() - start)

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, original)


def study_spec(name: str, trials: int, runner: dict[str, Any]) -> Any:
    return spec_from_dict(
        {
            "name": name,
            "target": "tgt",
            "candidates": ["good", "bad", "meh"],
            "search": {"sharing": ["hard", "soft"]},
            "budget": {"trials": trials, "max_failures": trials},
            "sampler": {"name": "random", "seed": 0},
            "runner": runner,
        }
    )


def run_local(url: str, trials: int, clock: Clock) -> float:
    spec = study_spec("local", trials, {"name": "local"})
    engine = StudyEngine(
        spec=spec,
        storage_url=url,
        evaluator=FakeEvaluator(n_evals=1),
        sharing_spaces=SHARING_SPACES,
    )
    engine.open()
    try:
        with (
            timed(clock, engine, "check_stop", "check_stop"),
            timed(clock, engine, "finish", "database_write"),
        ):
            start = time.perf_counter()
            engine.run()
            return time.perf_counter() - start
    finally:
        engine.close()


def run_ray(url: str, name: str, trials: int, reuse: bool, tune_dir: Path, clock: Clock) -> float:
    from taskgraph.runners.ray import RayTuneRunner
    from taskgraph.runners.ray.driver import DriverCallback, TruthfulOptunaSearch
    from taskgraph.runners.ray.worker import PAYLOAD

    spec = study_spec(
        name,
        trials,
        {"name": "ray", "max_concurrent_trials": 1, "experiment_dir": str(tune_dir)},
    )
    engine = StudyEngine(spec=spec, storage_url=url, sharing_spaces=SHARING_SPACES)
    engine.open()
    suggest = TruthfulOptunaSearch.suggest
    on_start = DriverCallback.on_trial_start
    on_complete = TruthfulOptunaSearch.on_trial_complete

    def timed_suggest(self: Any, trial_id: str) -> Any:
        start = time.time()
        config = suggest(self, trial_id)
        end = time.time()
        clock.calls["searcher"].append(end - start)
        if isinstance(config, dict) and PAYLOAD in config:
            number = int(config[PAYLOAD]["number"])
            clock.events[("suggest_start", number)] = start
            clock.events[("suggest_end", number)] = end
        return config

    def timed_start(self: Any, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
        clock.events[("tune_start", int(trial.config[PAYLOAD]["number"]))] = time.time()
        on_start(self, iteration, trials, trial, **info)

    def timed_complete(self: Any, trial_id: str, result: Any = None, error: bool = False) -> None:
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is not None:
            clock.events[("complete", ot_trial.number)] = time.time()
        on_complete(self, trial_id, result, error)
        if ot_trial is not None:
            clock.events[("told", ot_trial.number)] = time.time()

    TruthfulOptunaSearch.suggest = timed_suggest  # type: ignore[method-assign]
    DriverCallback.on_trial_start = timed_start  # type: ignore[method-assign]
    TruthfulOptunaSearch.on_trial_complete = timed_complete  # type: ignore[method-assign]
    try:
        with (
            timed(clock, engine, "check_stop", "check_stop"),
            timed(clock, engine, "finish", "database_write"),
        ):
            start = time.perf_counter()
            RayTuneRunner(
                engine=engine, evaluator_factory=noop_evaluator_factory, reuse_actors=reuse
            ).run()
            return time.perf_counter() - start
    finally:
        TruthfulOptunaSearch.suggest = suggest  # type: ignore[method-assign]
        DriverCallback.on_trial_start = on_start  # type: ignore[method-assign]
        TruthfulOptunaSearch.on_trial_complete = on_complete  # type: ignore[method-assign]
        engine.close()


def steady_gap(suggested_at: list[float], name: str = "ray_reuse") -> float | None:
    """Return the median time from one suggestion to the next, the first gap left out.

    The first gap holds the first actor's start (paid once per run), which a median of a few
    gaps would not outvote; ``None`` (with a note on stderr) when fewer than 2 gaps remain.
    """
    gaps = [b - a for a, b in itertools.pairwise(suggested_at)][1:]
    if len(gaps) < 2:
        if suggested_at:  # the local runner has no suggestion timestamps: nothing to say
            print(
                f"note: {name}: the steady time per trial needs >= 4 trials, "
                f"got {len(suggested_at)}: nan",
                file=sys.stderr,
            )
        return None
    return statistics.median(gaps)


def breakdown(url: str, study: str, clock: Clock, wall: float, trials: int) -> dict[str, float]:
    """Return the mean seconds per trial of each phase (see the module docstring).

    A phase this run has no timestamps for (the local runner has no searcher, no trial start
    and no result reporting of its own) is left out, not written as 0.
    """
    with open_repository(url) as repo:
        runs = {r.trial_number: r for r in repo.runs(study=study)}
    per: dict[str, list[float]] = defaultdict(list)
    for number, run in runs.items():
        started = run.started_at.timestamp() if run.started_at else None
        finished = run.finished_at.timestamp() if run.finished_at else None
        if started is None or finished is None:
            continue
        per["work"].append(finished - started)
        suggested = clock.events.get(("suggest_end", number))
        if suggested is not None:
            per["trial_start"].append(started - suggested)
        complete = clock.events.get(("complete", number))
        if complete is not None:
            per["result_reporting"].append(complete - finished)
    out = {"wall": wall / trials}
    suggested_at = sorted(t for (kind, _), t in clock.events.items() if kind == "suggest_end")
    steady = steady_gap(suggested_at, study)
    if steady is not None:
        out["steady"] = steady
    if per["trial_start"]:
        out["trial_start_median"] = statistics.median(per["trial_start"])
    for key in ("searcher", "check_stop", "database_write"):
        values = clock.calls.get(key, [])
        if values:
            out[key] = sum(values) / trials
    for key in ("trial_start", "work", "result_reporting"):
        if per[key]:
            out[key] = statistics.fmean(per[key])
    # check_stop runs inside the searcher's suggest (Ray) or the loop (local): not added twice.
    accounted = sum(out[k] for k in PHASES if k != "check_stop" and k in out)
    if not clock.calls.get("searcher"):
        accounted += out.get("check_stop", 0.0)
    out["other"] = out["wall"] - accounted
    return out


def show(name: str, parts: dict[str, float]) -> None:
    keys = (*PHASES, "other", "trial_start_median", "steady")
    fields = "  ".join(f"{k}={parts[k] * 1000:.1f}ms" for k in keys if k in parts)
    print(f"{name}: {parts['wall']:.3f} s/trial  ({fields})", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ScriptParser(description=__doc__)
    parser.add_argument("--trials", type=positive_int, default=20)
    parser.add_argument(
        "--warmup", type=nonnegative_int, default=4, help="trials of the warm-up study"
    )
    parser.add_argument("--json", type=json_file, help="also write the figures here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    import ray

    from taskgraph.runners.ray import QUIET_RAY_ENV

    for key, value in QUIET_RAY_ENV.items():
        os.environ.setdefault(key, value)
    load_start = os.getloadavg()
    print(
        f"load average at start: {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="tg-overhead-") as tmp:
        root = Path(tmp)
        figures: dict[str, dict[str, float]] = {}

        clock = Clock()
        url = f"sqlite:///{root / 'local.db'}"
        wall = run_local(url, args.trials, clock)
        figures["local"] = breakdown(url, "local", clock, wall, args.trials)
        show("local", figures["local"])

        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        # The workers import this module's factory by name (taskgraph.testing); nothing else.
        try:
            warm = f"sqlite:///{root / 'warmup.db'}"
            run_ray(warm, "warmup", args.warmup, True, root / "tune", Clock())
            for reuse in (True, False):
                name = "ray_reuse" if reuse else "ray_fresh_actors"
                clock = Clock()
                url = f"sqlite:///{root / (name + '.db')}"
                wall = run_ray(url, name, args.trials, reuse, root / "tune", clock)
                figures[name] = breakdown(url, name, clock, wall, args.trials)
                show(name, figures[name])
        finally:
            ray.shutdown()
    load = os.getloadavg()
    print(f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    report(figures, trials=args.trials, load_start=load_start, load_end=load, json_path=args.json)
    return 0


def report(
    figures: dict[str, dict[str, float]],
    *,
    trials: int,
    load_end: tuple[float, float, float],
    json_path: str | None,
    load_start: tuple[float, float, float] | None = None,
) -> None:
    """Print the summary lines, then write ``json_path`` (the figures, ``trials`` and the load
    averages at start and end): a file that cannot be written (its folder gone while the
    benchmark ran) is one error line after the figures, not a loss."""
    print(f"trials: {trials}")
    print(f"ray_fresh_actors_overhead_s_per_trial: {figures['ray_fresh_actors']['wall']:.3f}")
    print(f"ray_steady_s_per_trial: {figures['ray_reuse'].get('steady', float('nan')):.3f}")
    print(f"ray_overhead_s_per_trial: {figures['ray_reuse']['wall']:.3f}")
    print(f"local_overhead_s_per_trial: {figures['local']['wall']:.3f}", flush=True)
    if json_path:
        try:
            Path(json_path).write_text(
                json.dumps(
                    {
                        "trials": trials,
                        "load_start": load_start,
                        "load_end": load_end,
                        "figures": figures,
                    },
                    indent=2,
                )
            )
        except OSError as error:
            raise ConfigError(f"--json: cannot write {json_path}: {error.strerror}") from None


if __name__ == "__main__":
    raise SystemExit(run_script(main))
