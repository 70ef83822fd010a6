"""An encoder directory the loader would refuse is refused by `study validate` and `study run`.

Only the directory's ``config.json`` was read before a study started: a directory without
weights, with a truncated ``model.safetensors``, without tokenizer files, or whose config names
no model type passed ``study validate``, and ``study run`` then created its database and failed
every trial (a traceback per trial for the truncated file; for the empty config, a misleading
"sentencepiece or tiktoken" reason).  A ``config.json`` that is a link to a device made the
check read for ever.  Without tokenizer files transformers builds an empty tokenizer (five
special tokens) instead of refusing: trials trained on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.errors import ConfigError
from taskgraph.models.encoders import check_encoder_directory, clear_encoder_cache, load_encoder
from taskgraph.testing import write_tiny_encoder

runner = CliRunner()


def _no_weights(path: Path) -> None:
    (path / "model.safetensors").unlink()


def _truncated(path: Path) -> None:
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])


def _no_tokenizer(path: Path) -> None:
    for name in ("tokenizer.json", "vocab.txt"):
        (path / name).unlink(missing_ok=True)


def _empty_config(path: Path) -> None:
    (path / "config.json").write_text("{}", encoding="utf-8")


def _device_config(path: Path) -> None:
    (path / "config.json").unlink()
    os.symlink("/dev/zero", path / "config.json")


BROKEN: list[tuple[Callable[[Path], None], str]] = [
    (_no_weights, "has no weights (model.safetensors or pytorch_model.bin)"),
    (_truncated, "model.safetensors' is unreadable: Error while deserializing header"),
    (_no_tokenizer, "has no tokenizer files (tokenizer.json, or the vocabulary"),
    (_empty_config, "names no model type transformers knows (model_type: none)"),
]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_encoder(tmp_path_factory.mktemp("enc") / "tiny", seed=3)


def _copy(saved: Path, path: Path) -> Path:
    path.mkdir()
    for file in saved.iterdir():
        (path / file.name).write_bytes(file.read_bytes())
    return path


def test_a_loadable_directory_passes(saved: Path) -> None:
    check_encoder_directory(str(saved))


@pytest.mark.parametrize(("breaking", "reason"), BROKEN, ids=[b.__name__ for b, _ in BROKEN])
def test_a_broken_directory_is_one_error_naming_it(
    saved: Path, tmp_path: Path, breaking: Callable[[Path], None], reason: str
) -> None:
    encoder = _copy(saved, tmp_path / "enc")
    breaking(encoder)
    with pytest.raises(ConfigError) as error:
        check_encoder_directory(str(encoder))
    assert str(error.value).startswith(f"encoder {str(encoder)!r}: "), str(error.value)
    assert reason in str(error.value), str(error.value)


def test_a_config_that_is_a_device_is_refused_without_reading_it(
    saved: Path, tmp_path: Path
) -> None:
    # In a child process given 60 s: a regression would read /dev/zero until memory ran out.
    encoder = _copy(saved, tmp_path / "enc")
    _device_config(encoder)
    code = (
        "import sys\n"
        "from taskgraph.errors import ConfigError\n"
        "from taskgraph.models.encoders import check_encoder_directory\n"
        "try:\n"
        "    check_encoder_directory(sys.argv[1])\n"
        "except ConfigError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(encoder)], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip().endswith("has no config.json, so it is not a model directory")


def test_a_custom_code_model_may_name_its_own_type_under_trust_remote_code(
    saved: Path, tmp_path: Path
) -> None:
    encoder = _copy(saved, tmp_path / "enc")
    config = json.loads((encoder / "config.json").read_text(encoding="utf-8"))
    config.update(model_type="my_bert", auto_map={"AutoModel": "modeling.MyBert"})
    (encoder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ConfigError, match="names no model type transformers knows"):
        check_encoder_directory(str(encoder))
    check_encoder_directory(str(encoder), {"trust_remote_code": True})


def test_the_loader_refuses_a_directory_without_tokenizer_files(
    saved: Path, tmp_path: Path
) -> None:
    encoder = _copy(saved, tmp_path / "enc")
    _no_tokenizer(encoder)
    clear_encoder_cache()
    with pytest.raises(ConfigError, match="has no tokenizer files"):
        load_encoder(str(encoder))


@pytest.mark.parametrize(
    ("breaking", "reason"), BROKEN[:3], ids=[b.__name__ for b, _ in BROKEN[:3]]
)
def test_validate_and_run_refuse_it_before_any_database(
    saved: Path, tmp_path: Path, breaking: Callable[[Path], None], reason: str
) -> None:
    encoder = _copy(saved, tmp_path / "enc")
    breaking(encoder)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"name: s\ntarget: synth_target\ncandidates: [synth_related]\n"
        f"encoder: {{name: {encoder}, max_length: 16}}\n"
        "sampler: {name: random, seed: 0}\nbudget: {trials: 2}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["study", "validate", str(spec)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {spec}: encoder.name: "), lines
    assert reason in lines[0]
    database = tmp_path / "s.db"
    result = runner.invoke(app, ["study", "run", str(spec), "--storage", f"sqlite:///{database}"])
    assert result.exit_code == 2, result.output
    assert reason in result.stderr and "Traceback" not in result.output
    assert not database.exists()
