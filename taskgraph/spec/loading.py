"""Read a study spec from YAML or JSON: ``${ENV}`` expansion, validation, one-line errors.

Every error is a :class:`~taskgraph.errors.SpecError` of the form
``FILE:LINE: FIELD.PATH: what is wrong; allowed: ...`` so the user can go straight to it.
Relative paths in the spec (inline task files, a tabular table, the data directory) are
resolved against the spec's folder, so a spec works from any working directory.

The YAML is read with a loader that counts nodes as it composes them, aliases expanded, and
refuses a document past :data:`~taskgraph.spec.limits.MAX_SPEC_NODES` nodes or
:data:`~taskgraph.spec.limits.MAX_SPEC_DEPTH` levels: an alias bomb of a few hundred bytes
would otherwise make ``${VAR}`` expansion walk billions of copies.

A file ending in ``.json`` is read as JSON (``study show NAME --spec --json`` writes one): YAML
1.1 would read its numbers such as ``5e-05`` as text.  The same limits, the refusal of a key
given twice and the line numbers of field errors apply to it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from yaml.constructor import ConstructorError

from taskgraph.errors import SpecError
from taskgraph.spec.limits import MAX_SPEC_BYTES, MAX_SPEC_DEPTH, MAX_SPEC_NODES
from taskgraph.spec.models import StudySpec

__all__ = ["expand_env", "load_spec", "spec_from_dict"]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_TASK_NAME = re.compile(r"[a-z][a-z0-9_]*")  # taskgraph.tasks.user: a task name, not a path
_MERGE_TAG = "tag:yaml.org,2002:merge"  # the `<<` key
# A JSON string, a bracket or separator, or any other scalar (number, true, false, null).
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[][{}:,]|[^\s\][{}:,"]+')


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses documents too large once aliases are expanded.

    ``compose_node`` returns the anchored node itself for an alias, so a node's expanded
    size is its own count plus its children's (memoised per node): the check costs one pass
    over the file, however many copies the aliases stand for.  It also refuses a key given
    twice in one mapping, as written (keys a ``<<`` merge brings in may be overridden).
    """

    def __init__(self, stream: str, *, source: str) -> None:
        super().__init__(stream)
        self.source = source
        self._expanded: dict[int, int] = {}  # id(node) -> nodes it stands for, aliases expanded
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        if self._depth > MAX_SPEC_DEPTH:
            mark = self.peek_event().start_mark
            raise SpecError(
                f"{self.source}:{mark.line + 1}: lists and mappings nested deeper than "
                f"{MAX_SPEC_DEPTH} levels"
            )
        alias = self.check_event(yaml.AliasEvent)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if node is None:
            return None
        size = self._expanded.get(id(node))
        if alias and size is None and not isinstance(node, yaml.ScalarNode):
            # The anchored list or mapping is still being composed: it contains itself.
            raise SpecError(
                f"{self.source}:{node.start_mark.line + 1}: an alias refers to a list or mapping "
                "that contains it (a recursive structure)"
            )
        if size is None:
            size = 1
            if isinstance(node, yaml.SequenceNode):
                size += sum(self._expanded.get(id(child), 1) for child in node.value)
            elif isinstance(node, yaml.MappingNode):
                self._refuse_duplicate_keys(node)  # before any merge rewrites it
                size += sum(
                    self._expanded.get(id(key), 1) + self._expanded.get(id(value), 1)
                    for key, value in node.value
                )
            self._expanded[id(node)] = size
        if size > MAX_SPEC_NODES:
            raise SpecError(
                f"{self.source}:{node.start_mark.line + 1}: the spec expands to more than "
                f"{MAX_SPEC_NODES} values once YAML aliases are expanded; use fewer aliases"
            )
        return node

    def _refuse_duplicate_keys(self, node: yaml.MappingNode) -> None:
        # PyYAML keeps the last of two equal keys: a second `name:` would silently rename
        # the study, a second `search:` drop the first block.  Checked on the composed node,
        # as written: merging later copies keys into an anchored mapping in place, where
        # they would look like duplicates.  Keys a `<<` merge brings in are not checked:
        # overriding them is what a merge is for.
        first_lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:value":
                key_node.tag = "tag:yaml.org,2002:str"  # as PyYAML's merging does: `=` is text
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                continue  # a list or mapping key is unhashable: PyYAML's own error names it
            key = self._key(key_node)
            line = key_node.start_mark.line + 1
            first = first_lines.get(key)
            if first is not None:
                raise SpecError(
                    f"{self.source}:{line}: duplicate key {key!r} (first on line {first})"
                )
            first_lines[key] = line

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        # PyYAML 6.0.4 drops a merged key when its string is the same object as one already
        # merged, so a one-letter key can lose its override and `<<: [*a, *b]` picks a
        # different winner for short and long keys.  The YAML merge rules instead: the
        # mapping's own keys win, then the mapping merged earlier.
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        own: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                own.append((key_node, value_node))
                continue
            if isinstance(value_node, yaml.SequenceNode):
                sources = value_node.value
            elif isinstance(value_node, yaml.MappingNode):
                sources = [value_node]
            else:
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"expected a mapping or list of mappings for merging, but found {value_node.id}",
                    value_node.start_mark,
                )
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    raise ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"expected a mapping for merging, but found {source.id}",
                        source.start_mark,
                    )
                self.flatten_mapping(source)  # in place: its own merges are resolved once
                merged.extend(source.value)
        if len(own) == len(node.value):
            return
        # Keys in PyYAML's order (merged ones first, where the merge put them; then the
        # mapping's other own keys): an own key that overrides a merged one takes its place.
        # The order matters: search.sharing's is the order of the sharing choices.
        overrides = {self._key(key_node): (key_node, value_node) for key_node, value_node in own}
        placed: set[Any] = set()
        pairs: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in merged:
            key = self._key(key_node)
            if key not in placed:
                placed.add(key)
                pairs.append(overrides.get(key, (key_node, value_node)))
        pairs += [pair for pair in own if self._key(pair[0]) not in placed]
        node.value = pairs

    def _key(self, key_node: yaml.Node) -> Any:
        """Return the key ``key_node`` stands for: its value if a scalar, else the node itself."""
        if isinstance(key_node, yaml.ScalarNode):
            # Compared as constructed, so `1` and `0x1`, or `true` and `yes`, are one key.
            return self.construct_object(key_node, deep=True)
        return key_node  # a list or mapping key: unhashable once built, PyYAML's error names it


