"""``python -m taskgraph.cli.crashpoints POINT HIT ARGS...``: the CLI, crashing at POINT.

The crash points themselves (:mod:`taskgraph.search.crashpoints`) belong to the engine; this
entry point lives in the command-line layer because it runs the CLI.  Used by
``benchmarks/fault_injection.py`` and the crash tests.
"""

from __future__ import annotations

import sys

from taskgraph.search.crashpoints import POINTS, install

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Install the crash at ``POINT`` (on its ``HIT``-th pass), then run ``taskgraph ARGS...``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        points = "|".join(POINTS)
        raise SystemExit(f"usage: python -m taskgraph.cli.crashpoints {{{points}}} HIT ARGS...")
    install(args[0], int(args[1]))
    from taskgraph.cli.app import main as cli_main

    sys.argv = ["taskgraph", *args[2:]]
    cli_main()


if __name__ == "__main__":
    main()
