"""Hypothesis fuzzing of every reader.

* Valid files generated from examples read back to the same examples (round trip).
* A valid file with one targeted defect raises DataFormatError naming the defect's line.
* Arbitrary bytes, and valid files with a field replaced by noise, either parse or raise
  DataFormatError: no other exception escapes a reader.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from taskgraph.errors import DataFormatError
from taskgraph.tasks import get_reader
from taskgraph.tasks.readers.iob import iob1_to_iob2
from taskgraph.tasks.types import (
    Answer,
    Example,
    ParsedSentence,
    QAExample,
    TaggedSentence,
    TaskType,
    TextExample,
)

# TASKGRAPH_FUZZ_EXAMPLES=2000 for a deep run; 60 keeps CI quick
FUZZ = settings(
    max_examples=int(os.environ.get("TASKGRAPH_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# characters a token may hold: no whitespace or control characters (they separate fields)
_CHARS = st.characters(
    blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp"), blacklist_characters="\ufeff\x85"
)
TOKEN = st.text(_CHARS, min_size=1, max_size=6).filter(lambda t: t != "-DOCSTART-")
# free text (sentences, questions): single spaces allowed inside, no tabs or line breaks
TEXT = st.lists(TOKEN, min_size=1, max_size=5).map(" ".join)
NOISE = st.text(alphabet='0123456789-._:|=#ab \t"', max_size=8)


def read_bytes(
    fmt: str, data: bytes, task_type: TaskType, label_field: str, **options: Any
) -> list[Example]:
    """Return the examples a reader gives for ``data`` (written to a temporary file)."""
    reader = get_reader(fmt)
    reader.check(task_type, label_field, options)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "data"
        path.write_bytes(data)
        records = reader.read(path, task_type=task_type, label_field=label_field, options=options)
        return [record.example for record in records]


def only_format_errors(call: Callable[[], object]) -> None:
    """Run ``call``; a DataFormatError is fine, anything else fails the test."""
    try:
        call()
    except DataFormatError as error:
        assert error.line is None or error.line >= 1
        assert str(error).startswith(error.path)


def line_of_error(call: Callable[[], object]) -> int | None:
    with pytest.raises(DataFormatError) as caught:
        call()
    return caught.value.line


# -- IOB -------------------------------------------------------------------------------------

_TYPES = st.sampled_from(["PER", "LOC", "gene-product"])
_RAW_TAG = st.one_of(
    st.just("O"), st.builds(lambda p, t: f"{p}-{t}", st.sampled_from("BI"), _TYPES)
)
SENTENCE = st.lists(st.tuples(TOKEN, _RAW_TAG), min_size=1, max_size=6).map(
    lambda pairs: TaggedSentence(
        tokens=tuple(t for t, _ in pairs), tags=tuple(iob1_to_iob2([g for _, g in pairs]))
    )
)


def iob2_to_iob1(tags: tuple[str, ...]) -> list[str]:
    out, previous = [], "O"
    for tag in tags:
        if tag.startswith("B-") and previous[2:] != tag[2:]:
            tag = "I-" + tag[2:]
        out.append(tag)
        previous = tag
    return out


def write_iob(
    sentences: list[TaggedSentence], *, iob1: bool = False, sep: str = "\t", docs: bool = False
) -> str:
    blocks = []
    for index, sentence in enumerate(sentences):
        tags = iob2_to_iob1(sentence.tags) if iob1 else list(sentence.tags)
        lines = [f"{tok}{sep}{tag}" for tok, tag in zip(sentence.tokens, tags, strict=True)]
        if docs and index % 2 == 0:
            lines.insert(0, f"-DOCSTART-{sep}O\n")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


@FUZZ
@given(st.lists(SENTENCE, min_size=1, max_size=5), st.booleans(), st.booleans())
def test_iob_round_trip(sentences: list[TaggedSentence], iob1: bool, docs: bool) -> None:
    data = write_iob(sentences, iob1=iob1, docs=docs).encode()
    scheme = "iob1" if iob1 else "iob2"
    assert read_bytes("iob", data, TaskType.TOKEN_TAGGING, "ner", scheme=scheme) == sentences
    spaced = write_iob(sentences, iob1=iob1, sep=" _ X ").encode()
    got = read_bytes(
        "iob", spaced, TaskType.TOKEN_TAGGING, "ner", scheme=scheme, separator="whitespace"
    )
    assert got == sentences


@FUZZ
@given(st.lists(SENTENCE, min_size=2, max_size=5), st.data())
def test_iob_defect_is_reported_on_its_line(
    sentences: list[TaggedSentence], data: st.DataObject
) -> None:
    lines = write_iob(sentences).split("\n")
    token_lines = [i for i, line in enumerate(lines) if line.strip()]
    index = data.draw(st.sampled_from(token_lines[1:]))  # the first token line fixes the width
    defect = data.draw(st.sampled_from(["column", "tag", "byte", "lone"]))
    token = lines[index].split("\t")[0]
    if defect == "column":
        lines[index] += "\tX"
    elif defect == "tag":
        lines[index] = token + "\t" + data.draw(st.sampled_from(["E-PER", "B-", "X", "o", "I-"]))
    elif defect == "lone":
        lines[index] = token
    blob = "\n".join(lines).encode()
    if defect == "byte":
        blob = "\n".join(lines[:index]).encode() + b"\n\xff" + "\n".join(lines[index:]).encode()
    line = line_of_error(lambda: read_bytes("iob", blob, TaskType.TOKEN_TAGGING, "ner"))
    assert line == index + 1


@FUZZ
@given(st.lists(SENTENCE, min_size=1, max_size=4), st.data())
def test_iob_stray_continuation_is_rejected(
    sentences: list[TaggedSentence], data: st.DataObject
) -> None:
    lines = write_iob(sentences).split("\n")
    index = data.draw(st.sampled_from([i for i, line in enumerate(lines) if line.strip()]))
    previous = lines[index - 1].split("\t")[-1] if index and lines[index - 1].strip() else "O"
    lines[index] = lines[index].split("\t")[0] + "\tI-ZZZ"
    assume(previous[2:] != "ZZZ")
    blob = "\n".join(lines).encode()
    assert (
        line_of_error(lambda: read_bytes("iob", blob, TaskType.TOKEN_TAGGING, "ner")) == index + 1
    )


_IOB_PIECES = st.sampled_from(
    ["a", "\t", "B-X", "I-X", "O", "\n", " ", "-DOCSTART-", "en:", "\xff", "\r\n"]
)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=200),
        st.lists(_IOB_PIECES, max_size=40).map(
            lambda p: "".join(p).encode("utf-8", "surrogateescape")
        ),
    ),
    st.sampled_from(["iob2", "iob1", "none"]),
    st.sampled_from(["tab", "whitespace"]),
)
def test_iob_arbitrary_input_only_raises_format_errors(
    data: bytes, scheme: str, separator: str
) -> None:
    only_format_errors(
        lambda: read_bytes(
            "iob",
            data,
            TaskType.TOKEN_TAGGING,
            "ner",
            scheme=scheme,
            separator=separator,
            token_prefix="en:" if scheme == "none" else "",
        )
    )


# -- CoNLL-U ---------------------------------------------------------------------------------

_DEPRELS = st.sampled_from(["root", "nsubj", "obl:tmod", "punct"])
_UPOS = st.sampled_from(["NOUN", "VERB", "PUNCT", "X"])


@st.composite
def trees(draw: st.DrawFn) -> ParsedSentence:
    n = draw(st.integers(1, 6))
    # A random rooted forest: each word (in a random order) hangs on 0 or an earlier word.
    order = draw(st.permutations(range(1, n + 1)))
    heads = [0] * n
    for k, word in enumerate(order):
        heads[word - 1] = draw(st.sampled_from([0, *order[:k]]))
    return ParsedSentence(
        tokens=tuple(draw(st.lists(TOKEN, min_size=n, max_size=n))),
        heads=tuple(heads),
        deprels=tuple(draw(st.lists(_DEPRELS, min_size=n, max_size=n))),
        upos=tuple(draw(st.lists(_UPOS, min_size=n, max_size=n))),
    )


def write_conllu(sentences: list[ParsedSentence], extras: list[bool]) -> str:
    out = []
    for k, sentence in enumerate(sentences):
        out.append(f"# sent_id = s{k}\n# text = {' '.join(sentence.tokens)}\n")
        n = len(sentence.tokens)
        for i in range(n):
            if extras[k % len(extras)] and i + 1 < n:
                out.append(f"{i + 1}-{i + 2}\t{sentence.tokens[i]}\t_\t_\t_\t_\t_\t_\t_\t_\n")
            out.append(
                f"{i + 1}\t{sentence.tokens[i]}\t_\t{sentence.upos[i]}\t_\tA=B|C=D\t"
                f"{sentence.heads[i]}\t{sentence.deprels[i]}\t_\tSpaceAfter=No\n"
            )
            if extras[k % len(extras)]:
                out.append(f"{i + 1}.1\tx\t_\tNOUN\t_\t_\t_\t_\t{i + 1}:dep\t_\n")
        out.append("\n")
    return "".join(out)


@FUZZ
@given(st.lists(trees(), min_size=1, max_size=4), st.lists(st.booleans(), min_size=1, max_size=3))
def test_conllu_round_trip(sentences: list[ParsedSentence], extras: list[bool]) -> None:
    data = write_conllu(sentences, extras).encode()
    assert read_bytes("conllu", data, TaskType.DEPENDENCY_PARSING, "head+deprel") == sentences
    tagged = read_bytes("conllu", data, TaskType.TOKEN_TAGGING, "upos")
    assert tagged == [TaggedSentence(tokens=s.tokens, tags=s.upos) for s in sentences]


@FUZZ
@given(st.lists(trees(), min_size=1, max_size=3), st.data())
def test_conllu_defect_is_reported(sentences: list[ParsedSentence], data: st.DataObject) -> None:
    lines = write_conllu(sentences, [False]).split("\n")
    words = [i for i, line in enumerate(lines) if line[:1].isdigit()]
    index = data.draw(st.sampled_from(words))
    fields = lines[index].split("\t")
    defect = data.draw(st.sampled_from(["fields", "head", "id", "deprel", "upos", "range"]))
    expected_line = index + 1
    if defect == "fields":
        fields = fields[:9]
    elif defect == "head":
        fields[6] = data.draw(st.sampled_from(["x", "-1", "01", "", "1.5"]))
    elif defect == "id":
        fields[0] = str(int(fields[0]) + data.draw(st.integers(1, 3)))
    elif defect == "deprel":
        fields[7] = "_"
    elif defect == "upos":
        fields[3] = "_"
    else:  # a head beyond the sentence: reported at its word's line (not the sentence's first)
        n = sum(1 for i in words if lines[i].startswith("1\t") and i <= index)
        fields[6] = str(len(sentences[n - 1].tokens) + data.draw(st.integers(1, 5)))
    lines[index] = "\t".join(fields)
    blob = "\n".join(lines).encode()
    line = line_of_error(
        lambda: read_bytes("conllu", blob, TaskType.DEPENDENCY_PARSING, "head+deprel")
    )
    assert line == expected_line


@FUZZ
@given(st.lists(trees(), min_size=1, max_size=3), st.data())
def test_conllu_noise_in_any_field_only_raises_format_errors(
    sentences: list[ParsedSentence], data: st.DataObject
) -> None:
    lines = write_conllu(sentences, [True]).split("\n")
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, len(lines) - 1))
        fields = lines[index].split("\t")
        fields[data.draw(st.integers(0, len(fields) - 1))] = data.draw(NOISE)
        lines[index] = "\t".join(fields)
    blob = "\n".join(lines).encode()
    only_format_errors(
        lambda: read_bytes("conllu", blob, TaskType.DEPENDENCY_PARSING, "head+deprel")
    )
    only_format_errors(lambda: read_bytes("conllu", blob, TaskType.TOKEN_TAGGING, "xpos"))


@FUZZ
@given(st.binary(max_size=300))
def test_conllu_arbitrary_bytes_only_raise_format_errors(data: bytes) -> None:
    only_format_errors(
        lambda: read_bytes("conllu", data, TaskType.DEPENDENCY_PARSING, "head+deprel")
    )


# -- SQuAD -----------------------------------------------------------------------------------


@st.composite
def squad_files(draw: st.DrawFn) -> tuple[dict[str, Any], list[QAExample]]:
    v2 = draw(st.booleans())
    articles, examples, n = [], [], 0
    for a in range(draw(st.integers(1, 3))):
        title = draw(TEXT)
        paragraphs = []
        for _ in range(draw(st.integers(1, 2))):
            context = draw(TEXT)
            qas = []
            for _ in range(draw(st.integers(1, 3))):
                n += 1
                qid, question = f"p{a}:{n}", draw(TEXT)
                impossible = v2 and draw(st.booleans())
                spans = []
                if not impossible:
                    for _ in range(draw(st.integers(1, 2))):
                        start = draw(st.integers(0, len(context) - 1))
                        end = draw(st.integers(start + 1, len(context)))
                        spans.append(Answer(text=context[start:end], start=start))
                qa: dict[str, Any] = {
                    "id": qid,
                    "question": question,
                    "answers": [{"text": s.text, "answer_start": s.start} for s in spans],
                }
                if v2:
                    qa["is_impossible"] = impossible
                qas.append(qa)
                examples.append(
                    QAExample(
                        id=qid,
                        question=question,
                        context=context,
                        answers=tuple(spans),
                        is_impossible=impossible,
                        group=title,
                    )
                )
            paragraphs.append({"context": context, "qas": qas})
        articles.append({"title": title, "paragraphs": paragraphs})
    return {"version": "v2.0" if v2 else "1.1", "data": articles}, examples


def dump(document: Any, indent: int | None) -> bytes:
    return json.dumps(document, indent=indent, ensure_ascii=False).encode()


@FUZZ
@given(squad_files(), st.sampled_from([None, 0, 2]))
def test_squad_round_trip(
    generated: tuple[dict[str, Any], list[QAExample]], indent: int | None
) -> None:
    document, examples = generated
    assert (
        read_bytes("squad", dump(document, indent), TaskType.EXTRACTIVE_QA, "answers") == examples
    )


@FUZZ
@given(squad_files(), st.data())
def test_squad_defects_raise_format_errors(
    generated: tuple[dict[str, Any], list[QAExample]], data: st.DataObject
) -> None:
    document, _ = generated
    qas = [qa for art in document["data"] for par in art["paragraphs"] for qa in par["qas"]]
    qa = data.draw(st.sampled_from(qas))
    defect = data.draw(
        st.sampled_from(["drop", "type", "offset", "duplicate", "truncate", "impossible"])
    )
    if defect == "drop":
        del qa[data.draw(st.sampled_from(["id", "question", "answers"]))]
    elif defect == "type":
        qa[data.draw(st.sampled_from(["id", "question", "answers"]))] = data.draw(
            st.sampled_from([1, None, {}, True])
        )
    elif defect == "offset":
        assume(qa["answers"])
        answer = qa["answers"][0]
        context = next(
            p["context"] for a in document["data"] for p in a["paragraphs"] if qa in p["qas"]
        )
        shift = data.draw(st.integers(-3, 3).filter(bool))
        start = answer["answer_start"] + shift
        assume(start < 0 or context[start : start + len(answer["text"])] != answer["text"])
        answer["answer_start"] = start
    elif defect == "duplicate":
        assume(len(qas) > 1)
        other = data.draw(st.sampled_from([q for q in qas if q is not qa]))
        other["id"] = qa["id"]
    elif defect == "impossible":
        qa["is_impossible"] = bool(qa["answers"])  # true with answers, or false without
    blob = dump(document, 1)
    if defect == "truncate":
        cut = data.draw(st.integers(1, len(blob) - 1))
        blob = blob[:cut]
        assume(blob.strip() != dump(document, 1).strip())
    with pytest.raises(DataFormatError):
        read_bytes("squad", blob, TaskType.EXTRACTIVE_QA, "answers")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "data",
                    "paragraphs",
                    "context",
                    "qas",
                    "id",
                    "question",
                    "answers",
                    "text",
                    "answer_start",
                    "is_impossible",
                    "title",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@FUZZ
@given(squad_files(), st.data())
def test_squad_noise_only_raises_format_errors(
    generated: tuple[dict[str, Any], list[QAExample]], data: st.DataObject
) -> None:
    document, _ = generated
    # replace one value anywhere in the tree by arbitrary JSON
    node: Any = document
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = data.draw(st.sampled_from(keys))
        if isinstance(node[key], (dict, list)) and data.draw(st.booleans()):
            node = node[key]
            continue
        node[key] = data.draw(_JSON)
        break
    only_format_errors(
        lambda: read_bytes("squad", dump(document, None), TaskType.EXTRACTIVE_QA, "answers")
    )


@FUZZ
@given(st.one_of(st.binary(max_size=200), _JSON.map(lambda v: json.dumps(v).encode())))
def test_squad_arbitrary_input_only_raises_format_errors(data: bytes) -> None:
    only_format_errors(
        lambda: read_bytes("squad", data, TaskType.EXTRACTIVE_QA, "answers", group_by="id_prefix")
    )


# -- TSV -------------------------------------------------------------------------------------

ROWS = st.lists(st.tuples(TEXT, TEXT, st.sampled_from(["0", "1", "-1"])), min_size=1, max_size=8)
_OPTIONS = {
    "header": True,
    "text_column": "a",
    "pair_column": "b",
    "label_column": "y",
    "label_names": {"0": "no", "1": "yes"},
    "unlabeled_value": "-1",
}
_PAIR = TaskType.SENTENCE_PAIR_CLASSIFICATION


def expected_rows(rows: list[tuple[str, str, str]]) -> list[TextExample]:
    names = {"0": "no", "1": "yes", "-1": None}
    return [TextExample(text=a, text_pair=b, label=names[y]) for a, b, y in rows]


@FUZZ
@given(ROWS, st.booleans())
def test_tsv_round_trip(rows: list[tuple[str, str, str]], bom: bool) -> None:
    text = ("\ufeff" if bom else "") + "y\ta\tb\n" + "".join(f"{y}\t{a}\t{b}\n" for a, b, y in rows)
    assert read_bytes("tsv", text.encode(), _PAIR, "label", **_OPTIONS) == expected_rows(rows)


@FUZZ
@given(
    st.lists(
        st.tuples(st.text(min_size=1).filter(str.strip), TEXT, st.sampled_from(["0", "1"])),
        min_size=1,
        max_size=5,
    )
)
def test_tsv_csv_quoting_round_trip(rows: list[tuple[str, str, str]]) -> None:
    assume(all("\x00" not in a and "\r" not in a for a, _, _ in rows))
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(["y", "a", "b"])
    writer.writerows([(y, a, b) for a, b, y in rows])
    got = read_bytes("tsv", buffer.getvalue().encode(), _PAIR, "label", quoting="csv", **_OPTIONS)
    assert got == expected_rows(rows)


@FUZZ
@given(ROWS, st.data())
def test_tsv_defect_is_reported_on_its_line(
    rows: list[tuple[str, str, str]], data: st.DataObject
) -> None:
    lines = ["y\ta\tb"] + [f"{y}\t{a}\t{b}" for a, b, y in rows]
    index = data.draw(st.integers(1, len(lines) - 1))
    defect = data.draw(st.sampled_from(["drop", "extra", "label", "empty"]))
    y, a, b = lines[index].split("\t")
    lines[index] = {
        "drop": f"{y}\t{a}",
        "extra": f"{y}\t{a}\t{b}\tz",
        "label": f"7\t{a}\t{b}",
        "empty": f"{y}\t \t{b}",
    }[defect]
    blob = ("\n".join(lines) + "\n").encode()
    assert line_of_error(lambda: read_bytes("tsv", blob, _PAIR, "label", **_OPTIONS)) == index + 1


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=200),
        st.lists(
            st.sampled_from(["y\ta\tb\n", "0", "1", "\t", "\n", '"', "x", "-1", "\xff"]),
            max_size=30,
        ).map(lambda p: "".join(p).encode("utf-8", "surrogateescape")),
    ),
    st.sampled_from(["none", "csv"]),
)
def test_tsv_arbitrary_input_only_raises_format_errors(data: bytes, quoting: str) -> None:
    only_format_errors(lambda: read_bytes("tsv", data, _PAIR, "label", quoting=quoting, **_OPTIONS))