def _read_spec(file: Path) -> tuple[str, Any]:
    """Return the text of ``file`` and its data, parsed as JSON if it ends in ``.json``."""
    text = _read_text(file)
    if file.suffix.lower() == ".json":
        return text, _parse_json(text, file)
    return text, _parse_yaml(text, file)


def _read_text(file: Path) -> str:
    """Return the UTF-8 text of ``file``; a file too large or not UTF-8 is one SpecError line."""
    size = file.stat().st_size
    if size > MAX_SPEC_BYTES:
        raise SpecError(
            f"{file}: a spec file is at most {MAX_SPEC_BYTES} bytes, this one is {size}"
        )
    data = file.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        number = data.count(b"\n", 0, error.start) + 1
        raise SpecError(
            f"{file}:{number}: not UTF-8 text: byte 0x{data[error.start]:02x} at byte offset "
            f"{error.start} cannot be decoded"
        ) from None
    return text


def _parse_yaml(text: str, file: Path) -> Any:
    """Return the parsed YAML ``text`` of ``file``; every problem is one SpecError line."""
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text, source=str(file))  # refuses control characters
        return loader.get_single_data()
    except SpecError:
        raise  # the loader's own limits, already one line naming the file
    except yaml.YAMLError as error:
        raise SpecError(_single_line(_yaml_error(file, error))) from None
    except (ValueError, OverflowError) as error:
        # The safe constructor turns `2001-02-30` into a datetime and fails with ValueError.
        raise SpecError(f"{file}: not valid YAML: {_single_line(str(error))}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _parse_json(text: str, file: Path) -> Any:
    """Return the parsed JSON ``text`` of ``file``; every problem is one SpecError line."""
    text = text.removeprefix("\ufeff")  # a BOM does not make the file invalid
    too_deep = False
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SpecError(
            f"{file}:{error.lineno}: not valid JSON: {error.msg} (column {error.colno})"
        ) from None
    except RecursionError:
        # Past Python's recursion limit, so past MAX_SPEC_DEPTH: the walk below says where.
        too_deep = True
    except ValueError as error:
        # An integer of more digits than Python converts (sys.get_int_max_str_digits()).
        raise SpecError(f"{file}: not valid JSON: {_single_line(str(error))}") from None
    _json_lines(text, source=str(file))
    if too_deep:
        raise SpecError(f"{file}: lists and mappings nested deeper than {MAX_SPEC_DEPTH} levels")
    return data


def _json_lines(text: str, *, source: str) -> dict[tuple[str | int, ...], int]:
    """Return the 1-based line of every mapping key and list item of JSON ``text``, by path.

    A mapping's field is found at its key's line, a list item where it starts, as
    :func:`_line_of` finds them in YAML.  The walk also refuses what :class:`_BoundedLoader`
    refuses in YAML, as a SpecError naming ``source`` and the line: lists and mappings nested
    past MAX_SPEC_DEPTH, a list or mapping of more than MAX_SPEC_NODES values (scalars, keys,
    lists and mappings each count 1) and a key given twice in one mapping (JSON would keep
    the last silently).  ``text`` is valid JSON: the tokens are not checked for syntax.
    """
    lines: dict[tuple[str | int, ...], int] = {}
    stack: list[_JsonContainer] = []
    line, last, nodes = 1, 0, 0  # line of offset `last`; values so far
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        line += text.count("\n", last, match.start())
        last = match.start()
        top = stack[-1] if stack else None
        if token in (",", ":"):
            if token == "," and top is not None:
                top.next_item()
            continue
        if token in ("]", "}"):
            if top is not None:
                stack.pop()
                if nodes - top.nodes_before > MAX_SPEC_NODES:
                    raise SpecError(
                        f"{source}:{top.line}: the spec holds more than {MAX_SPEC_NODES} values "
                        "(scalars, lists and mappings)"
                    )
            continue
        nodes += 1
        if len(stack) + 1 > MAX_SPEC_DEPTH:
            raise SpecError(
                f"{source}:{line}: lists and mappings nested deeper than {MAX_SPEC_DEPTH} levels"
            )
        path: tuple[str | int, ...] = ()
        if top is not None and top.expects_key:
            key = _json_key(token)
            first = top.keys.get(key)
            if first is not None:
                raise SpecError(f"{source}:{line}: duplicate key {key!r} (first on line {first})")
            top.keys[key] = line
            top.key = key
            top.expects_key = False
            lines[(*top.path, key)] = line
            continue
        if top is not None:
            path = (*top.path, top.key if top.mapping else top.index)
            lines.setdefault(path, line)
        if token in ("[", "{"):
            stack.append(
                _JsonContainer(path=path, mapping=token == "{", line=line, nodes_before=nodes - 1)
            )
    return lines


def _json_key(token: str) -> str:
    """Return the key a JSON string token spells (the token itself where it spells none)."""
    try:
        key = json.loads(token)
    except ValueError:
        return token  # only in text json.loads refused for its depth: the walk goes on
    return key if isinstance(key, str) else token


class _JsonContainer:
    """A list or mapping :func:`_json_lines` is inside: where it is, and the item it is at."""

    def __init__(
        self, *, path: tuple[str | int, ...], mapping: bool, line: int, nodes_before: int
    ) -> None:
        self.path = path
        self.mapping = mapping
        self.line = line
        self.nodes_before = nodes_before  # values counted before this list or mapping
        self.keys: dict[str, int] = {}  # key -> its line, in a mapping
        self.key = ""  # the mapping's key whose value comes next
        self.expects_key = mapping
        self.index = 0  # the list item that comes next

    def next_item(self) -> None:
        if self.mapping:
            self.expects_key = True
        else:
            self.index += 1


def _single_line(text: str) -> str:
    return " ".join(text.split())


def expand_env(value: Any, *, where: str = "spec") -> Any:
    """Return ``value`` with ``${VAR}`` / ``${VAR:-default}`` replaced in every string.

    An unset variable without a default is a :class:`SpecError` naming it.
    """
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise SpecError(
                f"{where}: environment variable {name} is not set (write ${{{name}:-default}} for a default)"
            )

        return _ENV.sub(replace, value)
    if isinstance(value, Mapping):
        return {k: expand_env(v, where=where) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, where=where) for v in value]
    return value


