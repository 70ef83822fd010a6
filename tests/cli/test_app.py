"""The top-level ``taskgraph`` group: every command and option has help; groups load lazily."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import typer
from typer.testing import CliRunner

from taskgraph.cli.app import COMMANDS, app

runner = CliRunner()


def _walk(command: Any, ctx: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            with sub.make_context(name, [], parent=ctx, resilient_parsing=True) as child:
                found += _walk(sub, child, (*path, name))
    return found


def test_every_command_and_option_has_help() -> None:
    group = typer.main.get_command(app)
    with group.make_context("taskgraph", [], resilient_parsing=True) as ctx:
        commands = _walk(group, ctx, ())
    assert {path[0] for path, _ in commands if path} == set(COMMANDS)
    assert len(commands) > 20
    for path, command in commands:
        assert command.help, f"`taskgraph {' '.join(path)}` has no help"
        for param in command.params:
            if param.name != "help":
                assert getattr(param, "help", None), (
                    f"`taskgraph {' '.join(path)}` option {param.name} has no help"
                )
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        # A flag takes no value; Typer 0.29 prints one ("--json <bool>") after every flag.
        assert "<bool>" not in result.output, (path, result.output)


def test_tasks_commands_do_not_import_the_heavy_groups() -> None:
    """`taskgraph tasks ...` must not import SciPy, Alembic or Optuna (about a second per call)."""
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from taskgraph.cli.app import app\n"
        "result = CliRunner().invoke(app, ['tasks', 'list', '--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in ('scipy', 'alembic', 'optuna', 'torch', 'ray') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_unknown_command_is_a_usage_error() -> None:
    result = runner.invoke(app, ["nope"])
    assert result.exit_code == 2
    assert "No such command 'nope'" in result.output
