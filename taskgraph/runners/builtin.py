"""The built-in runners as :class:`~taskgraph.runners.base.Runner` plug-ins.

Each is registered by name in :data:`taskgraph.registry.RUNNERS`.  This module imports
neither torch nor Ray: the evaluators and the Ray driver are imported when a study runs.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from taskgraph.errors import ConfigError, option_name
from taskgraph.runners.base import RunnerCapabilities, TrialEvaluator

if TYPE_CHECKING:
    from taskgraph.runners.ray.worker import EvaluatorFactory
    from taskgraph.search.engine import EngineObserver, RunSummary, StudyEngine
    from taskgraph.search.outcome import TrialOutcome
    from taskgraph.search.progress import StudyProgress, TrialStep
    from taskgraph.spec.models import StudySpec
    from taskgraph.trial import TrialConfig

__all__ = [
    "LOCAL",
    "RAY",
    "TABULAR",
    "LocalRunner",
    "RayRunner",
    "TabularRunner",
    "ray_experiment_dir",
    "ray_installed",
    "require_ray",
]

logger = logging.getLogger(__name__)

# How a message says which extra brings Ray (pyproject.toml's optional-dependencies).
RAY_INSTALL = "pip install 'taskgraph[ray]'"


def ray_installed() -> bool:
    """Return whether Ray can be imported: found on the path, not imported (that takes
    seconds, and this is asked before every check of a ray spec)."""
    if "ray" in sys.modules:
        return sys.modules["ray"] is not None  # None: its import was blocked
    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        return False


def require_ray(what: str) -> None:
    """Raise one ``ConfigError`` line, ``<what> needs Ray: pip install ...``, unless Ray can be
    imported: before anything is written, instead of a ``ModuleNotFoundError`` traceback
    once the study is in the database."""
    if not ray_installed():
        raise ConfigError(f"{what} needs Ray: {RAY_INSTALL}")


def ray_experiment_dir(spec: StudySpec) -> Path:
    """Return Tune's state directory of ``spec``'s study, created; one ConfigError line if not.

    ``runner.experiment_dir``, or ``~/.taskgraph/ray/<study>``.
    """
    configured = getattr(spec.runner, "experiment_dir", None)
    path = Path(configured or Path.home() / ".taskgraph" / "ray" / spec.name).expanduser()
    try:
        path = path.resolve()
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"runner.experiment_dir: cannot create {str(path)!r}: {error.strerror or error}"
        ) from None
    if not os.access(path, os.W_OK):
        raise ConfigError(f"runner.experiment_dir: {str(path)!r} is not writable")
    return path


class LocalRunner:
    """``local``: trains each trial in this process, one at a time (the engine's own loop).

    With ``runner.checkpoints`` (the default) each (trial, seed) checkpoints under
    ``runner.checkpoint_dir`` (default ``$TASKGRAPH_CACHE/checkpoints``), so a trial retried
    after Ctrl-C, ``kill`` or a crash resumes its training; a trial's folder is removed once
    the trial is finished (:mod:`taskgraph.runners.local`).
    """

    name = "local"
    capabilities = RunnerCapabilities(trains=True, intermediate_reports=True, checkpoints=True)

    def check_spec(self, spec: StudySpec, *, source: str) -> None:
        """Raise ``SpecError`` when ``runner.checkpoint_dir`` cannot be created or written
        (nothing is created here)."""
        from taskgraph.errors import SpecError

        problem = _checkpoint_problem(spec)
        if problem is not None:
            raise SpecError(f"{source}: runner.checkpoint_dir: {problem}")

    def build_evaluator(
        self, spec: StudySpec, *, data_dir: str | os.PathLike[str] | None = None
    ) -> TrialEvaluator | None:
        from taskgraph.runners.local import LocalEvaluator
        from taskgraph.spec.checks import inline_task_defs

        # Checked before the study is created: an unusable folder is one line, not a study
        # whose every trial fails.
        problem = _checkpoint_problem(spec)
        if problem is not None:
            raise ConfigError(f"runner.checkpoint_dir: {problem}")
        # The checkpoint folder is the study's in its database: run() sets it, once the
        # study is opened.
        return LocalEvaluator(
            tasks=inline_task_defs(spec),
            data_dir=data_dir,
            device=spec.training.device,
            threads=getattr(spec.runner, "threads", None),
        )

    def run(self, engine: StudyEngine) -> RunSummary:
        """Run the engine's loop, checkpointing each trial under the study's folder and
        removing the folders of finished trials (before, after each trial, and after)."""
        from taskgraph.runners.local import LocalEvaluator, checkpoint_base_problem

        base = _checkpoint_base(engine.spec)
        evaluator = engine.evaluator
        if base is None or not isinstance(evaluator, LocalEvaluator):
            return engine.run()
        if evaluator.checkpoint_root is None:
            # An explicit runner.checkpoint_dir was checked by build_evaluator; the default
            # one, in the cache, may be unusable (a read-only home): then a retried trial
            # trains from the start, as without checkpoints, rather than the study refused.
            problem = checkpoint_base_problem(base)
            if problem is not None:
                logger.warning(
                    "no checkpoints (a retried trial trains from the start): %s", problem
                )
                return engine.run()
            evaluator.checkpoint_root = _study_folder(engine, base)
        sweeper = _CheckpointSweeper(
            inner=engine.observer, folder=evaluator.checkpoint_root, engine=engine
        )
        sweeper.sweep()
        engine.observer = cast("EngineObserver", sweeper)
        try:
            return engine.run()
        finally:
            engine.observer = sweeper.inner
            sweeper.sweep()


def _checkpoint_base(spec: StudySpec) -> Path | None:
    """Return the folder ``spec``'s local runner checkpoints under (``None``: it does not)."""
    from taskgraph.runners.local import checkpoint_base

    runner = spec.runner
    if not getattr(runner, "checkpoints", False):
        return None
    return checkpoint_base(getattr(runner, "checkpoint_dir", None))


def _checkpoint_problem(spec: StudySpec) -> str | None:
    """Return why ``spec``'s explicit ``runner.checkpoint_dir`` cannot hold checkpoints."""
    from taskgraph.runners.local import checkpoint_base_problem

    if getattr(spec.runner, "checkpoint_dir", None) is None:
        return None  # the cache's folder: checked when the study runs (LocalRunner.run)
    base = _checkpoint_base(spec)
    return None if base is None else checkpoint_base_problem(base)


def _study_folder(engine: StudyEngine, base: Path) -> Path:
    """Return the opened study's checkpoint folder under ``base``."""
    from taskgraph.runners.local import checkpoint_database, study_checkpoint_folder

    study_id = engine.storage.get_study_id_from_name(engine.spec.name)
    database = checkpoint_database(engine.storage_url, study_id)
    return study_checkpoint_folder(base, study=engine.spec.name, database=database)


class _CheckpointSweeper:
    """The engine's observer, every hook passed on, that also removes finished trials'
    checkpoints after each trial."""

    def __init__(self, *, inner: EngineObserver, folder: Path, engine: StudyEngine) -> None:
        self.inner = inner
        self.folder = folder
        self.engine = engine

    def sweep(self) -> None:
        from taskgraph.runners.local import remove_finished_checkpoints

        # Disk space is all that is at stake: a database or file system error here must not
        # replace the one (or the result) the run ends with.
        with suppress(Exception):
            remove_finished_checkpoints(self.folder, self.engine.require_study())

    def on_open(self, progress: StudyProgress) -> None:
        self.inner.on_open(progress)

    def on_wait(self, seconds: float, n_running: int) -> None:
        self.inner.on_wait(seconds, n_running)

    def on_trial_start(self, number: int, config: TrialConfig) -> None:
        self.inner.on_trial_start(number, config)

    def on_trial_progress(self, number: int, step: TrialStep) -> None:
        self.inner.on_trial_progress(number, step)

    def on_trial_end(self, number: int, outcome: TrialOutcome, progress: StudyProgress) -> None:
        self.sweep()
        self.inner.on_trial_end(number, outcome, progress)

    def __getattr__(self, name: str) -> Any:
        # Anything else a caller's observer has (the CLI's reads its own attributes).
        return getattr(self.inner, name)


class TabularRunner:
    """``tabular``: answers each trial from a published table (no training, no curve)."""

    name = "tabular"
    capabilities = RunnerCapabilities(trains=False, intermediate_reports=False)

    def check_spec(self, spec: StudySpec, *, source: str) -> None:
        """Raise ``SpecError`` unless the table reads, has ``runner.split`` and the target.

        Also checks that the objective goes the table's way (``check_table_objective``).
        """
        from taskgraph.errors import DataFormatError, DataNotFoundError, SpecError

        try:
            self._evaluator(spec, source=source)
        except SpecError:
            raise
        except ConfigError as error:
            raise SpecError(str(error)) from None
        except (DataNotFoundError, DataFormatError) as error:
            # The reader's line names the file, not the field: name it, so the CLI can say
            # which option set it (--set runner.table=...).
            raise SpecError(f"{source}: runner.table: {error}") from None

    def build_evaluator(
        self, spec: StudySpec, *, data_dir: str | os.PathLike[str] | None = None
    ) -> TrialEvaluator | None:
        return self._evaluator(spec, source=f"study {spec.name!r}")

    def data_fingerprints(self, spec: StudySpec) -> dict[str, str]:
        """Return each target's fingerprint of its rows in the spec's table: the data version
        its recorded scores carry (a task the table scores is not trained on its dataset)."""
        from taskgraph.runners.tabular import read_table
        from taskgraph.spec.models import TabularRunnerSpec

        runner = spec.runner
        if not isinstance(runner, TabularRunnerSpec):
            raise ValueError(f"the tabular runner needs `runner: tabular`, got {runner.name!r}")
        return read_table(runner.table).target_fingerprints()

    def _evaluator(self, spec: StudySpec, *, source: str) -> TrialEvaluator:
        from taskgraph.runners.tabular import TabularEvaluator, check_table_objective, read_table
        from taskgraph.spec.models import TabularRunnerSpec

        runner = spec.runner
        if not isinstance(runner, TabularRunnerSpec):
            raise ValueError(f"the tabular runner needs `runner: tabular`, got {runner.name!r}")
        table = read_table(runner.table)
        if runner.split not in table.splits:
            raise ConfigError(
                f"{source}: runner.split: {runner.split!r} is not a split of {runner.table}; "
                f"its splits: {', '.join(table.splits)}"
            )
        check_table_objective(
            table,
            target=spec.target,
            metric=spec.objective.metric,
            direction=spec.objective.direction,
            source=source,
            table_name=str(runner.table),
        )
        return TabularEvaluator(table=table, split=runner.split)

    def run(self, engine: StudyEngine) -> RunSummary:
        return engine.run()


class RayRunner:
    """``ray``: runs trials as Ray Tune trials, in parallel; workers build their evaluators.

    ``evaluator_factory`` is what each worker calls to build its evaluator (default:
    :func:`taskgraph.runners.ray.worker.local_evaluator`); it must be importable by name on
    every node.  A test registers ``RayRunner(evaluator_factory=...)`` under ``ray`` to run
    the CLI's Ray path with a fake evaluator.
    """

    name = "ray"
    capabilities = RunnerCapabilities(
        trains=True, intermediate_reports=True, parallel=True, checkpoints=True
    )

    def __init__(self, *, evaluator_factory: EvaluatorFactory | None = None) -> None:
        self.evaluator_factory = evaluator_factory

    def check_spec(self, spec: StudySpec, *, source: str) -> None:
        """Raise ``SpecError`` when Ray is not installed (the ``ray`` extra), or when a trial's
        ``runner.resources.cpu`` can never fit the Ray that taskgraph starts itself (no
        ``runner.address``, or ``local``): Tune would wait for ever.

        GPUs are checked when the study runs (:meth:`build_evaluator`): a spec is often written
        on a machine without the GPUs it runs on.  Against a cluster the driver compares the
        resources with the cluster's nodes once connected, and ``runner.num_cpus`` (the local
        Ray's size) is a warning on stderr, not a refusal: a spec written for local runs may
        be sent to a cluster.
        """
        from taskgraph.errors import SpecError
        from taskgraph.runners.ray.address import cluster_address
        from taskgraph.spec.models import RayRunnerSpec

        if not ray_installed():
            # Found here, by `study validate` too; otherwise the import fails only once the
            # study and its first trial are written.
            raise SpecError(
                f"{source}: runner.name: the ray runner needs Ray: {RAY_INSTALL} "
                "(or use the local runner)"
            )
        runner = spec.runner
        if not isinstance(runner, RayRunnerSpec):
            return
        address = cluster_address(runner.address)
        if address is not None:
            if runner.num_cpus is not None:
                print(
                    f"warning: {source}: runner.num_cpus {runner.num_cpus} is ignored with "
                    f"runner.address {address}: it sizes only the local Ray taskgraph starts "
                    "(the cluster's nodes give their own CPUs)",
                    file=sys.stderr,
                )
            return
        cpus = runner.num_cpus or 2  # what RayTuneRunner gives its own Ray
        if runner.resources.cpu > cpus:
            raise SpecError(
                f"{source}: runner.resources.cpu: {runner.resources.cpu:g} CPUs per trial, but "
                f"the local Ray has {cpus} (runner.num_cpus); lower it, raise runner.num_cpus, "
                "or give a cluster's --address"
            )

    def build_evaluator(
        self, spec: StudySpec, *, data_dir: str | os.PathLike[str] | None = None
    ) -> TrialEvaluator | None:
        # Called before the study is created: an address where no cluster answers is one
        # error now, not a traceback after the study and its first trial are written.
        from taskgraph.runners.ray.address import check_ray_address, cluster_address
        from taskgraph.spec.models import RayRunnerSpec

        runner = spec.runner
        # None: the Ray taskgraph starts (no address, or `local`)
        address = cluster_address(runner.address) if isinstance(runner, RayRunnerSpec) else None
        gpus = runner.resources.gpu if isinstance(runner, RayRunnerSpec) else 0
        if gpus > 0 and address is None and local_gpu_count() == 0:
            raise ConfigError(
                f"runner.resources.gpu: {gpus:g} GPUs per trial, but this machine has no GPU "
                "for the Ray that taskgraph starts; set it to 0 or give a cluster's --address"
            )
        if address is not None:
            check_ray_address(
                address,
                # (--address, the spec file's, or the one stored with the study on `study
                # resume`: the remedies name --address, `--address local` and --runner local)
                flag=option_name("runner.address", flag="--address (runner.address)"),
            )
        ray_experiment_dir(spec)
        return None  # each Tune worker builds its own (taskgraph.runners.ray.worker)

    def run(self, engine: StudyEngine) -> RunSummary:
        from taskgraph.runners.ray import RayTuneRunner

        if self.evaluator_factory is None:
            return RayTuneRunner(engine=engine, data_dir=engine.data_dir).run()
        return RayTuneRunner(
            engine=engine, data_dir=engine.data_dir, evaluator_factory=self.evaluator_factory
        ).run()


def local_gpu_count() -> int:
    """Return how many CUDA GPUs this process sees (what a Ray started here would get)."""
    import torch

    return torch.cuda.device_count()


LOCAL = LocalRunner()
TABULAR = TabularRunner()
RAY = RayRunner()
