"""Each reader on small hand-written files: what it yields and how it reports bad lines."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from taskgraph.errors import ConfigError, DataFormatError, UnknownNameError
from taskgraph.tasks import get_reader
from taskgraph.tasks.readers import Record
from taskgraph.tasks.readers.iob import iob1_to_iob2
from taskgraph.tasks.splits import allocate_parts
from taskgraph.tasks.types import (
    Answer,
    ParsedSentence,
    QAExample,
    TaggedSentence,
    TaskType,
    TextExample,
)

TAG = TaskType.TOKEN_TAGGING
PARSE = TaskType.DEPENDENCY_PARSING


def read(
    path: Path,
    fmt: str,
    text: str | bytes,
    task_type: TaskType = TAG,
    label_field: str = "ner",
    **options: Any,
) -> list[Record]:
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    reader = get_reader(fmt)
    reader.check(task_type, label_field, options)
    return list(reader.read(path, task_type=task_type, label_field=label_field, options=options))


def fails(path: Path, line: int, *args: Any, **options: Any) -> DataFormatError:
    with pytest.raises(DataFormatError) as caught:
        read(path, *args, **options)
    assert caught.value.line == line, str(caught.value)
    assert str(caught.value).startswith(f"{path}:{line}: expected ")
    return caught.value


# -- IOB -------------------------------------------------------------------------------------


def test_iob_sentences_documents_and_blank_tab_lines(tmp_path: Path) -> None:
    f = tmp_path / "a.tsv"
    records = read(
        f,
        "iob",
        "-DOCSTART-\tO\n\nJohn\tB-PER\nlives\tO\n\t\nin\tO\nParis\tB-LOC\n\n\n-DOCSTART-\tO\n\nHi\tO\n",
    )
    assert [r.example for r in records] == [
        TaggedSentence(tokens=("John", "lives"), tags=("B-PER", "O")),
        TaggedSentence(tokens=("in", "Paris"), tags=("O", "B-LOC")),
        TaggedSentence(tokens=("Hi",), tags=("O",)),
    ]
    assert [r.line for r in records] == [3, 6, 12]
    assert [r.group for r in records] == ["doc1", "doc1", "doc2"]


def test_iob_prefix_whitespace_iob1_and_columns(tmp_path: Path) -> None:
    f = tmp_path / "w"
    got = read(f, "iob", "en:R.H.\tB-ORG\nen:Saunders\tI-ORG\n", token_prefix="en:")
    assert got[0].example.tokens == ("R.H.", "Saunders")  # type: ignore[union-attr]
    chnec = "Josef _ CZ I-p\nNovák _ CZ I-p\nPetr _ CZ B-p\na _ CZ O\nPraha _ CZ I-g\n"
    got = read(f, "iob", chnec, separator="whitespace", scheme="iob1")
    assert got[0].example.tags == ("B-p", "I-p", "B-p", "O", "B-g")  # type: ignore[union-attr]
    got = read(f, "iob", "Praha\tB-G\tB-gu\n", tag_column=1)
    assert got[0].example.tags == ("B-G",)  # type: ignore[union-attr]
    got = read(f, "iob", "Praha\tB-G\tB-gu\n", tag_column=2)
    assert got[0].example.tags == ("B-gu",)  # type: ignore[union-attr]
    got = read(f, "iob", "UI\tLS\n-\t:\n''\t''\n", scheme="none", label_field="pos")
    assert got[0].example.tags == ("LS", ":", "''")  # type: ignore[union-attr]


def test_iob1_to_iob2() -> None:
    assert iob1_to_iob2(["I-A", "I-A", "B-A", "O", "I-B", "I-A"]) == [
        "B-A",
        "I-A",
        "B-A",
        "O",
        "B-B",
        "B-A",
    ]


@pytest.mark.parametrize(
    ("text", "line", "options", "expected"),
    [
        ("a\tO\nb\tO\tX\n", 2, {}, "2 columns (as on line 1)"),
        ("a\n", 1, {}, "at least 2 tab-separated columns"),
        ("a\tO\nb\tI-PER\n", 2, {}, "I-PER to continue a PER entity"),
        ("a\tB-PER\nb\tI-LOC\n", 2, {}, "I-LOC to continue a LOC entity"),
        ("a\tO\n\nb\tE-PER\n", 3, {}, "a tag O, B-TYPE or I-TYPE"),
        ("a\tB-\n", 1, {}, "a tag O, B-TYPE or I-TYPE"),
        ("a\tO \n", 1, {}, "a tag O, B-TYPE or I-TYPE"),
        (" \tO\n", 1, {}, "a non-empty token"),
        ("en:a\tO\nb\tO\n", 2, {"token_prefix": "en:"}, "a token starting with 'en:'"),
        ("a\t\n", 1, {"scheme": "none"}, "a non-empty tag"),
    ],
)
def test_iob_errors_name_the_line(
    tmp_path: Path, text: str, line: int, options: Mapping[str, Any], expected: str
) -> None:
    error = fails(tmp_path / "bad.tsv", line, "iob", text, **options)
    assert expected in error.expected


def test_undecodable_bytes_name_their_line(tmp_path: Path) -> None:
    error = fails(tmp_path / "bad.tsv", 2, "iob", b"a\tO\nb\xff\tO\n")
    assert error.expected == "UTF-8 text"


# -- CoNLL-U ---------------------------------------------------------------------------------

CONLLU = (
    "# newdoc id = d1\n# sent_id = 1\n# text = Don't go.\n"
    "1-2\tDon't\t_\t_\t_\t_\t_\t_\t_\t_\n"
    "1\tDo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_\n"
    "2\tn't\tnot\tPART\tRB\t_\t3\tadvmod\t_\t_\n"
    "3\tgo\tgo\tVERB\tVB\t_\t0\troot\t_\t_\n"
    "3.1\tgone\tgo\tVERB\tVB\t_\t_\t_\t3:conj\t_\n"
    "4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_\n"
    "\n"
    "# sent_id = 2\n"
    "1\tYes\tyes\tINTJ\tUH\t_\t0\troot\t_\t_\n"
    "2\t!\t!\tPUNCT\t.\t_\t1\tpunct:x\t_\t_\n"
    "\n"
)


def test_conllu_skips_ranges_and_empty_nodes(tmp_path: Path) -> None:
    records = read(tmp_path / "a.conllu", "conllu", CONLLU, PARSE, "head+deprel")
    assert records[0].example == ParsedSentence(
        tokens=("Do", "n't", "go", "."),
        heads=(3, 3, 0, 3),
        deprels=("aux", "advmod", "root", "punct"),
        upos=("AUX", "PART", "VERB", "PUNCT"),
    )
    assert records[1].example.deprels == ("root", "punct:x")  # type: ignore[union-attr]
    assert [r.line for r in records] == [1, 11]
    assert [r.group for r in records] == ["d1", "d1"]
    tagged = read(tmp_path / "a.conllu", "conllu", CONLLU, TAG, "upos")
    assert tagged[0].example == TaggedSentence(
        tokens=("Do", "n't", "go", "."), tags=("AUX", "PART", "VERB", "PUNCT")
    )
    xpos = read(tmp_path / "a.conllu", "conllu", CONLLU, TAG, "xpos")
    assert xpos[1].example.tags == ("UH", ".")  # type: ignore[union-attr]


def _word(i: int, head: str = "0", deprel: str = "root", upos: str = "NOUN") -> str:
    return f"{i}\tw{i}\t_\t{upos}\t_\t_\t{head}\t{deprel}\t_\t_\n"


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        (_word(1) + "2\tx\n", 2, "10 tab-separated CoNLL-U fields"),
        (_word(1, head="x"), 1, "an integer HEAD"),
        (_word(1, head="-1"), 1, "an integer HEAD"),
        (_word(1) + _word(3, head="1", deprel="dep"), 2, "word ID 2"),
        (_word(1) + _word(2, head="5", deprel="dep") + "\n", 2, "HEAD of word 2 in 0..2"),
        # a word that is its own head, and a cycle 2 -> 3 -> 2: no tree (read silently before)
        (_word(1) + _word(2, head="2", deprel="dep"), 1, "HEADs that form a tree"),
        (
            "\n" + _word(1) + _word(2, head="3", deprel="dep") + _word(3, head="2", deprel="dep"),
            2,
            "HEADs that form a tree",
        ),
        (_word(1, deprel="_"), 1, "a DEPREL"),
        (_word(1, upos="_"), 1, "a UPOS tag"),
        ("a\tb\tc\td\te\tf\tg\th\ti\tj\n", 1, "an ID like 7, 7-8 or 7.1"),
        (_word(1) + "# late comment\n", 2, "a token line or a blank line"),
        ("# only a comment\n\n", 1, "a sentence with words"),
    ],
)
def test_conllu_errors_name_the_line(tmp_path: Path, text: str, line: int, expected: str) -> None:
    error = fails(tmp_path / "bad.conllu", line, "conllu", text, PARSE, "head+deprel")
    assert expected in error.expected


def test_conllu_missing_xpos_is_an_error_for_xpos_tagging(tmp_path: Path) -> None:
    error = fails(tmp_path / "x.conllu", 1, "conllu", _word(1), TAG, "xpos")
    assert "XPOS" in error.expected


def test_conllu_errors_about_a_word_name_its_line_not_the_sentences(tmp_path: Path) -> None:
    # The sentence starts with comments on lines 5-6; its third word is on line 9 (its first
    # line, a comment, was reported before).
    first = "# sent_id = a\n# text = w1\n" + _word(1) + "\n"
    words = _word(1, head="0") + _word(2, head="1", deprel="dep")
    text = first + "# sent_id = b\n# text = w1 w2 w3 w4\n" + words
    bad_head = text + _word(3, head="99", deprel="dep") + _word(4, head="1", deprel="dep")
    error = fails(tmp_path / "h.conllu", 9, "conllu", bad_head + "\n", PARSE, "head+deprel")
    assert str(error) == f"{tmp_path / 'h.conllu'}:9: expected HEAD of word 3 in 0..4, got 99"
    tagged = (_word(1) + _word(2, head="1", deprel="dep")).replace("NOUN\t_", "NOUN\tNN")
    no_xpos = "# sent_id = c\n# text = w1 w2 w3\n" + tagged + _word(3, head="1", deprel="dep")
    error = fails(tmp_path / "x.conllu", 5, "conllu", no_xpos, TAG, "xpos")
    assert str(error) == f"{tmp_path / 'x.conllu'}:5: expected a XPOS tag for word 3, got _"


def _new_york(column: int, value: str) -> str:
    fields = ["1", "New York", "New York", "PROPN", "NNP", "_", "2", "nsubj", "_", "_"]
    fields[column] = value
    return (
        "# text = New York rocks\n"
        + "\t".join(fields)
        + "\n2\trocks\trock\tVERB\tVBZ\t_\t0\troot\t_\t_\n"
    )


def test_conllu_form_and_lemma_may_hold_spaces(tmp_path: Path) -> None:
    # conllu.parse_token_and_metadata splits on two spaces too: the columns shifted
    text = _new_york(1, "New  York").replace("New York\tPROPN", "New  York\tPROPN")
    parsed = read(tmp_path / "a.conllu", "conllu", text, PARSE, "head+deprel")
    assert parsed[0].example == ParsedSentence(
        tokens=("New  York", "rocks"),
        heads=(2, 0),
        deprels=("nsubj", "root"),
        upos=("PROPN", "VERB"),
    )
    for label_field, tags in (("upos", ("PROPN", "VERB")), ("xpos", ("NNP", "VBZ"))):
        tagged = read(tmp_path / "a.conllu", "conllu", text, TAG, label_field)
        assert tagged[0].example == TaggedSentence(tokens=("New  York", "rocks"), tags=tags)


@pytest.mark.parametrize("column", range(10))
def test_conllu_two_spaces_in_any_column_stay_in_that_column(tmp_path: Path, column: int) -> None:
    text = _new_york(column, "a  b")
    if column in (0, 6):  # ID and HEAD must be numbers
        for task_type, label_field in ((PARSE, "head+deprel"), (TAG, "upos"), (TAG, "xpos")):
            error = fails(tmp_path / "bad.conllu", 2, "conllu", text, task_type, label_field)
            assert error.expected == (
                "an ID like 7, 7-8 or 7.1" if column == 0 else "an integer HEAD"
            )
        return
    parsed = read(tmp_path / "a.conllu", "conllu", text, PARSE, "head+deprel")[0].example
    assert isinstance(parsed, ParsedSentence)
    assert parsed.tokens[0] == ("a  b" if column == 1 else "New York")
    assert parsed.upos[0] == ("a  b" if column == 3 else "PROPN")
    assert parsed.deprels[0] == ("a  b" if column == 7 else "nsubj")
    assert parsed.heads == (2, 0)
    xpos = read(tmp_path / "a.conllu", "conllu", text, TAG, "xpos")[0].example
    assert xpos.tags == ("a  b" if column == 4 else "NNP", "VBZ")  # type: ignore[union-attr]


# -- SQuAD -----------------------------------------------------------------------------------


def _squad(qas: list[dict[str, Any]], context: str = "Paris is in France.") -> str:
    data = {
        "version": "v2.0",
        "data": [{"title": "T", "paragraphs": [{"context": context, "qas": qas}]}],
    }
    return json.dumps(data, indent=1)


def test_squad_v2_and_v1(tmp_path: Path) -> None:
    text = _squad(
        [
            {
                "id": "q1",
                "question": "Where?",
                "answers": [{"text": "France", "answer_start": 12}],
                "is_impossible": False,
            },
            {
                "id": "q2",
                "question": "Who?",
                "answers": [],
                "is_impossible": True,
                "plausible_answers": [{"text": "Paris", "answer_start": 0}],
            },
        ]
    )
    records = read(tmp_path / "s.json", "squad", text, TaskType.EXTRACTIVE_QA, "answers")
    assert records[0].example == QAExample(
        id="q1",
        question="Where?",
        context="Paris is in France.",
        answers=(Answer(text="France", start=12),),
        is_impossible=False,
        group="T",
    )
    assert records[1].example.is_impossible and not records[1].example.answers  # type: ignore[union-attr]
    assert records[0].line == 10  # the line where the question's object opens
    v1 = _squad(
        [{"id": "abc:1", "question": "Where?", "answers": [{"text": "Paris", "answer_start": 0}]}]
    )
    by_id = read(
        tmp_path / "s.json", "squad", v1, TaskType.EXTRACTIVE_QA, "answers", group_by="id_prefix"
    )
    assert by_id[0].group == "abc" and by_id[0].example.group == "abc"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("qas", "expected"),
    [
        (
            [{"id": "q", "question": "W?", "answers": [{"text": "France", "answer_start": 11}]}],
            "answer 'France' at offset 11",
        ),
        ([{"id": "q", "question": "W?", "answers": []}], "at least one answer"),
        (
            [
                {
                    "id": "q",
                    "question": "W?",
                    "answers": [{"text": "Paris", "answer_start": 0}],
                    "is_impossible": True,
                }
            ],
            "no answers",
        ),
        (
            [{"id": "q", "question": "W?", "answers": [{"text": "Paris", "answer_start": "0"}]}],
            "answer_start to be int",
        ),
        ([{"id": "q", "answers": []}], "key 'question'"),
        (
            [{"id": "q", "question": "W?", "answers": [], "is_impossible": "yes"}],
            "is_impossible to be true or false",
        ),
        (
            [{"id": "q", "question": "W?", "answers": [{"text": "Paris", "answer_start": 0}]}] * 2,
            "a new question id",
        ),
    ],
)
def test_squad_errors(tmp_path: Path, qas: list[dict[str, Any]], expected: str) -> None:
    with pytest.raises(DataFormatError) as caught:
        read(tmp_path / "s.json", "squad", _squad(qas), TaskType.EXTRACTIVE_QA, "answers")
    assert expected in caught.value.expected
    assert caught.value.line is not None and caught.value.line > 1


def test_squad_invalid_json_names_the_line(tmp_path: Path) -> None:
    error = fails(
        tmp_path / "s.json",
        3,
        "squad",
        '{"data": [\n\n  {"title": }]}',
        TaskType.EXTRACTIVE_QA,
        "answers",
    )
    assert error.expected == "valid JSON"


# -- TSV -------------------------------------------------------------------------------------


def test_tsv_header_names_bom_quotes_and_unlabeled(tmp_path: Path) -> None:
    text = '\ufeffs1\ts2\tlabel\tidx\nHe said "hi.\tA "quote\t1\t0\nX\tY\t-1\t1\n'
    records = read(
        tmp_path / "r.tsv",
        "tsv",
        text,
        TaskType.SENTENCE_PAIR_CLASSIFICATION,
        "label",
        header=True,
        text_column="s1",
        pair_column="s2",
        label_column="label",
        label_names={"0": "entailment", "1": "not_entailment"},
        unlabeled_value="-1",
    )
    assert [r.example for r in records] == [
        TextExample(text='He said "hi.', text_pair='A "quote', label="not_entailment"),
        TextExample(text="X", text_pair="Y", label=None),
    ]
    assert [r.line for r in records] == [2, 3]


def test_files_joined_with_cat_lose_every_byte_order_mark_but_keep_one_inside_a_token(
    tmp_path: Path,
) -> None:
    # `cat a.conll b.conll`, each saved with a BOM: the second one starts line 4.  WNUT-17's
    # dev file has a token ending in U+FEFF ("Dubbz\ufeff"): that one is text and stays.
    text = "\ufeffJohn\tB-PER\nsleeps\tO\n\n\ufeffMary\tB-PER\nDubbz\ufeff\tO\n"
    records = read(tmp_path / "joined.conll", "iob", text, TAG, "ner")
    assert [r.example.tokens for r in records] == [("John", "sleeps"), ("Mary", "Dubbz\ufeff")]
    assert [r.example.tags for r in records] == [("B-PER", "O"), ("B-PER", "O")]


def test_tsv_csv_quoting(tmp_path: Path) -> None:
    text = 'text\tlabel\n"a\ttab and ""quotes"""\tpos\n'
    records = read(
        tmp_path / "q.tsv",
        "tsv",
        text,
        TaskType.SENTENCE_CLASSIFICATION,
        "label",
        header=True,
        quoting="csv",
        text_column="text",
        label_column="label",
    )
    assert records[0].example == TextExample(text='a\ttab and "quotes"', label="pos")


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("a\t1\nb\t1\textra\n", 2, "2 tab-separated fields (as on line 1)"),
        ("a\t1\nb\t7\n", 2, "a label among 0, 1"),
        ("a\t1\n \t0\n", 2, "a non-empty text"),
        ("a\n", 1, "at least 2 fields (label_column = 1)"),
    ],
)
def test_tsv_errors(tmp_path: Path, text: str, line: int, expected: str) -> None:
    error = fails(
        tmp_path / "c.tsv",
        line,
        "tsv",
        text,
        TaskType.SENTENCE_CLASSIFICATION,
        "label",
        text_column=0,
        label_column=1,
        label_names={"0": "neg", "1": "pos"},
    )
    assert expected in error.expected


