"""Token-per-line tagging files: IOB/BIO NER, POS columns, CHNEC's space-separated IOB1.

Layout: one token per line, columns separated by a tab (or by whitespace), a blank or
whitespace-only line between sentences, ``-DOCSTART-`` lines between documents.  Options:

``separator``  ``"tab"`` (default) or ``"whitespace"`` (CHNEC: ``token _ LANG TAG``)
``token_column`` / ``tag_column``  column indices (default 0 and -1, the last column)
``scheme``  ``"iob2"`` (default: tags are validated, an ``I-X`` must continue an ``X``),
            ``"iob1"`` (converted to IOB2: an ``I-X`` that starts an entity becomes ``B-X``),
            ``"none"`` (any non-empty tag, e.g. PTB POS)
``token_prefix``  a prefix every token carries and that is stripped (WikiANN's ``en:``)

Every token line must have as many columns as the first one of the file.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from taskgraph.errors import ConfigError, DataFormatError
from taskgraph.tasks.readers.base import Reader, Record, option, read_lines, show
from taskgraph.tasks.types import TaggedSentence, TaskType

__all__ = ["DOCSTART", "IobReader", "iob1_to_iob2"]

DOCSTART = "-DOCSTART-"
_SCHEMES = ("iob2", "iob1", "none")


def iob1_to_iob2(tags: list[str]) -> list[str]:
    """Return IOB2 tags for IOB1 ``tags``: an ``I-X`` that starts an entity becomes ``B-X``."""
    converted: list[str] = []
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        converted.append(tag)
        previous = tag
    return converted


class IobReader(Reader):
    """Reads token-per-line tagging files into :class:`TaggedSentence` records."""

    name = "iob"
    task_types = frozenset({TaskType.TOKEN_TAGGING})
    option_names = frozenset({"separator", "token_column", "tag_column", "scheme", "token_prefix"})

    def group_unit(self, options: Mapping[str, Any]) -> str:
        """Return what a group is in this format."""
        return "document (-DOCSTART-), else sentence"

    def check_options(
        self, task_type: TaskType, label_field: str, options: Mapping[str, Any]
    ) -> None:
        option(options, "separator", "tab", kinds=str, choices=("tab", "whitespace"))
        token_column = option(options, "token_column", 0, kinds=int)
        tag_column = option(options, "tag_column", -1, kinds=int)
        option(options, "scheme", "iob2", kinds=str, choices=_SCHEMES)
        option(options, "token_prefix", "", kinds=str)
        if token_column == tag_column:
            raise ConfigError(
                "`reader_options.token_column` and `reader_options.tag_column` must differ, "
                f"but both are {token_column}"
            )

    def read(
        self,
        path: Path,
        *,
        task_type: TaskType,
        label_field: str,
        options: Mapping[str, Any],
    ) -> Iterator[Record]:
        split_on_tab = options.get("separator", "tab") == "tab"
        token_column = int(options.get("token_column", 0))
        tag_column = int(options.get("tag_column", -1))
        scheme = options.get("scheme", "iob2")
        prefix = str(options.get("token_prefix", ""))
        columns: int | None = None
        columns_line = 0
        tokens: list[str] = []
        tags: list[str] = []
        start = 0
        document = 0

        def sentence() -> Record:
            final = iob1_to_iob2(tags) if scheme == "iob1" else tags
            return Record(
                example=TaggedSentence(tokens=tuple(tokens), tags=tuple(final)),
                line=start,
                group=f"doc{document}" if document else "",
                texts=(" ".join(tokens),),
            )

        for number, line in read_lines(path):
            if not line.strip():  # wnut17 separates sentences by a lone tab
                if tokens:
                    yield sentence()
                    tokens, tags = [], []
                continue
            fields = line.split("\t") if split_on_tab else line.split()
            if columns is None:
                columns, columns_line = len(fields), number
                needed = max(token_column, tag_column, -token_column - 1, -tag_column - 1) + 1
                if columns < max(2, needed):
                    raise DataFormatError(
                        path,
                        number,
                        f"at least {max(2, needed)} "
                        f"{'tab' if split_on_tab else 'whitespace'}-separated columns",
                        f"{columns} in {show(line)}",
                    )
                if token_column % columns == tag_column % columns:
                    # 0 and -2 of two columns are one column: every tag would be its token
                    raise DataFormatError(
                        path,
                        number,
                        "different columns for `reader_options.token_column` and "
                        "`reader_options.tag_column`",
                        f"{token_column} and {tag_column} are both column "
                        f"{token_column % columns} of the {columns} columns",
                    )
            elif len(fields) != columns:
                raise DataFormatError(
                    path,
                    number,
                    f"{columns} columns (as on line {columns_line})",
                    f"{len(fields)} in {show(line)}",
                )
            token = fields[token_column]
            if token == DOCSTART:
                if tokens:
                    yield sentence()
                    tokens, tags = [], []
                document += 1
                continue
            if prefix:
                if not token.startswith(prefix):
                    raise DataFormatError(
                        path, number, f"a token starting with {prefix!r}", show(token)
                    )
                token = token[len(prefix) :]
            if not token.strip():
                raise DataFormatError(path, number, "a non-empty token", show(line))
            tag = fields[tag_column]
            if scheme != "none":
                self._check_tag(path, number, tag, tags[-1] if tags else "O", scheme)
            elif not tag or tag != tag.strip():
                raise DataFormatError(path, number, "a non-empty tag without spaces", show(tag))
            if not tokens:
                start = number
            tokens.append(token)
            tags.append(tag)
        if tokens:
            yield sentence()

    @staticmethod
    def _check_tag(path: Path, number: int, tag: str, previous: str, scheme: str) -> None:
        if tag != "O" and (len(tag) < 3 or tag[:2] not in ("B-", "I-") or tag != tag.strip()):
            raise DataFormatError(path, number, "a tag O, B-TYPE or I-TYPE", show(tag))
        if scheme == "iob2" and tag.startswith("I-") and previous[2:] != tag[2:]:
            raise DataFormatError(
                path,
                number,
                f"{tag} to continue a {tag[2:]} entity (IOB2)",
                f"it after {previous}",
            )


IOB = IobReader()
