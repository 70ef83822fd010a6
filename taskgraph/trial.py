"""The two values that cross every seam: :class:`TrialConfig` (what to train) and
:class:`TrialResult` (what came out).

The search engine asks Optuna for a trial and compiles it into a ``TrialConfig``; a runner
(local, Ray Tune, tabular) turns it into a ``TrialResult``; storage writes both.  Both are
plain, JSON-serialisable dataclasses: no torch, Optuna or Ray here.

This module holds the configuration; the result types live in :mod:`taskgraph.trial_result`
and are re-exported here, so ``from taskgraph.trial import TrialResult`` and pickles that name
``taskgraph.trial.TrialResult`` keep working.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from taskgraph.trial_result import Cost, LookaheadMatrix, TrialResult, TrialStatus
from taskgraph.vocabulary import task_set_key

__all__ = [
    "Cost",
    "DataSelectionConfig",
    "LookaheadMatrix",
    "MixingConfig",
    "Objective",
    "PretrainingConfig",
    "StepBudget",
    "TrialConfig",
    "TrialResult",
    "TrialStatus",
    "canonical_json",
    "config_hash",
    "setting_differences",
]

TransferMode = Literal["joint", "sequential"]
StepBudget = Literal["target", "total"]

#: Sharing architectures whose model of a task trained alone is the plain fine-tuned encoder
#: with the task's head: hard sharing; soft sharing (one column, nothing to tie it to: the
#: penalty is 0); cross-stitch (a fixed 1 x 1 alpha of 1).  Hierarchical sharing (a tagging
#: or parsing task reads a lower layer), label embeddings (a factorised classifier) and MMoE
#: (a gated mixture of expert layers) change the single-task model too.
PLAIN_SINGLE_TASK_SHARING = frozenset({"hard", "soft", "cross_stitch"})

#: Loss weightings that train a task alone as the plain sum does: PCGrad has nothing to
#: project with one task.  Uncertainty weighting learns a scale of the one loss (an effective
#: learning rate), so it is compared as itself.
PLAIN_SINGLE_TASK_WEIGHTING = frozenset({"equal", "pcgrad"})

#: Trainer settings (``TrialConfig.hyperparameters``) that cannot change a task's score when it
#: trains alone: multi-task or sequential-transfer bookkeeping, logging and checkpointing, and
#: the evaluation batch size.  Every other key is compared by :meth:`TrialConfig.alone_settings`.
NOT_ALONE_SETTINGS = frozenset(
    {
        "tasks_per_step",
        "lookahead_lr",
        "lookahead_targets",
        "lookahead_steps",
        "log_every",
        "checkpoint_every",
        "eval_batch_size",
        "source_epochs",
        "source_max_steps",
        "source_tasks",
    }
)


def canonical_json(value: Any) -> str:
    """Return ``value`` as JSON with sorted keys and no whitespace (stable across runs)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def config_hash(value: Any) -> str:
    """Return the sha256 hex digest of :func:`canonical_json` of ``value``."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Objective:
    """What a study optimises: one metric of the target task on one split."""

    metric: str | None = None  # None: the target task's primary metric
    split: str = "dev"
    direction: Literal["maximize", "minimize"] = "maximize"


@dataclass(frozen=True)
class MixingConfig:
    """How batches are drawn from the tasks' datasets (task-level data selection).

    ``scheme``: ``proportional`` (p ~ n), ``temperature`` (p ~ n^(1/T)), ``annealed``
    (temperature annealed from ``temperature`` to 1 over training: with T > 1 from flat to
    proportional, the reverse of Stickland and Murray 2019, who go from proportional to
    flatter) or ``uniform``.  ``weights`` multiply each task's sampling probability before
    normalisation; ``max_examples`` caps the training examples taken from each task.
    """

    scheme: Literal["proportional", "temperature", "annealed", "uniform"] = "proportional"
    temperature: float = 1.0
    weights: Mapping[str, float] = field(default_factory=dict)
    max_examples: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DataSelectionConfig:
    """Example-level data selection (Ruder and Plank 2017): which auxiliary examples to train on.

    Every auxiliary example gets the score ``w · z``: ``z`` its selection features
    (``taskgraph.tasks.selection``) standardised over its dataset, ``w`` = ``weights``
    (features not named weigh 0); the top ``keep`` share of each auxiliary is kept.
    ``features`` are the features the study searches: they define the model family, the
    weights and ``keep`` (searched per trial) do not.  The target's data are never selected.
    """

    features: tuple[str, ...] = ()
    weights: Mapping[str, float] = field(default_factory=dict)
    keep: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(sorted(self.features)))


@dataclass(frozen=True)
class PretrainingConfig:
    """Continued masked-LM pretraining of the encoder before fine-tuning (one trial, two stages).

    ``scheme``: ``random`` (BERT's 15 % masking, 80/10/10) or ``adaptive`` (a self-paced
    curriculum over per-position difficulty; :mod:`taskgraph.training.masking`).  ``corpus``:
    task names (their train split's text) or paths of text files (one passage a line); empty
    means the trial's own tasks.  ``steps`` optimizer steps of ``batch_size`` sequences of at
    most ``max_length`` tokens (``None``: the trial's).  ``options``: the scheme's parameters
    (see ``MASKING_SCHEMES``), e.g. ``{"mask_rate": 0.15, "q_start": 0.2}``.
    """

    scheme: str
    steps: int = 200
    corpus: tuple[str, ...] = ()
    learning_rate: float = 5e-5
    batch_size: int = 16
    max_length: int | None = None
    max_sequences: int | None = None  # a fixed random subset of the corpus' sequences
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "corpus", tuple(self.corpus))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PretrainingConfig:
        """Rebuild a configuration from its ``asdict`` form (a stored run's ``report`` of the
        stage is not configuration and is left out)."""
        values = {k: v for k, v in data.items() if k != "report"}
        values["corpus"] = tuple(values.get("corpus", ()))
        return cls(**values)


@dataclass(frozen=True)
class TrialConfig:
    """One model configuration M on one task set S: everything a runner needs to train it.

    Tasks are referred to by name; the runner resolves them against the catalog and the
    study's inline task definitions.

    ``step_budget`` says what ``max_steps`` and ``epochs`` count.  ``"target"`` (the default):
    optimizer steps that train the target, so the target sees the same number of its own
    batches in every trial whatever the auxiliaries, and the auxiliaries' batches come on top
    in the share the mixing scheme gives them; ``eval_every`` and an epoch are then counted
    in target steps too.  ``"total"``: every step of every task, as before this field existed
    (a trial with one auxiliary then gives the target about half the baseline's updates).
    In sequential transfer the target phase has the target budget; the source phase's steps
    (``source_max_steps``, default ``max_steps``) come on top under either budget.
    """

    target: str
    auxiliaries: tuple[str, ...] = ()
    encoder: str = "minilm"  # "minilm", "tiny-bert", or a local Hugging Face model directory
    encoder_options: Mapping[str, Any] = field(default_factory=dict)
    # A directory encoder's files when the trial was configured (taskgraph.encoder_files);
    # None for the built-in encoders, whose name pins their weights.
    encoder_version: str | None = None
    sharing: str = "hard"
    sharing_params: Mapping[str, Any] = field(default_factory=dict)
    mixing: MixingConfig = field(default_factory=MixingConfig)
    data_selection: DataSelectionConfig | None = None  # example-level selection of auxiliaries
    loss_weighting: str = "equal"
    transfer_mode: TransferMode = "joint"
    pretraining: PretrainingConfig | None = None  # masked-LM stage before fine-tuning
    learning_rate: float = 5e-5
    epochs: float = 3.0
    max_steps: int | None = None  # overrides epochs when set; counted as step_budget says
    step_budget: StepBudget = "target"
    batch_size: int = 16
    max_length: int = 128
    seed: int = 0
    objective: Objective = field(default_factory=Objective)
    eval_splits: tuple[str, ...] = ("dev",)
    eval_every: int | None = None  # steps between evaluations; None: once per epoch
    early_stopping_patience: int | None = None
    lookahead_every: int | None = None  # steps between lookahead-affinity probes
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)  # warmup, weight decay...

    def __post_init__(self) -> None:
        if self.target in self.auxiliaries:
            raise ValueError(f"target {self.target!r} is also listed as an auxiliary task")
        object.__setattr__(self, "auxiliaries", tuple(sorted(self.auxiliaries)))

    @property
    def task_set(self) -> tuple[str, ...]:
        """Return the sorted task names trained together (target included)."""
        return tuple(sorted((self.target, *self.auxiliaries)))

    @property
    def task_set_key(self) -> str:
        """Return the canonical key of the task set: sorted names joined by ``+``."""
        return task_set_key(self.task_set)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (tuples become lists).

        ``data_selection`` and ``encoder_version`` are left out when unset, so configurations
        (and their hashes) of studies without them are what they were before the fields existed.
        """
        data = json.loads(canonical_json(asdict(self)))
        for optional in ("data_selection", "encoder_version"):
            if data.get(optional) is None:
                data.pop(optional, None)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialConfig:
        """Rebuild a config from :meth:`to_dict` output."""
        values = dict(data)
        values["auxiliaries"] = tuple(values.get("auxiliaries", ()))
        values["eval_splits"] = tuple(values.get("eval_splits", ("dev",)))
        values["mixing"] = MixingConfig(**values.get("mixing", {}))
        values["objective"] = Objective(**values.get("objective", {}))
        selection = values.get("data_selection")
        if selection is not None:
            values["data_selection"] = DataSelectionConfig(
                features=tuple(selection.get("features", ())),
                weights=dict(selection.get("weights", {})),
                keep=float(selection.get("keep", 1.0)),
            )
        if values.get("pretraining") is not None:
            values["pretraining"] = PretrainingConfig.from_dict(values["pretraining"])
        # A config written before `step_budget` existed was trained under the total budget.
        values.setdefault("step_budget", "total")
        return cls(**values)

    def source_phase_tasks(self) -> tuple[str, ...]:
        """Return the auxiliaries a sequential run trains in its source phase (none if joint).

        The trainer's hyperparameter ``source_tasks`` picks them among the auxiliaries (all of
        them by default); the others train with the target in the target phase.  Their scores
        are measured when the source phase ends, before the target joined: a record keeps them
        with the source phase's task set, not the run's (taskgraph.storage.writes).
        """
        if self.transfer_mode != "sequential" or not self.auxiliaries:
            return ()
        named = self.hyperparameters.get("source_tasks")
        if named is None:
            return tuple(self.auxiliaries)
        chosen = set(named)
        return tuple(t for t in self.auxiliaries if t in chosen)

    def model_config(self) -> dict[str, Any]:
        """Return the model configuration M: everything except the task set and the seed."""
        data = self.to_dict()
        for key in ("target", "auxiliaries", "seed"):
            data.pop(key)
        return data

    def model_config_hash(self) -> str:
        """Return the hash of :meth:`model_config` (records of the same M share it)."""
        return config_hash(self.model_config())

    def family_key(self) -> str:
        """Return the model family: what a gain's single-task baseline must share.

        Gains compare ``score(t | S, M)`` with ``score(t | {t}, M')`` where M' is the
        single-task run of the same family: same encoder, input length and target budget, and
        the same pretraining stage (a differently pretrained encoder is another model; a run
        without one keeps the key it had before the stage existed).  An encoder directory is
        keyed by its files too (``encoder_version``): weights saved over the old ones at the same
        path are another model.  A model trained on selected auxiliary data is another family
        too (keyed by the selection's feature set, not its per-trial weights, so a study's
        baseline shares it).
        """
        target_cap = self.mixing.max_examples.get(self.target)
        family: dict[str, Any] = {
            "encoder": self.encoder,
            "encoder_options": dict(self.encoder_options),
            "max_length": self.max_length,
            "target_max_examples": target_cap,
        }
        if self.encoder_version is not None:
            family["encoder_version"] = self.encoder_version
        if self.data_selection is not None:
            family["data_selection"] = list(self.data_selection.features)
        if self.pretraining is not None:
            family["pretraining"] = json.loads(canonical_json(asdict(self.pretraining)))
        return config_hash(family)[:16]

    def alone_settings(self, task: str | None = None) -> dict[str, Any]:
        """Return the settings outside :meth:`family_key` that change how ``task`` (default:
        the target) trains when it is trained alone, as JSON-ready values (a sequential
        run's source: its phase's steps or epochs, ``source_max_steps`` / ``source_epochs``).

        A gain sets a run against the single-task runs of its family, whose own settings a
        search may have sampled differently: the learning rate, batch size, steps and epochs,
        the loss weighting, the trainer's settings that reach one task (warmup, weight decay,
        clipping, frozen layers, the task's head options, the evaluation cap), and the sharing
        architecture where its single-task model is not the plain one
        (:data:`PLAIN_SINGLE_TASK_SHARING`: those read as ``"plain"``).  Where a run and its
        baseline differ in any of these, the measured gain holds that setting's effect besides
        the transfer (:func:`setting_differences`, ``GainTable.mixed_settings``).
        """
        task = self.target if task is None else task
        hyper: dict[str, Any] = {
            key: value
            for key, value in self.hyperparameters.items()
            if key not in NOT_ALONE_SETTINGS and key != "head_options"
        }
        head_options = self.hyperparameters.get("head_options")
        if isinstance(head_options, Mapping) and head_options.get(task):
            hyper["head_options"] = head_options[task]
        plain = self.sharing in PLAIN_SINGLE_TASK_SHARING
        max_steps, epochs = self.max_steps, self.epochs
        if task in self.source_phase_tasks():  # its scores are the source phase's
            source_steps = self.hyperparameters.get("source_max_steps")
            source_epochs = self.hyperparameters.get("source_epochs")
            if source_steps is not None:
                max_steps = source_steps
            elif source_epochs is not None:
                max_steps, epochs = None, source_epochs
        settings: dict[str, Any] = {
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "max_steps": max_steps,
            "epochs": None if max_steps is not None else epochs,
            "early_stopping_patience": self.early_stopping_patience,
            "loss_weighting": "equal"
            if self.loss_weighting in PLAIN_SINGLE_TASK_WEIGHTING
            else self.loss_weighting,
            "sharing": "plain" if plain else self.sharing,
            "sharing_params": {} if plain else dict(self.sharing_params),
            **{f"hyperparameters.{key}": value for key, value in hyper.items()},
        }
        return json.loads(canonical_json(settings))

    def setting_family_key(self) -> str:
        """Return :meth:`family_key` with a hash of the target's :meth:`alone_settings`
        (``<family>/settings:<hash>``): what ``budget.baselines: per_setting`` gives a baseline
        each, and what ``study show`` matches a trial's baseline by."""
        return f"{self.family_key()}/settings:{config_hash(self.alone_settings())[:12]}"

    def with_seed(self, seed: int) -> TrialConfig:
        """Return a copy with another seed."""
        return replace(self, seed=seed)


def setting_differences(*settings: Mapping[str, Any]) -> list[str]:
    """Return the names of the settings whose values differ among ``settings`` (each an
    :meth:`TrialConfig.alone_settings`), sorted; a name missing from one of them differs."""
    names = sorted({name for item in settings for name in item})
    return [
        name
        for name in names
        if len({canonical_json(item.get(name, "<unset>")) for item in settings}) > 1
    ]
