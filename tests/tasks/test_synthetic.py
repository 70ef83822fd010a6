"""The synthetic family: seeded, single-wordpiece words, labels from latent partitions."""

from __future__ import annotations

from collections import defaultdict

import pytest

from taskgraph.errors import ConfigError, UnknownNameError
from taskgraph.tasks.synthetic import (
    WORDS,
    generate_examples,
    get_synthetic_task,
    synthetic_family,
    synthetic_task_names,
)
from taskgraph.tasks.types import TaggedSentence, TaskType, TextExample


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    from taskgraph.models.encoders import minilm_path

    return AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)


def test_every_word_is_one_wordpiece_of_the_minilm_tokenizer(tokenizer) -> None:  # type: ignore[no-untyped-def]
    assert len(set(WORDS)) == len(WORDS) == 200
    split = {w: tokenizer.tokenize(w) for w in WORDS}
    assert {w: t for w, t in split.items() if t != [w]} == {}


def test_family_names_types_and_format() -> None:
    family = synthetic_family()
    assert family.names == tuple(synthetic_task_names())
    assert all(name.startswith("synth_") for name in family.names)
    assert {t.format for t in family.tasks.values()} == {"synthetic"}
    assert family.tasks["synth_target"].type is TaskType.TOKEN_TAGGING
    assert family.tasks["synth_cls_related"].type is TaskType.SENTENCE_CLASSIFICATION
    assert get_synthetic_task("synth_target") == family.tasks["synth_target"]


def test_unknown_synthetic_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownNameError, match="known: synth_target, synth_related"):
        get_synthetic_task("synth_nope")


def test_generation_is_seeded_and_sized() -> None:
    task = get_synthetic_task("synth_target")
    first, again = generate_examples(task, "train"), generate_examples(task, "train")
    assert first == again
    assert len(first) == task.reader_options["sizes"]["train"]
    other = synthetic_family(seed=1).tasks["synth_target"]
    assert generate_examples(other, "train") != first
    assert generate_examples(task, "dev") != generate_examples(task, "test")
    with pytest.raises(ConfigError, match="no split 'validation'"):
        generate_examples(task, "validation")


def _word_labels(examples: list[TaggedSentence]) -> dict[str, set[str]]:
    labels: dict[str, set[str]] = defaultdict(set)
    for sentence in examples:
        for word, tag in zip(sentence.tokens, sentence.tags, strict=True):
            labels[word].add(tag)
    return labels


def test_tags_are_functions_of_the_word_and_partitions_relate_as_designed() -> None:
    family = synthetic_family()
    target = _word_labels(generate_examples(family.tasks["synth_target"], "dev"))
    related = _word_labels(generate_examples(family.tasks["synth_related"], "dev"))
    conflict = _word_labels(generate_examples(family.tasks["synth_conflict"], "dev"))
    for labels in (target, related, conflict):
        assert all(len(tags) == 1 for tags in labels.values())
    tag = {
        name: {w: next(iter(t)) for w, t in labels.items()}
        for name, labels in [("target", target), ("related", related), ("conflict", conflict)]
    }
    shared = tag["target"].keys() & tag["related"].keys() & tag["conflict"].keys()
    assert set(tag["target"].values()) == {"H0", "H1"}
    # related refines the target: each fine class lies inside one target tag
    inside: dict[str, set[str]] = defaultdict(set)
    for word in shared:
        inside[tag["related"][word]].add(tag["target"][word])
    assert len(inside) == 8 and all(len(v) == 1 for v in inside.values())
    # conflict pairs words of opposite target tags
    pairs: dict[str, set[str]] = defaultdict(set)
    for word in shared:
        pairs[tag["conflict"][word]].add(word)
    both = [words for words in pairs.values() if len(words) == 2]
    assert both and all({tag["target"][w] for w in words} == {"H0", "H1"} for words in both)
    assert all(len(words) <= 2 for words in pairs.values())
    # the unrelated task uses other words
    unrelated = _word_labels(generate_examples(family.tasks["synth_unrelated"], "dev"))
    assert not unrelated.keys() & target.keys()


def test_classification_label_is_the_majority_group() -> None:
    family = synthetic_family()
    tagged = _word_labels(generate_examples(family.tasks["synth_target"], "train"))
    examples = generate_examples(family.tasks["synth_cls_related"], "dev")
    assert all(isinstance(e, TextExample) for e in examples)
    checked = 0
    for example in examples:
        words = example.text.split()
        if not all(w in tagged for w in words):
            continue
        high = sum(next(iter(tagged[w])) == "H1" for w in words)
        assert example.label == f"H{int(2 * high > len(words))}"
        checked += 1
    assert checked > 0
    labels = {e.label for e in examples}
    assert labels == {"H0", "H1"}


def test_relatedness_matrix_signs() -> None:
    family = synthetic_family()
    n = len(family.names)
    for i in range(n):
        assert family.relatedness[i][i] == 1.0
        for j in range(n):
            assert family.relatedness[i][j] == family.relatedness[j][i]
    assert family.related("synth_target", "synth_related") == 1.0
    assert family.related("synth_target", "synth_cls_related") > 0.5
    assert family.related("synth_target", "synth_conflict") == -1.0
    assert family.related("synth_target", "synth_unrelated") == 0.0
    assert family.related("synth_unrelated", "synth_cls_unrelated") > 0.5
    with pytest.raises(UnknownNameError):
        family.related("synth_target", "nope")


def test_bad_family_arguments_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="target_train"):
        synthetic_family(target_train=0)
    with pytest.raises(ConfigError, match="words"):
        synthetic_family(n_classes=20, words_per_class=20)
    with pytest.raises(ConfigError, match="even"):
        synthetic_family(n_classes=5)
