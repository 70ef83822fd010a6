"""Argument types, the parser and the error handling shared by the scripts in ``benchmarks/``.

A light module (nothing of taskgraph's but :mod:`taskgraph.errors`, and :func:`check_freeze`
the encoders' module when called): ``benchmarks/trial_cost.py`` times the imports of the
process it runs in, and this import must not load Optuna or torch.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

__all__ = [
    "DATA_DEFAULT",
    "DATA_HELP",
    "ScriptParser",
    "check_freeze",
    "directory",
    "int_range",
    "json_file",
    "nonnegative_int",
    "positive_float",
    "positive_int",
    "run_script",
]

#: Where the scripts read the datasets when no ``--data`` is given, in the order of
#: :func:`taskgraph.tasks.datadir.resolve_data_dir`.
DATA_DEFAULT = "$TASKGRAPH_DATA, else ../shared/data"
#: The help of every script's ``--data``.
DATA_HELP = f"data directory (default: {DATA_DEFAULT})"


class ScriptParser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose errors are one line, ``error: ...``, exit 2.

    argparse's own ``error`` prints the usage block and ``prog: error: ...``; the README
    promises one ``error:`` line for a bad argument, as the ``taskgraph`` command gives.
    ``formatter_class`` defaults to keeping the description (the script's docstring) as written.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def positive_int(text: str) -> int:
    """An argparse ``type``: an integer >= 1 (a count of seeds, steps, trials...)."""
    return _bounded_int(text, 1)


def nonnegative_int(text: str) -> int:
    """An argparse ``type``: an integer >= 0 (a seed, a warm-up count)."""
    return _bounded_int(text, 0)


def int_range(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """Return an argparse ``type``: an integer in [``minimum``, ``maximum``] (no maximum: None)."""

    def parse(text: str) -> int:
        value = _bounded_int(text, minimum)
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be <= {maximum}, got {value}")
        return value

    return parse


def positive_float(text: str) -> float:
    """An argparse ``type``: a finite number > 0 (a learning rate)."""
    value = _number(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def directory(text: str) -> str:
    """An argparse ``type``: a directory that exists (``~`` expanded), e.g. ``--data``."""
    path = Path(text).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"no directory {text}")
    return str(path)


def json_file(text: str) -> str:
    """An argparse ``type``: a file to write whose folder exists and is writable (``~`` expanded).

    Checked when the arguments are parsed, so that a bad path stops the script before its work
    rather than losing the results at the end.
    """
    path = Path(text).expanduser()
    if not text.strip() or path.is_dir():
        raise argparse.ArgumentTypeError(f"not a file name: {text!r}")
    folder = path.parent
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"no directory {folder} for {text}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write in {folder} for {text}")
    if path.exists() and not os.access(path, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot overwrite {text}")
    return str(path)


def _bounded_int(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def check_freeze(parser: argparse.ArgumentParser, option: str, layers: int, encoder: str) -> None:
    """Refuse (``parser.error``) ``layers`` frozen layers beyond the depth of ``encoder``.

    The depth comes from the encoder's configuration, no weights loaded; an encoder whose
    configuration does not say is left to the trial to check.
    """
    from taskgraph.errors import TaskgraphError
    from taskgraph.models.encoders import encoder_config

    try:
        config = encoder_config(encoder) or {}
    except TaskgraphError as error:  # e.g. the packaged MiniLM is missing
        parser.error(f"--encoder {encoder}: {error}")
    depth = config.get("num_hidden_layers")
    if isinstance(depth, int) and not isinstance(depth, bool) and layers > depth:
        parser.error(f"{option}: must be <= {depth} ({encoder} has {depth} layers), got {layers}")


def run_script(main: Callable[[], object]) -> int:
    """Run a benchmark script's ``main``; a :class:`TaskgraphError` is one ``error:`` line, exit 2.

    Inside :func:`taskgraph.errors.command_line_wording`: the library's messages name the
    scripts' options (``--storage``, ``--data``) rather than the Python keywords.
    """
    from taskgraph.errors import TaskgraphError, command_line_wording

    # Messages name options (--storage), not keywords: also where one is written when it is
    # printed (an unreachable database's resume hint), as the taskgraph command prints them.
    with command_line_wording():
        try:
            outcome = main()
        except TaskgraphError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    return outcome if isinstance(outcome, int) else 0