def load_spec(
    path: str | os.PathLike[str],
    *,
    overrides: Mapping[str, Any] | None = None,
    options: Mapping[str, str] | None = None,
) -> StudySpec:
    """Return the validated :class:`StudySpec` in the YAML (or ``.json``) file at ``path``.

    ``overrides`` maps dotted field paths to values applied before validation, for command
    line options such as ``--trials`` (``{"budget.trials": 3}``).  An error in an overridden
    field names the option that set it, ``options[path]`` (default ``--set PATH``), rather
    than a line of the file, which does not hold the bad value.
    """
    if not os.fspath(path).strip():
        raise SpecError("the spec path is empty: give the study's YAML file")
    file = Path(path)
    if file.is_dir():
        raise SpecError(f"{file}: is a directory, not a spec file: give the study's YAML file")
    if file.exists() and not file.is_file():
        raise SpecError(f"{file}: not a regular file: give the study's YAML file")
    if not file.is_file():
        raise SpecError(f"{file}: spec file not found")
    text, raw = _read_spec(file)
    if not isinstance(raw, Mapping):
        raise SpecError(
            f"{file}: expected a mapping of spec fields at the top level, got {type(raw).__name__}"
        )
    data = expand_env(dict(raw), where=str(file))
    for dotted, value in (overrides or {}).items():
        _set_path(data, dotted.split("."), value)
    _resolve_paths(data, file.resolve().parent)
    labels = {key: f"--set {key}" for key in overrides or {}}
    labels.update(options or {})
    return spec_from_dict(data, source=str(file), text=text, options=labels)


