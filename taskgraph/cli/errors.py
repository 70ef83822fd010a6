"""Turn the project's exceptions into one clear line and a non-zero exit."""

from __future__ import annotations

import errno
from typing import Any

import typer
from typer.core import TyperGroup

from taskgraph.errors import TaskgraphError, command_line_wording

__all__ = ["TaskgraphGroup", "refusal_line"]


class TaskgraphGroup(TyperGroup):
    """A Typer group whose commands report :class:`TaskgraphError` as ``error: message``, worded
    for the command line (:func:`~taskgraph.errors.command_line_wording`)."""

    # ``ctx`` is typed loosely: recent Typer releases vendor their own click, older ones use
    # click itself, and this class must work with both.
    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        # The top level's own options (`taskgraph --bogus`) are parsed here, before invoke:
        # the same one line as a subcommand's, not the framework's box.
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except Exception as error:
            if not _is_usage_error(error):
                raise
            typer.echo(f"error: {_usage_line(error)}", err=True)
            raise typer.Exit(code=2) from error

    def invoke(self, ctx: Any) -> Any:
        try:
            # The library's messages name the command line's options (`--split`), not the
            # Python API's keywords (`split`): every subcommand runs inside this call.
            with command_line_wording():
                return super().invoke(ctx)
        except TaskgraphError as error:
            # Printed here and left through typer.Exit rather than a click.ClickException,
            # which a vendored click's main loop would not recognise.  Worded here too: a
            # message may be written when it is printed (the resume hint of an unreachable
            # database names the command, not the Python call).
            with command_line_wording():
                printed = f"error: {error}"
            typer.echo(printed, err=True)
            raise typer.Exit(code=error.exit_code) from error
        except Exception as error:
            if _is_usage_error(error):
                # A missing or malformed option: one line, like every other bad input, instead
                # of the framework's boxed message (exit 2, as the framework's own).
                typer.echo(f"error: {_usage_line(error)}", err=True)
                raise typer.Exit(code=2) from error
            if type(error).__module__.split(".")[0] in ("typer", "click"):
                # --help, usage errors, typer.Exit: the command line's own (typer vendors
                # click), nothing to translate and no reason to import the storage layer.
                raise
            refused = _file_refused(error)
            if refused is not None:
                line, code = refused
                typer.echo(f"error: {line}", err=True)
                raise typer.Exit(code=code) from error
            # Optuna's storage reports a read-only file, a failed commit or tables at another
            # schema version with its own exceptions: the database's state, not a bug.
            from taskgraph.storage.failures import storage_failure_message

            message = storage_failure_message(error)
            if message is None:
                raise
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(code=1) from error


# What the file system refuses about a named file, by exit status.  The path itself is wrong
# (its kind, a loop of links, a name too long): the user's input, exit 2.  The environment
# refuses a path that is right (its permissions, a read-only or full file system, a device
# that fails to read: EIO): exit 1.
# A missing file is left out: the commands check that what they are given exists, so an
# ENOENT that gets this far is a path computed wrongly (a bug) and keeps its traceback.
_WRONG_PATHS = frozenset({errno.EISDIR, errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG})
_ENVIRONMENT_REFUSALS = frozenset(
    {
        errno.EACCES,
        errno.EIO,
        errno.EPERM,
        errno.EROFS,
        errno.ENOSPC,
        getattr(errno, "EDQUOT", errno.ENOSPC),  # not on every platform
    }
)


def refusal_line(error: Exception) -> str | None:
    """Return the line (without ``error:``) :class:`TaskgraphGroup` prints for ``error``, or
    ``None`` for an exception it lets through as a bug.

    For a command that answers on stdout besides (``study validate --json``); called inside the
    group's ``invoke``, so the message has the command line's wording.  Storage failures are
    left out: a command that meets one has no answer of its own to give.
    """
    if isinstance(error, TaskgraphError):
        return str(error)
    refused = _file_refused(error)
    return None if refused is None else refused[0]


def _file_refused(error: Exception) -> tuple[str, int] | None:
    """Return ``FILE: reason`` and the exit status for an OSError about a named file the
    user's input pointed to (a directory, unreadable, a read-only file system...), else
    ``None``."""
    if not isinstance(error, OSError) or not error.filename:
        return None
    if error.errno in _WRONG_PATHS:
        code = 2
    elif error.errno in _ENVIRONMENT_REFUSALS:
        code = 1
    else:
        return None
    where = str(error.filename)
    if error.filename2:  # a rename or link names both ends
        where = f"{where} -> {error.filename2}"
    reason = error.strerror or str(error)
    return f"{where}: {reason[:1].lower()}{reason[1:]}", code


def _is_usage_error(error: Exception) -> bool:
    """Return True for click's (or Typer's vendored click's) usage errors, except the request
    for help that a group called without a command raises."""
    names = {cls.__name__ for cls in type(error).__mro__}
    return "UsageError" in names and "NoArgsIsHelpError" not in names


def _usage_line(error: Any) -> str:
    """Return ``taskgraph CMD: message (see taskgraph CMD --help)`` on one line."""
    message = " ".join(str(error.format_message()).split())
    ctx = getattr(error, "ctx", None)
    path = getattr(ctx, "command_path", "") if ctx is not None else ""
    return f"{path}: {message} (see `{path} --help`)" if path else message
