"""The study spec: pydantic models that reject unknown keys.

A spec says what to search (target, candidate auxiliary tasks, the search space), how (sampler,
pruner, runner, budget) and where to keep the results (storage).  Every model forbids extra
keys, so a typo is an error naming the field path, never a silently ignored setting.  Names
that live in registries (sharing architectures, loss weightings, samplers) are checked against
those registries by :func:`taskgraph.search.checks.check_spec` so that new plug-ins need no
change here.  See docs/search.md for the reference with every field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    field_validator,
    model_validator,
)

from taskgraph.registry import RUNNERS
from taskgraph.spec.domains import Domain, check_numbers, reject_non_finite
from taskgraph.spec.limits import (
    MAX_BATCH_SIZE,
    MAX_CAP_EXAMPLES,
    MAX_COUNT,
    MAX_ENCODER_LENGTH,
    MAX_EPOCHS,
    MAX_FAILURES,
    MAX_INTERVAL,
    MAX_LEARNING_RATE,
    MAX_RAY_RESOURCES,
    MAX_SEED,
    MAX_SEEDS,
    MAX_STEPS,
    MAX_TRIALS,
    MAX_WALL_TIME,
)
from taskgraph.spec.pretraining import PretrainingSpace
from taskgraph.trial import config_hash

__all__ = [
    "AuxiliarySpace",
    "BudgetSpec",
    "DataSelectionSpace",
    "EncoderSpec",
    "InlineTaskSpec",
    "LocalRunnerSpec",
    "MixingSpace",
    "ObjectiveSpec",
    "PrunerSpec",
    "RayRunnerSpec",
    "RecoverySpec",
    "RowSpec",
    "RunnerSpec",
    "SamplerSpec",
    "SearchSpaceSpec",
    "StudySpec",
    "TabularRunnerSpec",
    "TrainingSpec",
    "parse_duration",
]

TASK_TYPES = (
    "token_tagging",
    "dependency_parsing",
    "extractive_qa",
    "sentence_classification",
    "sentence_pair_classification",
    "masked_lm",
)
STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$")
_UNIT_SECONDS = {None: 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}

# Counts are strict integers: YAML's `true` is not 1 and `1.0e+300` is not a step count.
# Bounds come from taskgraph.spec.limits and are set per field below.
Count = Annotated[int, Strict()]
# Numbers are finite: `.inf` and `.nan` are YAML floats but never a usable setting; ints are
# accepted (`cpu: 1`), booleans are not.
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]


def parse_duration(value: float | int | str | None) -> float | None:
    """Return ``value`` in seconds: a number of seconds or a string such as ``"90s"``, ``"10m"``, ``"2h"``."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return None if value is None else float(value)
    # ValueError, not the regex's TypeError: pydantic reports only the former as the field's.
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"expected a duration such as 600, '90s', '10m' or '2h', got {value!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _shorthand_name(data: Any) -> Any:
    # `sampler: tpe` means `sampler: {name: tpe}` (and the same for pruner, runner, encoder).
    return {"name": data} if isinstance(data, str) else data


class ObjectiveSpec(_Strict):
    """The target's metric to optimise (default: the target task's primary metric on dev)."""

    metric: str | None = None
    split: str = "dev"
    direction: Literal["maximize", "minimize"] = "maximize"


class InlineTaskSpec(_Strict):
    """A user-defined task: where its files are and how to read and score them."""

    name: str
    format: str
    type: Literal[
        "token_tagging",
        "dependency_parsing",
        "extractive_qa",
        "sentence_classification",
        "sentence_pair_classification",
        "masked_lm",
    ]
    label_field: str
    files: dict[str, str] | None = None  # split name -> file (relative to the spec's folder)
    path: str | None = None  # a folder holding train/dev/test files
    metrics: tuple[str, ...] | None = None
    reader_options: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _has_files(self) -> InlineTaskSpec:
        if self.files is None and self.path is None:
            raise ValueError("an inline task needs `files` (split -> file) or `path` (a folder)")
        return self


def _candidate_tag(value: Any) -> str:
    # A mapping is an inline task, anything else a task name: only that branch's errors are
    # reported (an undiscriminated union also reported "not a string" for an inline task).
    return "InlineTaskSpec" if isinstance(value, (Mapping, InlineTaskSpec)) else "str"


