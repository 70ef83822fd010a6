"""A synthetic task family whose relatedness is known: the demo and fast-test workload.

Every task draws sentences from a *lexicon* of real English words (each a single WordPiece of the
all-MiniLM-L6-v2 tokenizer, which the ``tiny-bert`` test encoder shares) and labels them with a
function of a *latent partition* of that lexicon:

===================  =======================  =======  ===========================================
task                 type                     lexicon  labels are a function of
===================  =======================  =======  ===========================================
synth_target         token tagging            L1       the coarse class h(w) = [c(w) >= K/2]
synth_related        token tagging            L1       the fine class c(w) (refines h)
synth_conflict       token tagging            L1       pairs {(k, r), (k + K/2, r)} (opposite h)
synth_unrelated      token tagging            L2       the class e(w) of another lexicon
synth_cls_related    sentence classification  L1       majority of h(w) over the sentence
synth_cls_unrelated  sentence classification  L2       majority of [e(w) >= K2/2]
===================  =======================  =======  ===========================================

L1 holds K x m words: word ``(k, r)`` has fine class ``k`` and rank ``r``.  The target has few
training sentences, so about half of L1's words never occur in them; alone, it can only guess
those.  ``synth_related`` (many sentences) teaches the encoder the fine classes of every word,
which carry the target's tag: positive transfer.  ``synth_conflict`` (many sentences) teaches the
encoder to give the two words of each pair the same representation although their target tags
differ: when the target saw one of the pair, it reads the other with the seen word's (wrong)
tag: negative transfer.  ``synth_unrelated`` only shares the encoder.

Ground-truth relatedness of two tasks is the normalised phi coefficient between their
"same latent group" indicators over all pairs of shared words (+1: one partition refines the
other; -1: as disagreeing as their group sizes allow; 0: no shared words), scaled by the Jaccard
overlap of their lexicons.  Generation is seeded and takes milliseconds.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from taskgraph.errors import ConfigError, UnknownNameError
from taskgraph.tasks.synthetic_words import WORDS
from taskgraph.tasks.types import (
    Example,
    SplitSource,
    TaggedSentence,
    TaskDef,
    TaskType,
    TextExample,
)
from taskgraph.vocabulary import stable_seed

__all__ = [
    "SYNTHETIC_PREFIX",
    "WORDS",
    "SyntheticFamily",
    "generate_examples",
    "get_synthetic_task",
    "synthetic_family",
    "synthetic_task_names",
]

SYNTHETIC_PREFIX = "synth_"

_SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class _Design:
    """One task of the family: which lexicon, which partition, which label function."""

    name: str
    type: TaskType
    lexicon: str  # "L1" or "L2"
    partition: str  # "class", "coarse" or "pair"
    train_size: int
    description: str


@dataclass(frozen=True)
class SyntheticFamily:
    """A seeded family of synthetic tasks with known pairwise relatedness.

    ``relatedness[i][j]`` relates ``names[i]`` and ``names[j]`` (symmetric, diagonal 1).
    """

    seed: int
    tasks: dict[str, TaskDef]
    names: tuple[str, ...]
    relatedness: tuple[tuple[float, ...], ...]

    def related(self, a: str, b: str) -> float:
        """Return the ground-truth relatedness of tasks ``a`` and ``b``."""
        index = {name: i for i, name in enumerate(self.names)}
        for name in (a, b):
            if name not in index:
                raise UnknownNameError(
                    f"unknown synthetic task {name!r}; known: {', '.join(self.names)}"
                )
        return self.relatedness[index[a]][index[b]]


def _designs(target_train: int, aux_train: int) -> list[_Design]:
    return [
        _Design(
            "synth_target",
            TaskType.TOKEN_TAGGING,
            "L1",
            "coarse",
            target_train,
            "small-data target: tag = coarse latent class h(w) = [c(w) >= K/2]",
        ),
        _Design(
            "synth_related",
            TaskType.TOKEN_TAGGING,
            "L1",
            "class",
            aux_train,
            "related to the target: tag = fine latent class c(w), which refines h(w)",
        ),
        _Design(
            "synth_conflict",
            TaskType.TOKEN_TAGGING,
            "L1",
            "pair",
            aux_train,
            "conflicts with the target: tag = a pair of words with opposite target tags",
        ),
        _Design(
            "synth_unrelated",
            TaskType.TOKEN_TAGGING,
            "L2",
            "class",
            aux_train,
            "shares nothing with the target: another lexicon and its own classes",
        ),
        _Design(
            "synth_cls_related",
            TaskType.SENTENCE_CLASSIFICATION,
            "L1",
            "coarse",
            aux_train,
            "sentence label = majority of the target's tag h(w) over the words",
        ),
        _Design(
            "synth_cls_unrelated",
            TaskType.SENTENCE_CLASSIFICATION,
            "L2",
            "coarse",
            aux_train,
            "sentence label = majority coarse class on the other lexicon",
        ),
    ]


def _stable_seed(*parts: object) -> int:
    # 64 bits: the width the family's data (and its published figures) were generated with.
    return stable_seed(*parts, bits=64)


def _lexicons(options: Mapping[str, Any]) -> dict[str, dict[str, tuple[int, int]]]:
    """Return lexicon name -> word -> (class, rank) for the family's seed and sizes."""
    n_classes, per_class = int(options["n_classes"]), int(options["words_per_class"])
    n_classes2, per_class2 = int(options["n_classes2"]), int(options["words_per_class2"])
    needed = n_classes * per_class + n_classes2 * per_class2
    if needed > len(WORDS):
        raise ConfigError(
            f"synthetic family needs {needed} words but only {len(WORDS)} exist; "
            "lower n_classes or words_per_class"
        )
    order = np.random.default_rng(_stable_seed("lexicon", options["seed"])).permutation(len(WORDS))
    words = [WORDS[i] for i in order]
    first = {words[k * per_class + r]: (k, r) for k in range(n_classes) for r in range(per_class)}
    offset = n_classes * per_class
    second = {
        words[offset + k * per_class2 + r]: (k, r)
        for k in range(n_classes2)
        for r in range(per_class2)
    }
    return {"L1": first, "L2": second}


