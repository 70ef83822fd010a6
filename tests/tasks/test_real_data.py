"""Every dataset file of the data directory parses completely, with the counts of SOURCE.md.

The expected numbers are read from each dataset's ``SOURCE.md`` ("Splits and counts" table:
the sentences / examples / questions column per file), so the test checks the readers against
the curator's independent counts.  Carved splits must add up to their file's count, be
non-empty, and never share a text (or a group) across parts.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from taskgraph.tasks import (
    BUILTIN_TASKS,
    QAExample,
    TaskDef,
    count_examples,
    iter_examples,
    label_vocabulary,
    parse_carve,
)
from taskgraph.tasks.types import ParsedSentence, TaggedSentence, TextExample

_COUNT_COLUMNS = ("sentences", "examples", "questions")


def source_counts(data_dir: Path) -> dict[str, int]:
    """Return ``dataset/file -> count`` from every SOURCE.md 'Splits and counts' table."""
    counts: dict[str, int] = {}
    for source in sorted(data_dir.glob("*/SOURCE.md")):
        section = source.read_text(encoding="utf-8").split("## Splits and counts", 1)[1]
        section = section.split("\n## ", 1)[0]
        column: int | None = None
        for line in section.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not line.startswith("|") or len(cells) < 3:
                continue
            if cells[0] == "split":
                column = next(i for i, c in enumerate(cells) if c in _COUNT_COLUMNS)
                continue
            match = re.fullmatch(r"`([^`]+)`", cells[1])
            # a few tables carry a stray row about SOURCE.md itself; it is not a data file
            if column is None or match is None or match.group(1) == "SOURCE.md":
                continue
            counts[f"{source.parent.name}/{match.group(1)}"] = int(cells[column].replace(",", ""))
    return counts


@pytest.fixture(scope="module")
def expected(data_dir: Path) -> dict[str, int]:
    counts = source_counts(data_dir)
    assert len(counts) >= 90, "SOURCE.md tables were not found"
    return counts


def test_source_tables_are_parsed(expected: dict[str, int]) -> None:
    # spot checks against numbers copied by hand from three SOURCE.md files
    assert expected["ud_en_ewt/en_ewt-ud-train.conllu"] == 12544
    assert expected["squad2_dev_half/dev-v2.0.cs224n-half.json"] == 6078
    assert expected["rte/test.tsv"] == 3000


def test_every_data_file_is_read_by_a_task(expected: dict[str, int]) -> None:
    used = {source.file for task in BUILTIN_TASKS.values() for source in task.splits.values()}
    assert set(expected) - used == set()
    datasets = {file.split("/")[0] for file in expected}
    assert len(datasets) == 33
    assert datasets == {task.dataset for task in BUILTIN_TASKS.values()}


@pytest.mark.parametrize("name", sorted(BUILTIN_TASKS))
def test_split_sizes_equal_source_counts(
    name: str, data_dir: Path, expected: dict[str, int]
) -> None:
    task = BUILTIN_TASKS[name]
    per_file: dict[str, int] = defaultdict(int)
    for split, source in task.splits.items():
        n = count_examples(task, split, data_dir=data_dir)  # parses the whole file when cold
        assert n > 0, f"{name} {split} is empty"
        per_file[source.file] += n
    for file, total in per_file.items():
        assert total == expected[file], (
            f"{name}: {file} has {total} examples, SOURCE.md says {expected[file]}"
        )


# SOURCE.md's name for a split -> the catalog's (README naming rule: dtest is dev, etest test)
_SPLIT_NAMES = {
    "train": "train",
    "dev": "dev",
    "test": "test",
    "dtest (dev)": "dev",
    "etest (test)": "test",
    "dev (in-domain)": "dev",
    "dev (out-of-domain)": "dev_ood",
}


def source_splits(data_dir: Path) -> dict[str, str]:
    """Return ``dataset/file -> split`` from the first column of every SOURCE.md table."""
    splits: dict[str, str] = {}
    for source in sorted(data_dir.glob("*/SOURCE.md")):
        section = source.read_text(encoding="utf-8").split("## Splits and counts", 1)[1]
        for line in section.split("\n## ", 1)[0].splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            match = re.fullmatch(r"`([^`]+)`", cells[1]) if len(cells) >= 3 else None
            if line.startswith("|") and match and match.group(1) != "SOURCE.md":
                splits[f"{source.parent.name}/{match.group(1)}"] = cells[0]
    return splits


@pytest.mark.parametrize("name", sorted(BUILTIN_TASKS))
def test_whole_file_splits_read_the_file_source_md_names(name: str, data_dir: Path) -> None:
    upstream = source_splits(data_dir)
    task = BUILTIN_TASKS[name]
    whole = {split: s.file for split, s in task.splits.items() if s.select is None}
    for split, file in whole.items():
        wanted = "test" if split == "test_unlabeled" else split  # RTE's hidden-label test
        assert _SPLIT_NAMES[upstream[file]] == wanted, f"{name} {split} reads {file}"


def test_split_files_of_named_tasks() -> None:
    # copied by hand from the SOURCE.md tables
    def files(name: str) -> dict[str, str]:
        return {split: s.file for split, s in BUILTIN_TASKS[name].splits.items()}

    cnec = {
        "train": "cs_cnec2/train.iob",
        "dev": "cs_cnec2/dtest.iob",
        "test": "cs_cnec2/etest.iob",
    }
    assert files("cs_cnec2_ner") == files("cs_cnec2_ner_fine") == cnec
    assert files("wnut17") == {
        "train": "wnut17/wnut17train.conll",
        "dev": "wnut17/emerging.dev.conll",
        "test": "wnut17/emerging.test.annotated",
    }
    assert files("cola") == {
        "train": "cola/in_domain_train.tsv",
        "dev": "cola/in_domain_dev.tsv",
        "dev_ood": "cola/out_of_domain_dev.tsv",
    }


# Sizes of the carved parts.  Each file's parts add up to its SOURCE.md count (checked below);
# the parts themselves are the carve rule's output (whole groups: squad2 has only 16 articles,
# so its parts are far from 70/15/15), pinned so that a changed fraction, part order or
# allocation shows up.
_CARVED_SIZES = {
    "bioasq_factoid": {"train": 1090, "dev": 359, "test": 360},
    "bioasq_yesno": {"train": 656, "dev": 72},
    "jnlpba": {"train": 1395, "dev": 344},
    "mrpc": {"train": 3669, "dev": 407},
    "squad2": {"train": 4607, "dev": 629, "test": 842},
    "tr_ner_tur2003": {"train": 22332, "dev": 2481},
    "ud_cs_fictree_deps": {"train": 1154, "dev": 155},
    "ud_cs_fictree_upos": {"train": 1154, "dev": 155},
}


@pytest.mark.parametrize("name", sorted(_CARVED_SIZES))
def test_carved_part_sizes(name: str, data_dir: Path, expected: dict[str, int]) -> None:
    task = BUILTIN_TASKS[name]
    carved = {split: s for split, s in task.splits.items() if s.select is not None}
    sizes = {split: count_examples(task, split, data_dir=data_dir) for split in carved}
    assert sizes == _CARVED_SIZES[name]
    (file,) = {s.file for s in carved.values()}
    assert sum(sizes.values()) == expected[file]


@pytest.mark.parametrize(
    ("name", "split", "first", "distribution"),
    [
        # the first data row of the file and SOURCE.md's label distribution, with the meaning
        # of 0/1 that SOURCE.md gives (sst2: 1 positive; cola: 1 acceptable; bioasq_yesno:
        # 1 = yes; rte: 0 = entailment, 1 = not_entailment)
        (
            "sst2",
            "test",
            ("it 's a charming and often affecting journey . ", "positive"),
            {"negative": 428, "positive": 444},
        ),
        (
            "cola",
            "dev",
            ("The sailors rode the breeze clear of the rocks.", "acceptable"),
            {"unacceptable": 162, "acceptable": 365},
        ),
        (
            "bioasq_yesno",
            "test",
            (
                "Is statin use associated with improved outcomes after aneurysmal subarachnoid "
                "hemorrhage?",
                "yes",
            ),
            {"no": 26, "yes": 102},
        ),
        (
            "rte",
            "dev",
            (
                "Dana Reeve, the widow of the actor Christopher Reeve, has died of lung cancer "
                "at age 44, according to the Christopher Reeve Foundation.",
                "not_entailment",
            ),
            {"entailment": 146, "not_entailment": 131},
        ),
    ],
)
def test_label_names_follow_source_md(
    name: str,
    split: str,
    first: tuple[str, str],
    distribution: dict[str, int],
    data_dir: Path,
) -> None:
    examples = list(iter_examples(BUILTIN_TASKS[name], split, data_dir=data_dir))
    assert isinstance(examples[0], TextExample)
    assert (examples[0].text, examples[0].label) == first
    assert dict(Counter(e.label for e in examples if isinstance(e, TextExample))) == distribution


def _texts(example: object) -> set[str]:
    if isinstance(example, (TaggedSentence, ParsedSentence)):
        return {" ".join(example.tokens)}
    if isinstance(example, QAExample):
        # the id_prefix grouping (BioASQ) keeps a repeated question on one side too
        return {example.context, "question: " + example.question}
    assert isinstance(example, TextExample)
    return {example.text} | ({example.text_pair} if example.text_pair else set())


_CARVED = sorted(
    name
    for name, task in BUILTIN_TASKS.items()
    if any(s.select for s in task.splits.values()) and not name.endswith("_upos")
)


@pytest.mark.parametrize("name", _CARVED)
def test_carved_splits_share_no_text_or_group(name: str, data_dir: Path) -> None:
    task: TaskDef = BUILTIN_TASKS[name]
    texts: dict[str, set[str]] = {}
    groups: dict[str, set[str]] = {}
    for split, source in task.splits.items():
        if source.select is None:
            continue
        parse_carve(source.select)
        examples = list(iter_examples(task, split, data_dir=data_dir))
        assert len(examples) == count_examples(task, split, data_dir=data_dir)
        texts[split] = set().union(*(_texts(e) for e in examples))
        groups[split] = {e.group for e in examples if isinstance(e, QAExample)}
    splits = sorted(texts)
    assert len(splits) >= 2
    for i, a in enumerate(splits):
        for b in splits[i + 1 :]:
            assert not texts[a] & texts[b], f"{name}: {a} and {b} share text"
            assert not groups[a] & groups[b], f"{name}: {a} and {b} share a group"


def test_carving_is_deterministic(data_dir: Path) -> None:
    task = BUILTIN_TASKS["squad2"]
    first = [e.id for e in iter_examples(task, "dev", data_dir=data_dir)]  # type: ignore[union-attr]
    again = [e.id for e in iter_examples(task, "dev", data_dir=data_dir)]  # type: ignore[union-attr]
    assert first == again and first


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        (
            "cs_chnec_ner",
            ["B-g", "B-i", "B-o", "B-p", "B-t", "I-g", "I-i", "I-o", "I-p", "I-t", "O"],
        ),
        ("cs_cnec2_ner", sorted([f"{p}-{t}" for p in "BI" for t in "AGIMNOPT"] + ["O"])),
        ("wikiann_en_ner", ["B-LOC", "B-ORG", "B-PER", "I-LOC", "I-ORG", "I-PER", "O"]),
        ("rte", ["entailment", "not_entailment"]),
        ("squad2", []),
    ],
)
def test_label_sets_match_source(name: str, labels: list[str], data_dir: Path) -> None:
    # label sets as listed in the datasets' SOURCE.md (CHNEC's IOB1 I- starts become B-)
    assert label_vocabulary(BUILTIN_TASKS[name], data_dir=data_dir) == labels


def test_ud_upos_labels_and_parsing_relations(data_dir: Path) -> None:
    upos = label_vocabulary(BUILTIN_TASKS["ud_tr_imst_upos"], data_dir=data_dir)
    # SOURCE.md: 14 UPOS observed
    assert upos == sorted(
        [
            "ADJ",
            "ADP",
            "ADV",
            "AUX",
            "CCONJ",
            "DET",
            "INTJ",
            "NOUN",
            "NUM",
            "PRON",
            "PROPN",
            "PUNCT",
            "VERB",
            "X",
        ]
    )
    deprels = label_vocabulary(BUILTIN_TASKS["ud_tr_imst_deps"], data_dir=data_dir)
    assert "root" in deprels and "nsubj" in deprels and "PUNCT" not in deprels


def test_coarse_and_fine_cnec_label_sets_stay_apart(data_dir: Path) -> None:
    # one set of files, two tag columns: the label sets must not share a memo or cache entry
    fine = label_vocabulary(BUILTIN_TASKS["cs_cnec2_ner_fine"], data_dir=data_dir)
    coarse = label_vocabulary(BUILTIN_TASKS["cs_cnec2_ner"], data_dir=data_dir)
    assert coarse == sorted([f"{p}-{t}" for p in "BI" for t in "AGIMNOPT"] + ["O"])  # SOURCE.md
    assert len(fine) > len(coarse) and {"B-pf", "B-gu", "B-ic"} <= set(fine)
