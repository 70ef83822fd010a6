"""The study itself: its target, candidate tasks (named or inline), objective and fixed rows.

A spec says what to search (target, candidate auxiliary tasks, the search space), how (sampler,
pruner, runner, budget) and where to keep the results (storage).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from taskgraph.registry import RUNNERS
from taskgraph.spec.domains import reject_non_finite
from taskgraph.spec.limits import MAX_SEED, MAX_SEEDS
from taskgraph.spec.models.base import Count, _shorthand_name, _Strict
from taskgraph.spec.models.runners import LocalRunnerSpec, RunnerSpec
from taskgraph.spec.models.settings import (
    BudgetSpec,
    EncoderSpec,
    PrunerSpec,
    RecoverySpec,
    SamplerSpec,
    TrainingSpec,
)
from taskgraph.spec.models.space import SearchSpaceSpec
from taskgraph.trial import config_hash

__all__ = ["STUDY_NAME", "InlineTaskSpec", "ObjectiveSpec", "RowSpec", "StudySpec"]

TASK_TYPES = (
    "token_tagging",
    "dependency_parsing",
    "extractive_qa",
    "sentence_classification",
    "sentence_pair_classification",
    "masked_lm",
)
STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")


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