def _group(partition: str, lexicon: str, cls: int, rank: int, options: Mapping[str, Any]) -> int:
    """Return the latent group of a word (class, rank) under ``partition``."""
    n = int(options["n_classes"] if lexicon == "L1" else options["n_classes2"])
    if partition == "class":
        return cls
    if partition == "coarse":
        return int(cls >= n // 2)
    if partition == "pair":
        # Word (k, r) pairs with (k + K/2, r): the two always have opposite coarse classes.
        return (cls % (n // 2)) * int(options["words_per_class"]) + rank
    raise ConfigError(f"synthetic partition must be class/coarse/pair, got {partition!r}")


def _groups(task: TaskDef) -> dict[str, int]:
    options = task.reader_options
    lexicon = _lexicons(options)[options["lexicon"]]
    return {
        word: _group(options["partition"], options["lexicon"], cls, rank, options)
        for word, (cls, rank) in lexicon.items()
    }


def _tag_name(partition: str, group: int) -> str:
    prefix = {"class": "C", "pair": "P", "coarse": "H"}[partition]
    return f"{prefix}{group}"


def generate_examples(task: TaskDef, split: str) -> list[Example]:
    """Return the examples of one split of a synthetic task (deterministic for its seed).

    Raises :class:`ConfigError` for a split the task does not have.
    """
    if split not in task.splits:
        raise ConfigError(
            f"synthetic task {task.name!r} has no split {split!r}; known: {', '.join(task.splits)}"
        )
    options = task.reader_options
    groups = _groups(task)
    words = sorted(groups)
    size = int(options["sizes"][split])
    rng = np.random.default_rng(_stable_seed("examples", options["seed"], task.name, split))
    min_len, max_len = int(options["min_length"]), int(options["max_length"])
    examples: list[Example] = []
    if task.type is TaskType.TOKEN_TAGGING:
        for _ in range(size):
            length = int(rng.integers(min_len, max_len + 1))
            tokens = tuple(words[i] for i in rng.integers(0, len(words), size=length))
            tags = tuple(_tag_name(options["partition"], groups[w]) for w in tokens)
            examples.append(TaggedSentence(tokens=tokens, tags=tags))
        return examples
    # Sentence classification: odd lengths so the binary majority never ties.
    odd_lengths = [n for n in range(min_len, max_len + 1) if n % 2 == 1]
    for _ in range(size):
        length = int(rng.choice(odd_lengths))
        drawn = [words[i] for i in rng.integers(0, len(words), size=length)]
        votes = sum(groups[w] for w in drawn)
        label = _tag_name(options["partition"], int(2 * votes > length))
        examples.append(TextExample(text=" ".join(drawn), label=label))
    return examples


def _pair_phi(groups_a: Mapping[str, int], groups_b: Mapping[str, int]) -> float:
    """Return the normalised phi between two partitions' same-group indicators on shared words."""
    shared = sorted(set(groups_a) & set(groups_b))
    if len(shared) < 2:
        return 0.0
    pairs = list(itertools.combinations(shared, 2))
    a = np.array([groups_a[x] == groups_a[y] for x, y in pairs], dtype=float)
    b = np.array([groups_b[x] == groups_b[y] for x, y in pairs], dtype=float)
    pa, pb = a.mean(), b.mean()
    if pa in (0.0, 1.0) or pb in (0.0, 1.0):
        return 0.0
    phi = float(((a * b).mean() - pa * pb) / np.sqrt(pa * (1 - pa) * pb * (1 - pb)))
    lo, hi = sorted((pa, pb))
    # Phi's attainable range depends on the marginals; rescale so +1/-1 mean "as (dis)agreeing
    # as these group sizes allow".
    if phi >= 0:
        bound = np.sqrt(lo * (1 - hi) / (hi * (1 - lo)))
    elif pa + pb <= 1:
        bound = np.sqrt(pa * pb / ((1 - pa) * (1 - pb)))
    else:
        bound = np.sqrt((1 - pa) * (1 - pb) / (pa * pb))
    jaccard = len(shared) / len(set(groups_a) | set(groups_b))
    return round(float(np.clip(phi / bound, -1.0, 1.0)) * jaccard, 6)


def synthetic_family(
    *,
    seed: int = 0,
    n_classes: int = 8,
    words_per_class: int = 12,
    n_classes2: int = 6,
    words_per_class2: int = 8,
    target_train: int = 8,
    aux_train: int = 1000,
    eval_size: int = 300,
    min_length: int = 5,
    max_length: int = 11,
) -> SyntheticFamily:
    """Return the seeded synthetic family: its tasks and their ground-truth relatedness."""
    for name, value in {
        "n_classes": n_classes,
        "words_per_class": words_per_class,
        "n_classes2": n_classes2,
        "words_per_class2": words_per_class2,
        "target_train": target_train,
        "aux_train": aux_train,
        "eval_size": eval_size,
        "min_length": min_length,
    }.items():
        if value < 1:
            raise ConfigError(f"`{name}` must be >= 1, but got {value}")
    if n_classes < 2 or n_classes2 < 2 or n_classes % 2 or n_classes2 % 2:
        raise ConfigError(
            f"`n_classes` and `n_classes2` must be even and >= 2, but got {n_classes} and "
            f"{n_classes2}"
        )
    if max_length < min_length or (max_length == min_length and min_length % 2 == 0):
        raise ConfigError(
            f"`max_length` must be >= min_length ({min_length}) and the range must hold an odd "
            f"length (sentence labels are majorities), but got {max_length}"
        )
    shared_options = {
        "seed": seed,
        "n_classes": n_classes,
        "words_per_class": words_per_class,
        "n_classes2": n_classes2,
        "words_per_class2": words_per_class2,
        "min_length": min_length,
        "max_length": max_length,
    }
    _lexicons(shared_options)  # validates the vocabulary size early
    tasks: dict[str, TaskDef] = {}
    for design in _designs(target_train, aux_train):
        sizes = {"train": design.train_size, "dev": eval_size, "test": eval_size}
        options = {
            **shared_options,
            "lexicon": design.lexicon,
            "partition": design.partition,
            "sizes": sizes,
        }
        tagging = design.type is TaskType.TOKEN_TAGGING
        tasks[design.name] = TaskDef(
            name=design.name,
            type=design.type,
            format="synthetic",
            dataset="synthetic",
            splits={split: SplitSource(file=f"<synthetic:{split}>") for split in _SPLITS},
            label_field="tag" if tagging else "label",
            metrics=("accuracy",) if tagging else ("accuracy", "macro_f1"),
            reader_options=options,
            description=design.description,
        )
    names = tuple(tasks)
    groups = {name: _groups(task) for name, task in tasks.items()}
    matrix = tuple(
        tuple(1.0 if a == b else _pair_phi(groups[a], groups[b]) for b in names) for a in names
    )
    return SyntheticFamily(seed=seed, tasks=tasks, names=names, relatedness=matrix)


_DEFAULT: SyntheticFamily | None = None


def _default_family() -> SyntheticFamily:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = synthetic_family()
    return _DEFAULT


def synthetic_task_names() -> list[str]:
    """Return the names of the default family's tasks."""
    return list(_default_family().names)


def get_synthetic_task(name: str) -> TaskDef:
    """Return the default family's task ``name``; unknown names raise :class:`UnknownNameError`."""
    family = _default_family()
    try:
        return family.tasks[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown synthetic task {name!r}; known: {', '.join(family.names)}"
        ) from None
