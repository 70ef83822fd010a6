"""Reader behaviours the mutation audit of the readers found unpinned.

Each test is about what a user would get from a real-looking file: the examples themselves
(Windows line endings, empty nodes, documents, a sentence right before ``-DOCSTART-``) or the
one-line ``file:line: expected ..., got ...`` error for a malformed one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from taskgraph.errors import ConfigError, DataFormatError
from taskgraph.tasks import get_reader
from taskgraph.tasks.readers import Record
from taskgraph.tasks.readers.base import MAX_LINE_CHARS
from taskgraph.tasks.types import ParsedSentence, TaggedSentence, TaskType, TextExample

TAG = TaskType.TOKEN_TAGGING
PARSE = TaskType.DEPENDENCY_PARSING
QA = TaskType.EXTRACTIVE_QA
SENTENCE = TaskType.SENTENCE_CLASSIFICATION
PAIR = TaskType.SENTENCE_PAIR_CLASSIFICATION


def read(
    path: Path,
    fmt: str,
    content: str | bytes,
    task_type: TaskType,
    label_field: str,
    **options: Any,
) -> list[Record]:
    """Return the records ``fmt`` reads from ``content`` written to ``path``."""
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    reader = get_reader(fmt)
    reader.check(task_type, label_field, options)
    return list(reader.read(path, task_type=task_type, label_field=label_field, options=options))


def fails(
    path: Path,
    line: int,
    fmt: str,
    content: str | bytes,
    task_type: TaskType,
    label_field: str,
    **options: Any,
) -> DataFormatError:
    """Return the DataFormatError reading ``content`` raises, checking it names ``line``."""
    with pytest.raises(DataFormatError) as caught:
        read(path, fmt, content, task_type, label_field, **options)
    assert caught.value.line == line, str(caught.value)
    assert str(caught.value).startswith(f"{path}:{line}: expected ")
    assert "\n" not in str(caught.value)
    return caught.value


def _word(i: int, form: str, head: int, deprel: str) -> str:
    return f"{i}\t{form}\t_\tNOUN\tNN\t_\t{head}\t{deprel}\t_\t_\n"


def _sentence(*forms: str) -> str:
    return "".join(
        _word(i, form, 0 if i == 1 else 1, "root" if i == 1 else "dep")
        for i, form in enumerate(forms, 1)
    )


# -- every line-based reader -----------------------------------------------------------------

_CRLF_CASES = [
    pytest.param(
        "tsv",
        "good film\tpos\nbad film\tneg\n",
        SENTENCE,
        "label",
        {"text_column": 0, "label_column": 1},
        id="tsv-free-labels",
    ),
    pytest.param("iob", "John\tB-PER\nsleeps\tO\n\nHi\tO\n", TAG, "ner", {}, id="iob2"),
    pytest.param("iob", "The\tDT\ndog\tNN\n", TAG, "pos", {"scheme": "none"}, id="iob-scheme-none"),
    pytest.param(
        "conllu", "# text = a b\n" + _sentence("a", "b") + "\n", TAG, "xpos", {}, id="conllu"
    ),
]


@pytest.mark.parametrize(("fmt", "content", "task_type", "label_field", "options"), _CRLF_CASES)
def test_windows_line_endings_give_the_same_examples(
    tmp_path: Path,
    fmt: str,
    content: str,
    task_type: TaskType,
    label_field: str,
    options: dict[str, Any],
) -> None:
    # A file saved on Windows must not turn "pos" into the label "pos\r" (or a tag error).
    unix = read(tmp_path / "lf", fmt, content, task_type, label_field, **options)
    windows = read(
        tmp_path / "crlf", fmt, content.replace("\n", "\r\n"), task_type, label_field, **options
    )
    assert [r.example for r in windows] == [r.example for r in unix]
    assert [r.line for r in windows] == [r.line for r in unix]


def test_a_line_of_exactly_the_bound_is_read_and_one_more_character_is_not(
    tmp_path: Path,
) -> None:
    width = MAX_LINE_CHARS - len("\t1")
    text = ("abcd " * (width // 5 + 1))[:width]
    assert not text.endswith(" ") and len(text + "\t1") == MAX_LINE_CHARS
    options = {"text_column": 0, "label_column": 1}
    records = read(tmp_path / "long.tsv", "tsv", f"x\t0\n{text}\t1\n", SENTENCE, "label", **options)
    assert records[1].example == TextExample(text=text, label="1")
    error = fails(
        tmp_path / "long.tsv", 2, "tsv", f"x\t0\n{text}a\t1\n", SENTENCE, "label", **options
    )
    assert error.expected == f"a line of at most {MAX_LINE_CHARS} characters"


def test_an_undecodable_byte_is_reported_with_its_column(tmp_path: Path) -> None:
    error = fails(tmp_path / "bad.tsv", 2, "iob", b"a\tO\nab\t\xffO\n", TAG, "ner")
    assert error.got == "undecodable byte at column 4"


# -- CoNLL-U ---------------------------------------------------------------------------------


def test_conllu_empty_node_before_the_first_word_is_skipped(tmp_path: Path) -> None:
    # UD numbers an empty node before word 1 as 0.1 (an elided predicate at the very start)
    text = (
        "# text = He home\n"
        "0.1\twent\tgo\tVERB\t_\t_\t_\t_\t0:root\t_\n" + _sentence("He", "home") + "\n"
    )
    records = read(tmp_path / "e.conllu", "conllu", text, PARSE, "head+deprel")
    assert records[0].example == ParsedSentence(
        tokens=("He", "home"), heads=(0, 1), deprels=("root", "dep"), upos=("NOUN", "NOUN")
    )


@pytest.mark.parametrize("form", ["", " dog", "dog "])
def test_conllu_form_must_be_non_empty_without_outer_spaces(tmp_path: Path, form: str) -> None:
    text = "# text = the dog\n" + _word(1, "the", 0, "root") + _word(2, form, 1, "dep") + "\n"
    error = fails(tmp_path / "f.conllu", 3, "conllu", text, TAG, "upos")
    assert error.expected == "a non-empty FORM without outer spaces"
    assert error.got == repr(form)


def test_conllu_newdoc_without_an_id_still_starts_a_document(tmp_path: Path) -> None:
    # The id of `# newdoc` is optional in UD; its sentences must still be carved together.
    text = (
        "# newdoc\n"
        + _sentence("a", "b")
        + "\n"
        + _sentence("c", "d")
        + "\n# newdoc\n"
        + _sentence("e", "f")
        + "\n"
        + _sentence("g", "h")
        + "\n"
    )
    groups = [r.group for r in read(tmp_path / "d.conllu", "conllu", text, TAG, "upos")]
    assert groups[0] == groups[1] != groups[2] == groups[3]
    assert all(groups)


def test_conllu_comments_need_no_space_and_blank_lines_may_hold_whitespace(tmp_path: Path) -> None:
    # "#sent_id=2" is a comment too, and a separator line left with spaces still ends a sentence
    text = "#sent_id=1\n" + _sentence("a", "b") + " \t\n#sent_id=2\n" + _sentence("c") + "\n"
    records = read(tmp_path / "c.conllu", "conllu", text, TAG, "upos")
    assert [(r.line, r.example.tokens) for r in records] == [  # type: ignore[union-attr]
        (1, ("a", "b")),
        (5, ("c",)),
    ]


@pytest.mark.parametrize("word_id", ["01", "\u0661", "1.0", "1-"])
def test_conllu_malformed_word_ids_are_refused(tmp_path: Path, word_id: str) -> None:
    line = _word(1, "a", 0, "root").replace("1", word_id, 1)
    error = fails(tmp_path / "i.conllu", 2, "conllu", "# text = a\n" + line, TAG, "upos")
    assert (error.expected, error.got) == ("an ID like 7, 7-8 or 7.1", repr(word_id))


# -- IOB -------------------------------------------------------------------------------------


def test_iob_sentence_right_before_docstart_is_kept_apart(tmp_path: Path) -> None:
    # no blank line before -DOCSTART-: the sentence ends there, it is neither lost nor joined
    text = "John\tB-PER\nsleeps\tO\n-DOCSTART-\tO\nHi\tO\n"
    records = read(tmp_path / "d.tsv", "iob", text, TAG, "ner")
    assert [r.example for r in records] == [
        TaggedSentence(tokens=("John", "sleeps"), tags=("B-PER", "O")),
        TaggedSentence(tokens=("Hi",), tags=("O",)),
    ]
    assert [(r.line, r.group) for r in records] == [(1, ""), (4, "doc1")]


def test_iob_negative_tag_column_beyond_the_file_names_the_line(tmp_path: Path) -> None:
    error = fails(tmp_path / "n.tsv", 1, "iob", "John\tB-PER\n", TAG, "ner", tag_column=-3)
    assert error.expected == "at least 3 tab-separated columns"
    assert error.got == "2 in 'John\\tB-PER'"


@pytest.mark.parametrize("tag", ["NN ", " NN"])
def test_iob_scheme_none_refuses_a_tag_with_outer_spaces(tmp_path: Path, tag: str) -> None:
    text = f"The\tDT\ndog\t{tag}\n"
    error = fails(tmp_path / "p.tsv", 2, "iob", text, TAG, "pos", scheme="none")
    assert error.expected == "a non-empty tag without spaces"


def test_iob_token_and_tag_column_must_differ() -> None:
    with pytest.raises(ConfigError, match="must differ, but both are 1"):
        get_reader("iob").check(TAG, "ner", {"token_column": 1, "tag_column": 1})


def test_iob_whitespace_separator_accepts_runs_of_spaces(tmp_path: Path) -> None:
    text = "Josef  _ CZ\tI-p\nNovák _  CZ I-p\n"
    records = read(
        tmp_path / "c.conll", "iob", text, TAG, "ner", separator="whitespace", scheme="iob1"
    )
    assert records[0].example == TaggedSentence(tokens=("Josef", "Novák"), tags=("B-p", "I-p"))


# -- SQuAD -----------------------------------------------------------------------------------


def _squad(qas: list[dict[str, Any]], title: Any = "T") -> str:
    paragraph = {"context": "Paris is in France.", "qas": qas}
    return json.dumps({"version": "v2.0", "data": [{"title": title, "paragraphs": [paragraph]}]})


def _qa(qid: str = "q1", question: str = "Where?", **answer: Any) -> dict[str, Any]:
    return {"id": qid, "question": question, "answers": [{"text": "France", **answer}]}


def squad_error(tmp_path: Path, text: str) -> DataFormatError:
    with pytest.raises(DataFormatError) as caught:
        read(tmp_path / "s.json", "squad", text, QA, "answers")
    assert str(caught.value).startswith(f"{tmp_path / 's.json'}:")
    return caught.value


def test_squad_file_with_a_byte_order_mark_reads(tmp_path: Path) -> None:
    text = _squad([_qa(answer_start=12)])
    plain = read(tmp_path / "s.json", "squad", text, QA, "answers")
    with_bom = read(tmp_path / "b.json", "squad", "\ufeff" + text, QA, "answers")
    assert [r.example for r in with_bom] == [r.example for r in plain]
    assert len(plain) == 1


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        # context[-7:-1] is "France": a negative offset must not wrap around the context
        ({"text": "France", "answer_start": -7}, "answer 'France' at offset -7 of the context"),
        ({"text": "", "answer_start": 0}, "answer '' at offset 0 of the context"),
        ({"text": "France", "answer_start": True}, "data[0].paragraphs[0].qas[0].answers[0]."),
    ],
    ids=["negative-offset", "empty-text", "bool-offset"],
)
def test_squad_refuses_answers_that_are_not_a_span_of_the_context(
    tmp_path: Path, answer: dict[str, Any], expected: str
) -> None:
    qa = {"id": "q1", "question": "Where?", "answers": [answer]}
    error = squad_error(tmp_path, _squad([qa]))
    assert error.expected.startswith(expected)


def test_squad_refuses_a_blank_question(tmp_path: Path) -> None:
    error = squad_error(tmp_path, _squad([_qa(question="  ", answer_start=12)]))
    assert error.expected == "a non-empty id and question in data[0].paragraphs[0].qas[0]"


def test_squad_refuses_a_title_that_is_not_text(tmp_path: Path) -> None:
    error = squad_error(tmp_path, _squad([_qa(answer_start=12)], title=7))
    assert (error.expected, error.got) == ("data[0].title to be str", "7")


# one question object per line, its answer on the next: lines 2-3 and 4-5
_TWO_QUESTIONS = """\
{"data": [{"title": "T", "paragraphs": [{"context": "Paris is in France.", "qas": [
  {"id": "q1", "question": "Where?", "answers": [
    {"text": "France", "answer_start": 12}]},
  {"id": "%s", "question": "Which?", "answers": [
    {"text": "France", "answer_start": %d}]}
]}]}]}
"""


def test_squad_wrong_offset_names_the_answers_line(tmp_path: Path) -> None:
    error = squad_error(tmp_path, _TWO_QUESTIONS % ("q2", 11))
    assert error.line == 5
    assert error.got == "' Franc'"


def test_squad_duplicate_id_names_both_questions_lines(tmp_path: Path) -> None:
    error = squad_error(tmp_path, _TWO_QUESTIONS % ("q1", 12))
    assert error.line == 4
    assert error.got == "'q1' (already on line 2)"


def test_squad_json_errors_read_as_one_sentence(tmp_path: Path) -> None:
    error = squad_error(tmp_path, '{"data": [\n  {"title": "Paris')
    assert error.line == 2
    assert error.got == "Unterminated string starting at column 13"
    error = squad_error(tmp_path, '{"data": [\n  {"title": }]}\n')
    assert error.got == "Expecting value at column 13"


def test_squad_deep_nesting_is_a_format_error(tmp_path: Path) -> None:
    error = squad_error(tmp_path, "[" * 100_000)
    assert (error.line, error.expected, error.got) == (1, "valid JSON", "nesting too deep")


def test_squad_carving_texts_hold_the_question_only_when_grouped_by_id(tmp_path: Path) -> None:
    # Articles asking the same generic question ("Where?") stay separate carving units; BioASQ
    # snippets of one question text must not land on both sides of a split.
    text = _squad([_qa("a:1", answer_start=12)])
    (by_title,) = read(tmp_path / "s.json", "squad", text, QA, "answers")
    assert by_title.texts == ("Paris is in France.",)
    (by_id,) = read(tmp_path / "s.json", "squad", text, QA, "answers", group_by="id_prefix")
    assert by_id.texts == ("Paris is in France.", "Where?")


# -- TSV -------------------------------------------------------------------------------------


def test_tsv_refuses_an_empty_second_text(tmp_path: Path) -> None:
    text = "s1\ts2\tlabel\nA man.\tA person.\t0\nA dog.\t \t1\n"
    options = {"header": True, "text_column": "s1", "pair_column": "s2", "label_column": "label"}
    error = fails(tmp_path / "p.tsv", 3, "tsv", text, PAIR, "label", **options)
    assert (error.expected, error.got) == ("a non-empty second text", "' '")


def test_tsv_without_label_names_refuses_an_empty_label(tmp_path: Path) -> None:
    options = {"text_column": 0, "label_column": 1}
    error = fails(tmp_path / "l.tsv", 2, "tsv", "good\tpos\nbad\t\n", SENTENCE, "label", **options)
    assert error.expected == "a non-empty label"


def test_tsv_csv_quoting_records_name_the_line_each_row_starts_on(tmp_path: Path) -> None:
    good = 'text\tlabel\n"one\nrow on two lines"\tpos\nnext\tneg\n'
    options = {"header": True, "quoting": "csv", "text_column": "text", "label_column": "label"}
    records = read(tmp_path / "q.tsv", "tsv", good, SENTENCE, "label", **options)
    assert [(r.line, r.example.text) for r in records] == [  # type: ignore[union-attr]
        (2, "one\nrow on two lines"),
        (4, "next"),
    ]
    error = fails(
        tmp_path / "q.tsv", 5, "tsv", good + "late\tpos\textra\n", SENTENCE, "label", **options
    )
    assert error.expected == "2 tab-separated fields (as on line 1)"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"text_column": -1, "label_column": 0}, "`reader_options.text_column` must be >= 0"),
        (
            {"text_column": 0, "label_column": 1, "label_names": {"0": "neg", "1": ""}},
            "`reader_options.label_names` must map strings to label names",
        ),
        (
            {
                "text_column": 0,
                "label_column": 1,
                "label_names": {"0": "neg", "1": "pos"},
                "positive_label": "positive",
            },
            "`reader_options.positive_label` 'positive' is not one of the label names neg, pos",
        ),
    ],
    ids=["negative-column", "empty-label-name", "unknown-positive-label"],
)
def test_tsv_option_mistakes_are_config_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        get_reader("tsv").check(SENTENCE, "label", options)
    assert str(caught.value) == message or str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("task_type", "options", "message"),
    [
        (
            SENTENCE,
            {"text_column": 0, "pair_column": 1, "label_column": 2},
            "`reader_options.pair_column` must be given exactly for sentence-pair tasks",
        ),
        (
            SENTENCE,
            {"text_column": 0},
            "`reader_options.label_column` is required for sentence_classification",
        ),
        (
            PAIR,
            {"text_column": 0, "pair_column": 1},
            "`reader_options.label_column` is required for sentence_pair_classification",
        ),
    ],
    ids=["pair-column-for-one-sentence", "no-label-column", "no-label-column-pair"],
)
def test_tsv_columns_must_fit_the_task_type(
    task_type: TaskType, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        get_reader("tsv").check(task_type, "label", options)
    assert str(caught.value).startswith(message)


def test_tsv_csv_quoting_error_names_the_line_of_the_stray_quote(tmp_path: Path) -> None:
    # the row starts on line 2; its bad quote is on line 3
    text = 'a\t1\n"two\nlines" and more\t0\n'
    options = {"quoting": "csv", "text_column": 0, "label_column": 1}
    error = fails(tmp_path / "q.tsv", 3, "tsv", text, SENTENCE, "label", **options)
    assert error.expected == "a well-quoted TSV row"


def test_squad_missing_key_names_the_line_of_its_object(tmp_path: Path) -> None:
    text = _TWO_QUESTIONS.replace('"question": "Which?", ', "") % ("q2", 12)
    error = squad_error(tmp_path, text)
    assert (error.line, error.expected) == (4, "key 'question' in data[0].paragraphs[0].qas[1]")


def test_squad_id_prefix_is_the_part_before_the_first_colon(tmp_path: Path) -> None:
    text = _squad([_qa("58edf:5:b", answer_start=12)])
    (record,) = read(tmp_path / "s.json", "squad", text, QA, "answers", group_by="id_prefix")
    assert record.group == "58edf"
