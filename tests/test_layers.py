"""The layering of docs/architecture.md, checked on the source with ``ast``.

Bottom to top: errors/trial/registry/evaluator -> tasks, affinity -> models, storage, spec ->
training -> search -> runners -> app -> cli.  A module may import its own layer and the layers
below; imports under ``if TYPE_CHECKING:`` (annotations only) are not counted, function-level
imports are.  ``KNOWN_VIOLATIONS`` lists the upward imports not yet removed: the test fails on
a new one and on a listed one that is gone, so the list only shrinks.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "taskgraph"

RANK = {
    "errors": 0,
    "trial": 0,
    "trial_result": 0,
    "registry": 0,
    "evaluator": 0,
    "vocabulary": 0,
    "locking": 0,
    "files": 0,
    "tasks": 1,
    "encoder_files": 1,  # an encoder directory's version: file digests (tasks.fingerprints)
    "affinity": 1,
    "models": 2,
    "storage": 2,
    "spec": 2,
    "training": 3,
    "search": 4,
    "runners": 5,
    "app": 6,
    "testing": 6,  # test fakes: may use anything below the command line
    "cli": 7,
}

#: (importing file, imported module) -> why it is still there
KNOWN_VIOLATIONS: dict[tuple[str, str], str] = {}

NO_TORCH = ("cli", "search", "spec", "storage", "affinity", "app")
RUNNER_NAMES = {"local", "ray", "tabular"}


def _modules() -> list[tuple[Path, str, ast.Module]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        out.append((path, relative.as_posix(), ast.parse(path.read_text(), filename=str(path))))
    return out


def _runtime_nodes(tree: ast.Module) -> list[ast.AST]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return [node for node in ast.walk(tree) if id(node) not in skipped]


def _imports(tree: ast.Module) -> list[str]:
    names: list[str] = []
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _layer(relative: str) -> str | None:
    first = relative.split("/")[0].removesuffix(".py")
    return None if first == "__init__" else first


def upward_imports() -> set[tuple[str, str]]:
    found = set()
    for _, relative, tree in _modules():
        source = _layer(relative)
        if source is None:
            continue  # taskgraph/__init__.py: lazy re-exports only (module __getattr__)
        assert source in RANK, f"{relative}: add its layer to RANK and docs/architecture.md"
        for name in _imports(tree):
            parts = name.split(".")
            if parts[0] != "taskgraph" or len(parts) < 2 or parts[1] == source:
                continue
            assert parts[1] in RANK, f"{relative} imports {name}: unknown layer"
            if RANK[parts[1]] > RANK[source]:
                found.add((relative, name))
    return found


def test_no_new_upward_import() -> None:
    new = upward_imports() - set(KNOWN_VIOLATIONS)
    assert not new, f"imports from a layer above (see docs/architecture.md): {sorted(new)}"


def test_known_violations_still_exist() -> None:
    gone = set(KNOWN_VIOLATIONS) - upward_imports()
    assert not gone, f"fixed: remove from KNOWN_VIOLATIONS: {sorted(gone)}"


def test_no_torch_below_models_or_in_the_command_line() -> None:
    found = [
        (relative, name)
        for _, relative, tree in _modules()
        if relative.split("/")[0] in NO_TORCH
        for name in _imports(tree)
        if name.split(".")[0] == "torch"
    ]
    assert not found, f"torch imported in {found}"


def _is_runner_name(node: ast.AST) -> bool:
    # Anything that reads a runner: `spec.runner.name`, `runner_name`, `self.runner`,
    # `stored["runner"]["name"]`, `runner.get("name")`, `spec.get("runner")`.
    return any(
        (isinstance(part, ast.Name) and "runner" in part.id.lower())
        or (isinstance(part, ast.Attribute) and "runner" in part.attr.lower())
        or (isinstance(part, ast.Constant) and part.value == "runner")
        for part in ast.walk(node)
    )


def _names_a_runner(node: ast.AST) -> bool:
    # "ray", or a collection of runner names: `... in ("tabular", "local")`
    items = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
    return any(isinstance(i, ast.Constant) and i.value in RUNNER_NAMES for i in items)


def _runner_name_tests(tree: ast.AST) -> list[int]:
    """Return the lines of ``tree`` that compare a runner's name with a built-in runner's."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        if any(map(_names_a_runner, sides)) and any(
            _is_runner_name(side) for side in sides if not _names_a_runner(side)
        ):
            found.append(node.lineno)
    return found


def test_no_runner_name_tests_outside_runners() -> None:
    found = [
        f"{relative}:{line}"
        for _, relative, tree in _modules()
        if not relative.startswith("runners/")
        for line in _runner_name_tests(tree)
    ]
    assert not found, f"runner chosen by name (use its RunnerCapabilities): {found}"


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    # The walk is not vacuous: a function-level upward import is found, a type-only one is not.
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from taskgraph.cli import app\n"
        "def f():\n    from taskgraph.search.engine import StudyEngine\n"
    )
    assert _imports(tree) == ["typing", "taskgraph.search.engine"]
    compare = ast.parse("spec.runner.name == 'ray'").body[0]
    assert isinstance(compare, ast.Expr) and isinstance(compare.value, ast.Compare)
    assert _is_runner_name(compare.value.left)
    # A runner's name read from a stored spec (a dict) is found too; other names are not.
    chosen = [
        "spec.runner.name == 'ray'",
        "runner_name == 'tabular'",
        "'tabular' == stored['runner']['name']",
        "runner.get('name') in ('tabular', 'local')",
        "spec.get('runner') != 'local'",
    ]
    assert [_runner_name_tests(ast.parse(code)) for code in chosen] == [[1]] * len(chosen)
    others = ["task.name == 'local'", "mode == 'ray'", "runner_name == 'mine'"]
    assert [_runner_name_tests(ast.parse(code)) for code in others] == [[]] * len(others)