def _yaml_error(file: Path, error: yaml.YAMLError) -> str:
    # PyYAML marks where it gave up (`problem_mark`) and, for an unclosed quote or bracket,
    # where the construct began (`context_mark`): the line to fix is the latter, which may be
    # far above (an unclosed quote is only noticed at the end of the file).
    problem_mark = getattr(error, "problem_mark", None)
    context_mark = getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    context = getattr(error, "context", None)
    if (
        context
        and context_mark is not None
        and problem_mark is not None
        and context_mark.line != problem_mark.line
    ):
        return (
            f"{file}:{context_mark.line + 1}: not valid YAML: {context} here, "
            f"{problem} at line {problem_mark.line + 1}"
        )
    mark = problem_mark or context_mark
    line = f":{mark.line + 1}" if mark is not None else ""
    return f"{file}{line}: not valid YAML: {problem}"


def spec_from_dict(
    data: Mapping[str, Any],
    *,
    source: str = "spec",
    text: str | None = None,
    options: Mapping[str, str] | None = None,
) -> StudySpec:
    """Return ``data`` validated as a :class:`StudySpec`; errors name ``source`` and the field.

    ``options`` maps dotted field paths set from the command line to the option that set
    them (``{"budget.wall_time": "--wall-time"}``): an error inside one names the option.
    """
    try:
        return StudySpec.model_validate(dict(data))
    except ValidationError as error:
        raise SpecError(_one_line(error, source=source, text=text, options=options)) from None


