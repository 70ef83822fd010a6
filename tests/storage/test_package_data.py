"""pyproject.toml ships the migrations: every package-data pattern names files that exist, every
migration script is matched, and no cache file is."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # the dev extra installs tomli below 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "taskgraph"


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_package_data_ships_the_migrations_and_names_only_real_files() -> None:
    patterns = pyproject()["tool"]["setuptools"]["package-data"]["taskgraph"]
    shipped: set[Path] = set()
    for pattern in patterns:
        matched = {path for path in PACKAGE.glob(pattern) if path.is_file()}
        assert matched, f"package-data pattern {pattern!r} matches no file"
        shipped |= matched
    migrations = PACKAGE / "storage" / "migrations"
    scripts = {p for p in migrations.rglob("*") if p.suffix in {".py", ".mako"}}
    scripts = {p for p in scripts if "__pycache__" not in p.parts}
    assert scripts and scripts <= shipped
    assert not any("__pycache__" in p.parts for p in shipped)


def test_ruff_excludes_only_paths_that_exist() -> None:
    for path in pyproject()["tool"]["ruff"].get("extend-exclude", []):
        assert (ROOT / path).exists(), path