Candidate = Annotated[
    Annotated[str, Tag("str")] | Annotated[InlineTaskSpec, Tag("InlineTaskSpec")],
    Discriminator(_candidate_tag),
]


class AuxiliarySpace(_Strict):
    """Constraints on the auxiliary subset S \\ {target}: size bounds, always/never included."""

    min_size: Count = Field(default=0, ge=0, le=MAX_COUNT)
    max_size: Count | None = Field(default=None, ge=0, le=MAX_COUNT)
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> AuxiliarySpace:
        if self.max_size is not None and self.min_size > self.max_size:
            raise ValueError(f"min_size ({self.min_size}) must be <= max_size ({self.max_size})")
        both = sorted(set(self.include) & set(self.exclude))
        if both:
            raise ValueError(f"tasks both included and excluded: {', '.join(both)}")
        if self.max_size is not None and len(self.include) > self.max_size:
            raise ValueError(
                f"include lists {len(self.include)} tasks but max_size is {self.max_size}"
            )
        return self


def _domain_or_map(value: Any) -> str:
    # A mapping whose keys are all a domain's (`{low: 1, high: -1}`) is one domain, anything
    # else a mapping of names to domains: only that branch's error is reported (a plain union
    # read a reversed range as the names `low` and `high`).
    if isinstance(value, Mapping) and not isinstance(value, Domain):
        return "Domain" if value and set(value) <= set(Domain.model_fields) else "dict"
    return "Domain"


def _mixing_weight(domain: Domain) -> Domain:
    return check_numbers(domain, integer=False, low=0.0, high=1e6)


def _mixing_cap(domain: Domain) -> Domain:
    return check_numbers(domain, integer=True, low=1, high=MAX_CAP_EXAMPLES, allow_none=True)


def _selection_weight(domain: Domain) -> Domain:
    return check_numbers(domain, integer=False, low=-1e3, high=1e3)


# Each value is checked where it sits, so an error names the task or feature of a mapping
# (`search.mixing.weights.ud_tr_imst_upos: must be >= 0 ...`).
MixingWeight = Annotated[Domain, AfterValidator(_mixing_weight)]
MixingWeights = Annotated[
    Annotated[MixingWeight, Tag("Domain")] | Annotated[dict[str, MixingWeight], Tag("dict")],
    Discriminator(_domain_or_map),
]
MixingCap = Annotated[Domain, AfterValidator(_mixing_cap)]
MixingCaps = Annotated[
    Annotated[MixingCap, Tag("Domain")] | Annotated[dict[str, MixingCap], Tag("dict")],
    Discriminator(_domain_or_map),
]
SelectionWeight = Annotated[Domain, AfterValidator(_selection_weight)]
SelectionWeights = Annotated[
    Annotated[SelectionWeight, Tag("Domain")] | Annotated[dict[str, SelectionWeight], Tag("dict")],
    Discriminator(_domain_or_map),
]


class MixingSpace(_Strict):
    """Task-level data selection: sampling scheme, temperature, per-task weights and caps.

    ``weights`` and ``max_examples`` take one domain for every task, or a mapping from task
    name to domain where the key ``"*"`` stands for every task not named (for ``weights``,
    every auxiliary not named: the target keeps weight 1 unless named).
    """

    scheme: Domain = Domain(value="proportional")
    temperature: Domain = Domain(value=2.0)
    weights: MixingWeights = Domain(value=1.0)
    max_examples: MixingCaps | None = None

    @field_validator("temperature")
    @classmethod
    def _temperature(cls, value: Domain) -> Domain:
        return check_numbers(value, integer=False, low=0.0, high=1e6, low_open=True)