def _set_path(data: dict[str, Any], keys: list[str], value: Any) -> None:
    node = data
    for key in keys[:-1]:
        child = node.get(key)
        if isinstance(child, str) and key in ("runner", "sampler", "pruner", "encoder"):
            child = {"name": child}  # expand the `runner: local` shorthand before overriding
        if child is None and node is data and key == "runner":
            # A spec without `runner:` runs the local one: `--set runner.threads=2` sets its
            # field (a runner of that one field and no name is no runner).
            child = {"name": "local"}
        if not isinstance(child, dict):
            child = {}
        node[key] = child
        node = child
    node[keys[-1]] = value


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    # Paths in a spec are relative to the spec file, not to wherever the CLI runs.
    def absolute(value: Any) -> Any:
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            return str((base / value).resolve())
        return str(Path(value).expanduser()) if isinstance(value, str) else value

    def fix_task(task: Any) -> None:
        if not isinstance(task, dict):
            return
        if isinstance(task.get("files"), dict):
            task["files"] = {k: absolute(v) for k, v in task["files"].items()}
        if "path" in task:
            task["path"] = absolute(task["path"])

    for key in ("candidates", "tasks"):
        if isinstance(data.get(key), list):
            for task in data[key]:
                fix_task(task)
    search = data.get("search")
    pretraining = search.get("pretraining") if isinstance(search, dict) else None
    if isinstance(pretraining, dict) and isinstance(pretraining.get("corpus"), list):
        # A corpus entry is a task name ([a-z][a-z0-9_]*) or a text file's path.
        pretraining["corpus"] = [
            entry if not isinstance(entry, str) or _TASK_NAME.fullmatch(entry) else absolute(entry)
            for entry in pretraining["corpus"]
        ]
    runner = data.get("runner")
    if isinstance(runner, dict) and isinstance(runner.get("table"), str):
        runner["table"] = absolute(runner["table"])
    if isinstance(data.get("data_dir"), str):
        data["data_dir"] = absolute(data["data_dir"])
    if isinstance(data.get("storage"), str):
        data["storage"] = _spec_relative_sqlite(data["storage"], base)


def _spec_relative_sqlite(url: str, base: Path) -> str:
    """Return ``url`` with a relative SQLite file made absolute against ``base``.

    ``storage: sqlite:///study.db`` in a spec names a file beside the spec, like every other
    path in it; ``--storage`` and ``TASKGRAPH_STORAGE`` stay relative to the working directory.
    Other URLs (PostgreSQL, an absolute or ``~`` path, in-memory) are returned unchanged.
    """
    # Imported here: the storage package imports SQLAlchemy and Alembic, which reading a spec
    # without a `storage` field should not pay for.
    from taskgraph.storage.urls import sqlite_url_relative_to

    return sqlite_url_relative_to(url, base)


def _one_line(
    error: ValidationError,
    *,
    source: str,
    text: str | None,
    options: Mapping[str, str] | None = None,
) -> str:
    # The deepest error is the informative one when a union (``str | InlineTaskSpec``)
    # fails on every branch: "not a string" says less than the inline task's bad field.
    errors = error.errors()
    first = max(
        errors, key=lambda e: (len(_user_path(tuple(e["loc"]))[0]), e["type"] != "extra_forbidden")
    )
    path, _ = _user_path(tuple(first["loc"]))
    message = first["msg"].removeprefix("Value error, ")
    kind = first["type"]
    ctx = first.get("ctx") or {}
    if kind == "extra_forbidden":
        _, model = _user_path(tuple(first["loc"])[:-1])
        keys = sorted(model.model_fields) if model is not None else []
        message = f"unknown field {path[-1]!r}" + (f"; allowed: {', '.join(keys)}" if keys else "")
    elif kind == "missing":
        message = "required field is missing"
    elif kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        message = f"{first['input']!r} is not allowed; allowed: {expected}"
    elif kind == "union_tag_invalid":
        tags = str(ctx.get("expected_tags", "")).replace("'", "")
        message = f"unknown {path[-1] if path else 'name'} {ctx.get('tag')!r}; allowed: {tags}"
    elif kind == "union_tag_not_found":
        message = f"needs a `{ctx.get('discriminator', 'name').strip(chr(39))}` key"
    elif kind in _TYPE_KINDS or kind in _BOUND_KINDS:
        # pydantic says "Input should be ..."; say what was given, as YAML spells it.
        message = f"{message}, got {_yaml_repr(first.get('input'))}"
    more = len({tuple(_user_path(tuple(e["loc"]))[0]) for e in errors}) - 1
    suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    dotted = "".join(
        f"[{p}]" if isinstance(p, int) else ("." if i else "") + str(p) for i, p in enumerate(path)
    )
    # A value from the command line is not in the file: name the option, not a line.
    for key, label in (options or {}).items():
        parts = key.split(".")
        if path and ([str(p) for p in path[: len(parts)]] == parts or parts[: len(path)] == path):
            inner = "" if dotted == key else f"{dotted or '(top level)'}: "
            return f"{label}: {inner}{message}{suffix}"
    line = None
    if text:
        as_json = Path(source).suffix.lower() == ".json"  # as load_spec read the file
        line = _json_line_of(text, path) if as_json else _line_of(text, path)
        if as_json:
            message = _json_number_hint(message)
    where = f"{source}:{line}" if line else source
    return f"{where}: {dotted or '(top level)'}: {message}{suffix}"