def test_tsv_header_must_have_the_named_columns(tmp_path: Path) -> None:
    error = fails(
        tmp_path / "h.tsv",
        1,
        "tsv",
        "sentence\tlabel\nx\t1\n",
        TaskType.SENTENCE_CLASSIFICATION,
        "label",
        header=True,
        text_column="text",
        label_column="label",
    )
    assert "column 'text'" in error.expected


# -- options ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "task_type", "label_field", "options", "message"),
    [
        ("iob", TAG, "ner", {"scheme": "bioes"}, "`reader_options.scheme` must be one of"),
        ("iob", TAG, "ner", {"colour": 1}, "`reader_options.colour` is not an option"),
        ("iob", TAG, "ner", {"token_column": True}, "`reader_options.token_column` must be int"),
        ("iob", PARSE, "ner", {}, "cannot be read from format 'iob'"),
        ("conllu", PARSE, "upos", {}, "`label_field` for dependency_parsing"),
        (
            "tsv",
            TaskType.SENTENCE_CLASSIFICATION,
            "label",
            {"label_column": 1},
            "text_column` is required",
        ),
        (
            "tsv",
            TaskType.SENTENCE_CLASSIFICATION,
            "label",
            {"text_column": "s", "label_column": 1},
            "but `header` is false",
        ),
        (
            "tsv",
            TaskType.SENTENCE_PAIR_CLASSIFICATION,
            "label",
            {"text_column": 0, "label_column": 1},
            "pair_column",
        ),
        ("squad", TaskType.EXTRACTIVE_QA, "answers", {"group_by": "x"}, "group_by"),
    ],
)
def test_reader_option_errors(
    fmt: str, task_type: TaskType, label_field: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        get_reader(fmt).check(task_type, label_field, options)


def test_unknown_format_lists_the_known_ones() -> None:
    with pytest.raises(UnknownNameError, match="known: conllu, iob, squad, tsv"):
        get_reader("xml")


# -- carving units ---------------------------------------------------------------------------


def _conllu_sentence(*words: str) -> str:
    lines = [
        f"{i}\t{w}\t_\tX\t_\t_\t{0 if i == 1 else 1}\t{'root' if i == 1 else 'dep'}\t_\t_"
        for i, w in enumerate(words, 1)
    ]
    return "\n".join(lines) + "\n\n"


def test_conllu_documents_sharing_a_sentence_are_carved_together(tmp_path: Path) -> None:
    shared = _conllu_sentence("The", "same", "sentence")
    text = (
        "# newdoc id = d1\n"
        + shared
        + _conllu_sentence("Only", "in", "one")
        + "# newdoc id = d2\n"
        + _conllu_sentence("Only", "in", "two")
        + shared
    )
    records = read(tmp_path / "docs.conllu", "conllu", text, PARSE, "head+deprel")
    assert [r.group for r in records] == ["d1", "d1", "d2", "d2"]
    assert records[0].texts == records[3].texts == ("The same sentence",)
    # two documents of two sentences, halved: only the shared sentence keeps them together
    parts = allocate_parts([(r.group, r.texts) for r in records], [0.5, 0.5])
    assert len(set(parts)) == 1


def test_squad_untitled_articles_are_separate_groups(tmp_path: Path) -> None:
    articles = [
        {
            "paragraphs": [
                {
                    "context": f"context {a}",
                    "qas": [
                        {
                            "id": f"q{a}",
                            "question": "Q?",
                            "answers": [{"text": "context", "answer_start": 0}],
                        }
                    ],
                }
            ]
        }
        for a in range(3)
    ]
    records = read(
        tmp_path / "u.json",
        "squad",
        json.dumps({"data": articles}),
        TaskType.EXTRACTIVE_QA,
        "answers",
    )
    assert len({r.group for r in records}) == 3
    assert len({r.example.group for r in records}) == 3  # type: ignore[union-attr]


def test_tsv_csv_stray_quote_names_its_line(tmp_path: Path) -> None:
    error = fails(
        tmp_path / "s.tsv",
        2,
        "tsv",
        'a\t1\n"b" c\t0\nd\t1\n',
        TaskType.SENTENCE_CLASSIFICATION,
        "label",
        quoting="csv",
        text_column=0,
        label_column=1,
    )
    assert error.expected == "a well-quoted TSV row"