class DataSelectionSpace(_Strict):
    """Example-level data selection of the auxiliaries (Ruder and Plank 2017).

    Each auxiliary example is scored ``w · z`` (``z``: its ``features``, standardised over its
    dataset) and the top ``keep`` share of each auxiliary is trained on.  ``weights`` is one
    domain for every feature or a mapping feature -> domain (``"*"``: every feature not named;
    without it a feature not named has weight 0, which ``taskgraph.search.checks`` warns of);
    the sampler searches each weight and ``keep``
    (Optuna parameters ``selection/<feature>`` and ``selection/keep``).  Feature names are
    checked by ``taskgraph.search.checks``.
    """

    features: tuple[str, ...]
    weights: SelectionWeights = Domain(low=-1.0, high=1.0)
    keep: Domain = Domain(low=0.1, high=1.0)

    @field_validator("features")
    @classmethod
    def _features(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one selection feature")
        twice = sorted({f for f in value if value.count(f) > 1})
        if twice:
            raise ValueError(f"features listed twice: {', '.join(twice)}")
        return value

    @field_validator("keep")
    @classmethod
    def _keep(cls, value: Domain) -> Domain:
        return check_numbers(value, integer=False, low=0.0, high=1.0, low_open=True)

    @model_validator(mode="after")
    def _weights_named(self) -> DataSelectionSpace:
        if isinstance(self.weights, dict):
            unknown = sorted(set(self.weights) - set(self.features) - {"*"})
            if unknown:
                raise ValueError(
                    f"weights: {unknown[0]!r} is not one of the features "
                    f"({', '.join(self.features)})"
                )
        return self


def _hard_only() -> dict[str, dict[str, Domain]]:
    return {"hard": {}}


class SearchSpaceSpec(_Strict):
    """Everything the sampler chooses per trial (each setting fixed, categorical or a range)."""

    auxiliaries: AuxiliarySpace = AuxiliarySpace()
    # architecture name -> its parameter ranges (overriding the architecture's own defaults)
    sharing: dict[str, dict[str, Domain]] = Field(default_factory=_hard_only)
    mixing: MixingSpace = MixingSpace()
    loss_weighting: Domain = Domain(value="equal")
    transfer_mode: Domain = Domain(value="joint")
    pretraining: PretrainingSpace = PretrainingSpace()  # masked-LM stage (spec/pretraining.py)
    learning_rate: Domain = Domain(value=5e-5)
    epochs: Domain = Domain(value=3.0)
    max_steps: Domain = Domain(value=None)
    batch_size: Domain = Domain(value=16)
    hyperparameters: dict[str, Domain] = Field(default_factory=dict)
    # Example-level selection of the auxiliaries' examples (None: all of them).
    data_selection: DataSelectionSpace | None = None
    # What `max_steps` and `epochs` count: `target` steps (steps that train the target; the
    # target sees as many of its own batches in every trial, auxiliary steps come on top) or
    # `total` steps of every task.  Not searched: trials with different budgets would not
    # compare like with like.
    step_budget: Literal["target", "total"] = "target"

    @field_validator("sharing", mode="before")
    @classmethod
    def _sharing_list(cls, value: Any) -> Any:
        # `sharing: [hard, soft]` means every listed architecture with its own default ranges.
        if isinstance(value, str):
            return {value: {}}
        if isinstance(value, (list, tuple)):
            return {str(name): {} for name in value}
        if isinstance(value, Mapping):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value

    @field_validator("sharing")
    @classmethod
    def _sharing_nonempty(cls, value: dict[str, dict[str, Domain]]) -> dict[str, dict[str, Domain]]:
        if not value:
            raise ValueError("name at least one sharing architecture")
        return value

    @field_validator("learning_rate")
    @classmethod
    def _learning_rate(cls, value: Domain) -> Domain:
        return check_numbers(value, integer=False, low=0.0, high=MAX_LEARNING_RATE, low_open=True)

    @field_validator("epochs")
    @classmethod
    def _epochs(cls, value: Domain) -> Domain:
        return check_numbers(value, integer=False, low=0.0, high=MAX_EPOCHS, low_open=True)

    @field_validator("max_steps")
    @classmethod
    def _max_steps(cls, value: Domain) -> Domain:
        return check_numbers(value, integer=True, low=1, high=MAX_STEPS, allow_none=True)

    @field_validator("batch_size")
    @classmethod
    def _batch_size(cls, value: Domain) -> Domain:
        return check_numbers(value, integer=True, low=1, high=MAX_BATCH_SIZE)

    @field_validator("transfer_mode")
    @classmethod
    def _transfer_modes(cls, value: Domain) -> Domain:
        for mode in value.values():
            if mode not in ("joint", "sequential"):
                raise ValueError(f"allowed: joint, sequential; got {mode!r}")
        return value


class EncoderSpec(_Strict):
    """The shared encoder: ``minilm``, ``tiny-bert`` or a local Hugging Face model directory."""

    name: str = "minilm"
    options: dict[str, Any] = Field(default_factory=dict)
    max_length: Count = Field(default=128, ge=8, le=MAX_ENCODER_LENGTH)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return _shorthand_name(data)


_DEVICE = re.compile(r"(cpu|cuda|mps|xpu)(:\d+)?")


class TrainingSpec(_Strict):
    """Per-trial settings that are not searched."""

    eval_splits: tuple[str, ...] = ("dev",)
    eval_every: Count | None = Field(default=None, ge=1, le=MAX_COUNT)
    early_stopping_patience: Count | None = Field(default=None, ge=1, le=MAX_COUNT)
    lookahead_every: Count | None = Field(default=None, ge=1, le=MAX_COUNT)
    device: str | None = None  # None: CUDA when present, else CPU
    # Fixed trainer settings (any JSON value, e.g. head_options); searched ones go under
    # search.hyperparameters and override these.
    hyperparameters: dict[str, Any] = Field(default_factory=dict)

    @field_validator("hyperparameters")
    @classmethod
    def _finite(cls, value: dict[str, Any]) -> dict[str, Any]:
        reject_non_finite(value)
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str | None) -> str | None:
        # torch's device strings; checked here so `study validate` refuses what every trial
        # would (whether CUDA is present is the running machine's, checked when a trial runs).
        if value is not None and not _DEVICE.fullmatch(value):
            raise ValueError(f"must be like 'cpu', 'cuda' or 'cuda:1', got {value!r}")
        return value