# The domains' hint for a number YAML read as text ("write 5.0e-05"): in a JSON file the
# number was quoted, and the advice is to drop the quotes (JSON reads 5e-05 as a number).
_YAML_NUMBER_HINT = re.compile(r" \(YAML reads (?P<value>.+?) as text(?:; write [^)]*)?\)")


def _json_number_hint(message: str) -> str:
    """Return ``message`` with its YAML hint for a quoted number worded for a JSON file."""
    return _YAML_NUMBER_HINT.sub(
        lambda match: f" (a quoted number is text in JSON; write {match['value']} unquoted)",
        message,
    )


_TYPE_KINDS = frozenset({"int_type", "float_type", "bool_type", "string_type", "finite_number"})
_BOUND_KINDS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})


def _yaml_repr(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value != value:
        return ".nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return ".inf" if value > 0 else "-.inf"
    return repr(value)


def _user_path(loc: tuple[Any, ...]) -> tuple[list[Any], type[BaseModel] | None]:
    """Return the path the user wrote (pydantic's union labels dropped) and the model reached.

    Pydantic inserts branch labels (``str``, ``function-before[...]``, discriminator tags such
    as ``ray``) into error locations; walking the model tree tells them from field names.
    """
    path: list[Any] = []
    model: type[BaseModel] | None = StudySpec
    options: list[type[BaseModel]] = []  # models a union field may hold
    values: list[type[BaseModel]] = []  # models a mapping field holds as values
    for item in loc:
        if isinstance(item, int):
            path.append(item)
            continue
        chosen = [m for m in options + values if item in (_tag(m), m.__name__)]
        if chosen:
            model, options = chosen[0], []
            if chosen[0] in values and chosen[0] not in options:
                values = []
            continue
        if "[" in item or item in _TYPE_LABELS:
            continue
        path.append(item)
        if model is not None and item in model.model_fields:
            annotation = model.model_fields[item].annotation
            options, values = _models_in(annotation), _mapping_values(annotation)
        elif values:
            options, values = list(values), []
        else:
            options = []
        model = options[0] if len(options) == 1 else None
    return path, model


_TYPE_LABELS = frozenset({"str", "int", "float", "bool", "none", "list", "tuple", "dict"})


def _mapping_values(annotation: Any) -> list[type[BaseModel]]:
    if get_origin(annotation) is dict:
        return _models_in(get_args(annotation)[1])
    found: list[type[BaseModel]] = []
    for arg in get_args(annotation):
        found.extend(m for m in _mapping_values(arg) if m not in found)
    return found


def _tag(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("name")
    return field.default if field is not None and isinstance(field.default, str) else None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if get_origin(annotation) is dict:
        return []
    found: list[type[BaseModel]] = []
    for arg in get_args(annotation):
        found.extend(m for m in _models_in(arg) if m not in found)
    return found


def _json_line_of(text: str, path: list[Any]) -> int | None:
    """Return the 1-based line of the deepest JSON value found along ``path``."""
    text = text.removeprefix("\ufeff")
    try:
        json.loads(text)  # lines are only read off valid JSON
        lines = _json_lines(text, source="spec")
    except (ValueError, RecursionError, SpecError):
        return None
    line = None
    found: tuple[str | int, ...] = ()
    for item in path:
        for key in (item, str(item)):  # an integer in a path may be a mapping's key
            if (*found, key) in lines:
                found = (*found, key)
                line = lines[found]
                break
        else:
            break
    return line


def _line_of(text: str, path: list[Any]) -> int | None:
    """Return the 1-based line of the deepest YAML node found along ``path``."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for item in path:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(item):
                    line = key.start_mark.line + 1
                    node = value
                    break
            else:
                break
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(item, int) and item < len(node.value)
        ):
            node = node.value[item]
            line = node.start_mark.line + 1
        else:
            break
    return line
