"""Turn a pydantic error on a spec into one line naming the file, the line and the field.

The line reads ``FILE:LINE: FIELD.PATH: what is wrong; allowed: ...`` so the user can go
straight to it; a field set from the command line names the option that set it instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from taskgraph.errors import SpecError
from taskgraph.spec.models import StudySpec
from taskgraph.spec.reading import _json_lines


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
        # The last location is the user's own key, whatever it holds ("x[0]" looks like one of
        # pydantic's branch labels, which _user_path drops).
        parent, model = _user_path(tuple(first["loc"])[:-1])
        path = [*parent, str(first["loc"][-1])]
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
