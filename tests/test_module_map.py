"""docs/modules.md, the module map, is what the package's docstrings say today.

Every module of ``taskgraph/`` (the Alembic revisions aside) is listed under its package, in the
order of docs/architecture.md's layers, with the first paragraph of its docstring.  The test
fails when a module is added, removed, renamed or its docstring's first paragraph changes
without the map; ``python tests/test_module_map.py`` writes the map again.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "taskgraph"
MAP = ROOT / "docs" / "modules.md"
if __name__ == "__main__":  # run as a script: `tests` imported from the repository root
    sys.path.insert(0, str(ROOT))

from tests.test_layers import RANK  # noqa: E402  (the layer of each top-level name)

HEADER = """\
# Module map

Every module of `taskgraph/`, package by package in the order of the layers
([architecture.md](architecture.md): a module imports only from its own layer and those
below), with the first paragraph of its docstring.  Generated from the docstrings:
`python tests/test_module_map.py` writes it again, and `tests/test_module_map.py` fails when it
is out of date.
"""


def _summary(path: Path) -> str:
    """Return the first paragraph of ``path``'s module docstring as one line of Markdown."""
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    first = " ".join(docstring.strip().split("\n\n")[0].split())
    first = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", first)  # Sphinx roles -> code
    first = first.replace("``", "`")
    return first.replace("|", "\\|")


def _revision(path: Path) -> bool:
    """Return whether ``path`` is an Alembic revision (one per schema change, not mapped)."""
    return path.parent.name == "versions" and path.parent.parent.name == "migrations"


def _layer(module: Path) -> int:
    top = module.relative_to(PACKAGE).parts[0].removesuffix(".py")
    return RANK.get(top, -1)  # the package's own __init__ and __main__ first


def render_module_map() -> str:
    """Return docs/modules.md as the docstrings of ``taskgraph/`` make it."""
    modules = [path for path in PACKAGE.rglob("*.py") if not _revision(path)]
    packages: dict[Path, list[Path]] = {}
    for path in modules:
        packages.setdefault(path.parent, []).append(path)
    ordered = sorted(
        packages,
        key=lambda folder: (
            _layer(folder / "x.py") if folder != PACKAGE else -1,
            folder.relative_to(PACKAGE).parts,
        ),
    )
    parts = [HEADER]
    for folder in ordered:
        relative = folder.relative_to(ROOT).as_posix()
        parts.append(f"\n## `{relative}/`\n")
        init = folder / "__init__.py"
        if init.exists() and folder != PACKAGE:
            parts.append(f"\n{_summary(init)}\n")
        parts.append("\n| module | what it holds |\n|---|---|\n")
        top_level = sorted(
            (p for p in packages[folder] if p.name != "__init__.py" or folder == PACKAGE),
            key=lambda p: (_layer(p) if folder == PACKAGE else 0, p.name),
        )
        for path in top_level:
            parts.append(f"| `{path.name}` | {_summary(path)} |\n")
    return "".join(parts)


def test_the_module_map_is_up_to_date() -> None:
    written = MAP.read_text(encoding="utf-8") if MAP.exists() else ""
    assert written == render_module_map(), (
        "docs/modules.md is out of date: run `.venv/bin/python tests/test_module_map.py`"
    )


def test_every_module_is_on_the_map() -> None:
    text = render_module_map()
    for path in PACKAGE.rglob("*.py"):
        if _revision(path):
            continue
        if path.name == "__init__.py" and path.parent != PACKAGE:
            assert f"## `{path.parent.relative_to(ROOT).as_posix()}/`" in text
        else:
            assert f"| `{path.name}` |" in text, path


if __name__ == "__main__":
    MAP.write_text(render_module_map(), encoding="utf-8")
    print(f"wrote {MAP.relative_to(ROOT)}")