class BudgetSpec(_Strict):
    """How much to spend: trials (configurations), wall time, tolerated failures.

    ``baselines``: ``per_family`` spends a trial on the single-task baseline of each model
    family a complete trial lands in (a searched target cap or pretraining stage makes
    several), so every trial's records have a baseline to give gains against;
    ``per_setting`` one for each family and set of alone settings (a searched learning rate,
    sharing architecture, ...: ``TrialConfig.alone_settings``), so every gain compares runs
    trained alike and measures the transfer alone (a continuous learning rate makes about
    every trial its own); ``one`` trains only the study's first baseline.
    """

    trials: Count = Field(default=20, ge=1, le=MAX_TRIALS)
    # seconds per `run`/`resume` invocation; None: unlimited
    wall_time: Number | None = Field(default=None, le=MAX_WALL_TIME)
    max_failures: Count = Field(default=5, ge=0, le=MAX_FAILURES)
    baselines: Literal["per_family", "per_setting", "one"] = "per_family"

    @field_validator("wall_time", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value)

    @field_validator("wall_time")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError(f"must be > 0, got {value}")
        return value


class SamplerSpec(_Strict):
    """The Optuna sampler: ``tpe``, ``gp``, ``random``, ``graph`` (graph-guided) or ``bandit``."""

    name: str = "tpe"
    seed: Count | None = Field(default=None, ge=0, le=MAX_SEED)
    n_startup_trials: Count | None = Field(default=None, ge=0, le=MAX_COUNT)
    options: dict[str, Any] = Field(default_factory=dict)  # extra keyword arguments

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return _shorthand_name(data)


class PrunerSpec(_Strict):
    """Early stopping of poor trials: ``asha`` (= ``successive_halving``), ``median`` or ``none``.

    Resources are evaluation steps (the trainer's evaluations, one per epoch by default).
    """

    name: Literal["asha", "successive_halving", "median", "none"] = "none"
    min_resource: Count = Field(default=1, ge=1, le=MAX_COUNT)
    reduction_factor: Count = Field(default=3, ge=2, le=MAX_COUNT)
    n_startup_trials: Count = Field(default=3, ge=0, le=MAX_COUNT)
    n_warmup_steps: Count = Field(default=0, ge=0, le=MAX_COUNT)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return _shorthand_name(data)


class LocalRunnerSpec(_Strict):
    """Train in-process, one trial at a time.

    ``threads``: torch's intra-op threads per trial (default: the cores this process may use).
    ``checkpoints``: each (trial, seed) checkpoints its training, so that a trial retried after
    Ctrl-C, ``kill`` or a crash resumes where it stopped; its folder is removed once the trial
    is finished.  ``checkpoint_dir``: where, default ``$TASKGRAPH_CACHE/checkpoints``
    (:func:`taskgraph.runners.local.checkpoint_base`).
    """

    name: Literal["local"] = "local"
    threads: Count | None = Field(default=None, ge=1, le=MAX_RAY_RESOURCES)
    checkpoints: bool = True
    checkpoint_dir: str | None = None

    @field_validator("checkpoint_dir")
    @classmethod
    def _checkpoint_dir_nonempty(cls, value: str | None) -> str | None:
        # An empty path would be the working directory: never what an empty value meant.
        if value is not None and not value.strip():
            raise ValueError(
                f"is empty ({value!r}): give a folder, leave it out for "
                "$TASKGRAPH_CACHE/checkpoints, or turn checkpoints off with checkpoints: false"
            )
        return value


