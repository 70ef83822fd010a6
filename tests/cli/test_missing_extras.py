"""Without an optional extra (``ray``, ``postgres``), what needs it is one line naming it.

Installed without the extras, ``study run --runner ray`` failed with a ``ModuleNotFoundError``
traceback after it had written the study and its first trial; ``study submit`` and a
PostgreSQL URL failed with tracebacks too.  Nothing is uninstalled here: a subprocess blocks
the module with a meta-path finder (as a missing package, ``importlib.util.find_spec``
raises and ``import`` fails), and in-process tests put ``None`` in ``sys.modules`` or
replace ``find_spec``.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.errors import ConfigError, StorageError

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "searchspaces" / "demo.yaml"
runner = CliRunner()

# Runs the CLI with the named top-level modules missing, as if they were not installed.
_WITHOUT = """\
import sys

BLOCKED = set(sys.argv[1].split(","))


class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Missing())
sys.argv = ["taskgraph", *sys.argv[2:]]
from taskgraph.cli.app import main

main()
"""


def taskgraph_without(modules: str, *args: str, cwd: Path) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT, modules, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )
    return done.returncode, done.stdout, done.stderr


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def one_error_line(code: int, out: str, err: str) -> str:
    assert code != 0, (out, err)
    assert "Traceback" not in err and "ModuleNotFoundError" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- ray ---------------------------------------------------------------------------------------


def test_run_with_ray_runner_without_ray_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    args = ["study", "run", str(DEMO), "--runner", "ray", "--storage", f"sqlite:///{db}"]
    line = one_error_line(*taskgraph_without("ray", *args, cwd=tmp_path))
    assert "the ray runner needs Ray: pip install 'taskgraph[ray]'" in line, line
    assert line.startswith("error: --runner: "), line
    assert files_in(tmp_path) == []  # no database, no -wal/-shm, no lock file


def test_submit_without_ray_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "sub.db"
    args = ["study", "submit", str(DEMO), "--address", "http://127.0.0.1:1"]
    args += ["--storage", f"sqlite:///{db}"]
    line = one_error_line(*taskgraph_without("ray", *args, cwd=tmp_path))
    assert line == "error: study submit needs Ray: pip install 'taskgraph[ray]'", line
    assert files_in(tmp_path) == []


def test_submit_study_from_python_without_ray(tmp_path: Path) -> None:
    db = tmp_path / "py.db"
    code = _WITHOUT.split("sys.argv = ")[0] + (
        "import taskgraph\n"
        "from taskgraph.errors import ConfigError\n"
        "from taskgraph.runners.ray import submit_study\n"
        "from taskgraph.spec import load_spec\n"
        f"spec = load_spec({str(DEMO)!r})\n"
        "try:\n"
        f"    submit_study(spec, storage_url={f'sqlite:///{db}'!r}, address='http://127.0.0.1:1',"
        " client=object())\n"
        "except ConfigError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "ray"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "study submit needs Ray: pip install 'taskgraph[ray]'"
    assert not db.exists()


def test_validate_of_a_ray_spec_without_ray(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises: as if not installed
    import yaml

    spec = tmp_path / "ray_demo.yaml"
    spec.write_text(yaml.safe_dump({**yaml.safe_load(DEMO.read_text()), "runner": "ray"}))
    code, out, err = invoke("study", "validate", str(spec))
    line = one_error_line(code, out, err)
    assert line.startswith(f"error: {spec}: runner.name: the ray runner needs Ray"), line
    assert "pip install 'taskgraph[ray]'" in line
    line = one_error_line(*invoke("study", "validate", str(DEMO), "--set", "runner.name=ray"))
    assert line.startswith("error: --set runner.name: the ray runner needs Ray"), line


def test_ray_check_asks_find_spec_without_importing_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    from taskgraph.runners import builtin

    asked: list[str] = []

    def find_spec(name: str, package: Any = None) -> Any:
        asked.append(name)
        return None  # not installed

    monkeypatch.delitem(sys.modules, "ray", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert builtin.ray_installed() is False
    assert asked == ["ray"] and "ray" not in sys.modules
    with pytest.raises(
        ConfigError, match=r"^study submit needs Ray: pip install 'taskgraph\[ray\]'$"
    ):
        builtin.require_ray("study submit")
    spec = _demo_spec_with_ray()
    with pytest.raises(Exception, match=r"^demo\.yaml: runner\.name: the ray runner needs Ray"):
        builtin.RAY.check_spec(spec, source="demo.yaml")
    assert "ray" not in sys.modules


def _demo_spec_with_ray() -> Any:
    import yaml

    from taskgraph.spec import spec_from_dict

    data = yaml.safe_load(DEMO.read_text())
    data["runner"] = {"name": "ray"}
    return spec_from_dict(data)


# -- postgres ----------------------------------------------------------------------------------

POSTGRES_URL = "postgresql+psycopg://u:secret@127.0.0.1:1/db"


def test_records_list_without_psycopg(tmp_path: Path) -> None:
    line = one_error_line(
        *taskgraph_without("psycopg", "records", "list", "--storage", POSTGRES_URL, cwd=tmp_path)
    )
    assert "PostgreSQL needs psycopg: pip install 'taskgraph[postgres]'" in line, line
    assert "secret" not in line and "u:***@127.0.0.1:1/db" in line, line


def test_storage_engine_without_psycopg_is_a_storage_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from taskgraph.storage import parse_storage_url
    from taskgraph.storage.engine import create_storage_engine

    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(StorageError) as raised:
        create_storage_engine(parse_storage_url(POSTGRES_URL))
    message = str(raised.value)
    assert "PostgreSQL needs psycopg: pip install 'taskgraph[postgres]'" in message
    assert "secret" not in message and len(message.splitlines()) == 1


def test_optuna_engine_without_psycopg_is_one_line() -> None:
    # Optuna's RDBStorage builds its own engine: its import error is the same line.
    from taskgraph.storage.failures import storage_failure_message

    error = ModuleNotFoundError("No module named 'psycopg'", name="psycopg")
    message = storage_failure_message(error)
    assert message is not None and message.endswith(
        "PostgreSQL needs psycopg: pip install 'taskgraph[postgres]'"
    )
    assert storage_failure_message(ModuleNotFoundError("No module named 'x'", name="x")) is None
