"""docker/: the build context leaves out the heavy and private files, the Dockerfile needs the
PyTorch wheel index passed in, and no package registry's host is named anywhere."""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from pathlib import Path, PurePosixPath

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
#: hosts of package registries, as patterns (a literal host here would break the rule it checks)
REGISTRY_HOSTS = re.compile(
    r"(download\.)?pytorch\.org|(test\.)?pypi\.org|files\.pythonhosted\.org|"
    r"(conda\.)?anaconda\.(org|com)|repo\.continuum\.io|registry\.npmjs\.org|crates\.io"
)
#: what the tree holds that is not the project's text: environments, caches, databases
SKIPPED_DIRS = {".git", ".venv", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis"}


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    """Return whether Docker leaves ``path`` (relative, POSIX) out of the context."""
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for pattern in patterns:
        negated, body = pattern.startswith("!"), pattern.lstrip("!")
        if body.startswith("**/"):
            suffixes = [
                "/".join(parts[n:m])
                for n in range(len(parts))
                for m in range(n + 1, len(parts) + 1)
            ]
            hit = any(fnmatch.fnmatchcase(s, body[3:]) for s in suffixes)
        else:
            hit = any(fnmatch.fnmatchcase(p, body) for p in prefixes)
        if hit:
            result = not negated
    return result


def test_context_leaves_out_the_environment_history_and_databases() -> None:
    patterns = dockerignore_patterns()
    for path in (
        ".venv/bin/python",
        ".git/HEAD",
        "demo.db",
        "demo.db.lock",
        "runs/x.db-wal",
        "taskgraph/__pycache__/app.cpython-311.pyc",
        "taskgraph.egg-info/PKG-INFO",
    ):
        assert ignored(path, patterns), path


def test_context_keeps_what_the_dockerfile_copies() -> None:
    patterns = dockerignore_patterns()
    sources = [
        source
        for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if line.startswith("COPY ")
        for source in line.split()[1:-1]
    ]
    assert "taskgraph" in sources and "pyproject.toml" in sources
    for source in sources:
        assert not ignored(source, patterns), source
        for path in (ROOT / source).rglob("*") if (ROOT / source).is_dir() else []:
            relative = path.relative_to(ROOT).as_posix()
            if path.suffix == ".py" or path.name == "alembic.ini":
                assert not ignored(relative, patterns), relative


def test_torch_index_is_a_required_build_argument(tmp_path: Path) -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^ARG TORCH_INDEX_URL\s*$", text, re.MULTILINE)  # no default
    # The RUN that installs torch stops, with a message, before pip when the index is missing.
    run = re.search(r"^RUN if \[ -z \"\$\{TORCH_INDEX_URL\}\" \].*?fi", text, re.M | re.S)
    assert run is not None
    script = run.group(0).removeprefix("RUN ").replace("\\\n", "\n")
    result = subprocess.run(
        ["sh", "-c", script],
        env={**os.environ, "TORCH_INDEX_URL": ""},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1 and "TORCH_INDEX_URL is not set" in result.stderr
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text(encoding="utf-8"))
    builds = [compose["x-taskgraph"]["build"], compose["services"]["ray-worker"]["build"]]
    for build in builds:
        assert build["args"]["TORCH_INDEX_URL"].startswith("${")  # from the environment


def test_no_package_registry_host_is_named() -> None:
    found = []
    for directory, names, files in os.walk(ROOT):
        names[:] = [n for n in names if n not in SKIPPED_DIRS and not n.endswith(".egg-info")]
        for name in files:
            path = Path(directory, name)
            if path.suffix in {".db", ".png", ".pyc", ".whl", ".lock"}:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            for number, line in enumerate(text.splitlines(), 1):
                if REGISTRY_HOSTS.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}")
    assert found == []
