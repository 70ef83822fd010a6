"""Every command group shares one definition (and one help text) of the common options."""

from __future__ import annotations

from typing import Any

import typer.main

from taskgraph.cli.app import app


def _commands(group: Any, path: str = "taskgraph") -> list[tuple[str, Any]]:
    # Typer ships its own copy of click: groups and options are recognised by what they have.
    if not hasattr(group, "list_commands"):
        return [(path, group)]
    # list_commands/get_command: the app's groups are loaded lazily.
    ctx = type(group).context_class(group)
    out = []
    for name in group.list_commands(ctx):
        sub = group.get_command(ctx, name)
        assert sub is not None
        out += _commands(sub, f"{path} {name}")
    return out


def test_common_options_have_one_help_text() -> None:
    helps: dict[str, dict[str, str]] = {"--storage": {}, "--data": {}}
    for path, command in _commands(typer.main.get_command(app)):
        for param in command.params:
            for flag in helps:
                if param.param_type_name == "option" and flag in param.opts:
                    helps[flag][path] = param.help or ""
    assert len(helps["--storage"]) >= 10  # study, records, db, affinity, dashboard commands
    assert len(helps["--data"]) >= 3  # study run/resume, tasks
    for flag, texts in helps.items():
        assert len(set(texts.values())) == 1, f"{flag} help differs: {texts}"