class RayResources(_Strict):
    """Resources per trial; fractional GPUs pack several trials on one device."""

    cpu: Number = Field(default=1.0, gt=0, le=MAX_RAY_RESOURCES)
    gpu: Number = Field(default=0.0, ge=0, le=MAX_RAY_RESOURCES)


class RayRunnerSpec(_Strict):
    """Ray Tune trials on a local or remote Ray cluster.

    ``checkpoints``: each (trial, seed) checkpoints its training through Tune (persisted under
    ``experiment_dir``), so that a trial Tune starts again, or a retry after Ctrl-C or a
    killed driver, resumes where it stopped (docs/search.md, ``ray``).
    """

    name: Literal["ray"] = "ray"
    address: str | None = None  # None: start a local Ray; "auto" or a GCS "host:6379"
    resources: RayResources = RayResources()
    max_concurrent_trials: Count = Field(default=1, ge=1, le=MAX_RAY_RESOURCES)
    num_cpus: Count | None = Field(default=None, ge=1, le=MAX_RAY_RESOURCES)  # local Ray only
    # torch's intra-op threads in each trial (default: resources.cpu, at least one)
    threads: Count | None = Field(default=None, ge=1, le=MAX_RAY_RESOURCES)
    experiment_dir: str | None = None  # Tune's state; default: ~/.taskgraph/ray/<study>
    checkpoints: bool = True

    @field_validator("address")
    @classmethod
    def _address_nonempty(cls, value: str | None) -> str | None:
        # Ray reads "" as "no address" and starts a local Ray: never what an empty value meant.
        if value is not None and not value.strip():
            raise ValueError(
                f"is empty ({value!r}): give a Ray cluster address (auto or the GCS's "
                "host:6379), or leave it out to start a local Ray"
            )
        return value


class TabularRunnerSpec(_Strict):
    """Answer trials from a published results table (benchmark studies)."""

    name: Literal["tabular"] = "tabular"
    table: str
    split: str = "val"


class PluginRunnerSpec(BaseModel):
    """A runner a plug-in registered in :data:`taskgraph.registry.RUNNERS`.

    Its settings are the plug-in's own: every key besides ``name`` is kept as given (the
    runner reads them from ``spec.runner``) and checked by the runner, not here.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str


_BUILTIN_RUNNERS = ("local", "ray", "tabular")


def _runner_tag(value: Any) -> str | None:
    # Built-in runners have their own models; any other registered name is a plug-in's.
    name = value.get("name") if isinstance(value, Mapping) else getattr(value, "name", None)
    if name in _BUILTIN_RUNNERS:
        return str(name)
    return "plugin" if isinstance(name, str) and name in RUNNERS else None


RunnerSpec = Annotated[
    Annotated[LocalRunnerSpec, Tag("local")]
    | Annotated[RayRunnerSpec, Tag("ray")]
    | Annotated[TabularRunnerSpec, Tag("tabular")]
    | Annotated[PluginRunnerSpec, Tag("plugin")],
    Discriminator(_runner_tag),
]


class RecoverySpec(_Strict):
    """Heartbeat settings: a trial silent for ``grace_period`` seconds is failed and retried."""

    heartbeat_interval: Count = Field(default=10, ge=1, le=MAX_INTERVAL)
    grace_period: Count = Field(default=30, ge=2, le=MAX_INTERVAL)
    max_retry: Count = Field(default=3, ge=0, le=MAX_COUNT)

    @model_validator(mode="after")
    def _order(self) -> RecoverySpec:
        if self.grace_period <= self.heartbeat_interval:
            raise ValueError(
                f"grace_period ({self.grace_period}) must exceed heartbeat_interval "
                f"({self.heartbeat_interval})"
            )
        return self


class RowSpec(_Strict):
    """One fixed configuration of the study: a row of the table the study reproduces.

    ``auxiliaries`` is the row's auxiliary set (empty: the target alone, which is then the
    study's baseline trial); ``params`` fixes the other parameters the search space would
    suggest for it, by their Optuna names (``sharing``, ``transfer_mode``,
    ``hierarchical/parsing_layer``, ``hp/<name>``, ...).  The engine enqueues every row before
    the sampler proposes anything (Optuna's ``enqueue_trial``); a row must fix every parameter
    its trial would suggest (checked by ``taskgraph.search.checks``), so it trains exactly the
    configuration the table names.
    """

    name: str = Field(min_length=1, max_length=100)
    auxiliaries: tuple[str, ...] = ()
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("params")
    @classmethod
    def _scalars(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name, item in value.items():
            if isinstance(item, (Mapping, list, tuple)):
                raise ValueError(f"{name}: expected one value (a number, string or boolean)")
        reject_non_finite(value)
        return value


def _inline_named(candidate: str | InlineTaskSpec, name: str) -> bool:
    return isinstance(candidate, InlineTaskSpec) and candidate.name == name


class StudySpec(_Strict):
    """A whole study: what to search, how, with what budget, and where to keep the records."""

    name: str
    description: str = ""
    target: str
    objective: ObjectiveSpec = ObjectiveSpec()
    candidates: tuple[Candidate, ...] = ()
    tasks: tuple[InlineTaskSpec, ...] = ()  # inline definitions of the target or candidates
    search: SearchSpaceSpec = SearchSpaceSpec()
    encoder: EncoderSpec = EncoderSpec()
    training: TrainingSpec = TrainingSpec()
    seeds: tuple[Annotated[Count, Field(ge=0, le=MAX_SEED)], ...] = (0,)
    budget: BudgetSpec = BudgetSpec()
    sampler: SamplerSpec = SamplerSpec()
    pruner: PrunerSpec = PrunerSpec()
    runner: RunnerSpec = LocalRunnerSpec()
    recovery: RecoverySpec = RecoverySpec()
    # Fixed configurations run first, in order (a results table's rows); see RowSpec.
    rows: tuple[RowSpec, ...] = ()
    storage: str | None = None
    data_dir: str | None = None

    @field_validator("runner", mode="before")
    @classmethod
    def _runner_shorthand(cls, value: Any) -> Any:
        value = _shorthand_name(value)
        if isinstance(value, Mapping):
            if "name" not in value:
                raise ValueError("needs a `name` key")
            name = value["name"]
            if not isinstance(name, str) or name not in RUNNERS:
                raise ValueError(RUNNERS.unknown(name))
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not STUDY_NAME.match(value):
            raise ValueError(
                "use ASCII letters, digits, '_', '.' and '-' (at most 100 characters, "
                f"starting with a letter or digit), got {value!r}"
            )
        return value

    @field_validator("seeds", mode="before")
    @classmethod
    def _seed_count(cls, value: Any) -> Any:
        # `seeds: 3` means seeds 0, 1, 2; a list names them.  Both are bounded before the
        # tuple is built: `seeds: 1000000000` would otherwise exhaust memory.
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 1:
                raise ValueError(f"seeds must be >= 1 (a count) or a list, got {value}")
            if value > MAX_SEEDS:
                raise ValueError(f"at most {MAX_SEEDS} seeds, got {value}")
            return tuple(range(value))
        if isinstance(value, (list, tuple)) and len(value) > MAX_SEEDS:
            raise ValueError(f"at most {MAX_SEEDS} seeds, got a list of {len(value)}")
        return value

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value:
            raise ValueError("name at least one seed")
        if len(set(value)) != len(value):
            raise ValueError(f"seeds must be distinct, got {list(value)}")
        return value

    @model_validator(mode="after")
    def _tasks_consistent(self) -> StudySpec:
        names = self.candidate_names
        clashes = sorted({n for n in names if names.count(n) > 1} | ({self.target} & set(names)))
        for name in clashes:
            self._refuse_builtin_inline(name)  # the real reason, not "listed twice"
        if self.target in names:
            raise ValueError(f"target {self.target!r} is also a candidate")
        for name in clashes:
            named = [i for i, c in enumerate(self.candidates) if c == name]
            defined = [i for i, c in enumerate(self.candidates) if _inline_named(c, name)]
            if named and defined:
                raise ValueError(
                    f"candidates list {name!r} twice: by name (candidates[{named[0]}]) and as an "
                    f"inline task (candidates[{defined[0]}]); an inline task is a candidate "
                    "itself, so list it once"
                )
        if clashes:
            raise ValueError(f"candidates listed twice: {', '.join(clashes)}")
        inline_names = [task.name for task in self.inline_tasks()]
        twice = sorted({n for n in inline_names if inline_names.count(n) > 1})
        if twice:  # one would silently replace the other (the last definition was used)
            raise ValueError(
                f"inline task {twice[0]!r} is defined twice (in `candidates` and `tasks`, or "
                "twice in one of them); define it once"
            )
        aux = self.search.auxiliaries
        unknown = sorted((set(aux.include) | set(aux.exclude)) - set(names))
        if unknown:
            raise ValueError(
                f"search.auxiliaries names tasks that are not candidates: {', '.join(unknown)}"
            )
        usable = len(names) - len(aux.exclude)
        if aux.min_size > usable:
            raise ValueError(
                f"search.auxiliaries.min_size is {aux.min_size} but only {usable} candidates "
                "can be chosen"
            )
        self._check_rows(names)
        return self

    def _refuse_builtin_inline(self, name: str) -> None:
        # An inline task may not take a catalog task's name (define_task refuses it): where the
        # name is also listed, that is the error to report, not a duplicate.
        from taskgraph.tasks.catalog import BUILTIN_TASKS

        if name not in BUILTIN_TASKS and not name.startswith("synth_"):
            return
        for index, candidate in enumerate(self.candidates):
            if _inline_named(candidate, name):
                raise ValueError(
                    f"candidates[{index}].name: {name!r} is taken by a built-in task of the "
                    f"catalog; rename the inline task (e.g. 'my_{name}')"
                )

    def _check_rows(self, candidates: list[str]) -> None:
        if not self.rows:
            return
        seen: set[str] = set()
        for index, row in enumerate(self.rows):
            if row.name in seen:
                raise ValueError(f"rows[{index}].name: {row.name!r} names two rows")
            seen.add(row.name)
            unknown = [t for t in row.auxiliaries if t not in candidates]
            if unknown:
                raise ValueError(
                    f"rows[{index}].auxiliaries: {unknown[0]!r} is not a candidate; allowed: "
                    f"{', '.join(candidates) or '(none)'}"
                )
            if len(set(row.auxiliaries)) != len(row.auxiliaries):
                raise ValueError(f"rows[{index}].auxiliaries: a task is listed twice")
        alone = [row.name for row in self.rows if not row.auxiliaries]
        if len(alone) > 1:
            raise ValueError(
                f"rows: {', '.join(alone)} each train the target alone; one row is the baseline"
            )
        if self.budget.trials < len(self.rows):
            raise ValueError(
                f"budget.trials is {self.budget.trials} but the spec has {len(self.rows)} rows; "
                "every row is a trial (more trials continue with the sampler)"
            )

    @property
    def candidate_names(self) -> list[str]:
        """Return the candidate auxiliary task names in spec order."""
        return [c if isinstance(c, str) else c.name for c in self.candidates]

    def drawable_candidates(self) -> list[str]:
        """Return the candidates a trial can train beside the target, in spec order: every one
        but the target and those in ``search.auxiliaries.exclude``."""
        excluded = set(self.search.auxiliaries.exclude)
        return [t for t in self.candidate_names if t != self.target and t not in excluded]

    def inline_tasks(self) -> list[InlineTaskSpec]:
        """Return every inline task definition (from ``candidates`` and ``tasks``)."""
        inline = [c for c in self.candidates if isinstance(c, InlineTaskSpec)]
        return [*inline, *self.tasks]

    def search_hash(self) -> str:
        """Return a hash of what defines the study's trials (everything but budget and runner).

        Two specs with the same hash describe the same study, so ``study run`` may continue
        one with the other (for example with a larger budget or another runner).
        """
        exclude: dict[str, Any] = dict.fromkeys(
            ("budget", "runner", "storage", "description"), True
        )
        search_exclude: set[str] = set()
        if self.search.step_budget == "total":
            # Studies made before `step_budget` existed trained under the total budget and
            # stored a hash without the field: with `step_budget: total` they continue.
            search_exclude.add("step_budget")
        if self.search.data_selection is None:
            # Likewise for studies made before `data_selection` existed.
            search_exclude.add("data_selection")
        if not self.rows:
            # Likewise for studies made before `rows` existed.
            exclude["rows"] = True
        if search_exclude:
            exclude["search"] = search_exclude
        return config_hash(self.model_dump(mode="json", exclude=exclude))[:16]
