"""``study screen`` / ``screen_study`` of a spec whose encoder asks for trusted remote code.

The screen re-checked the spec without ``trust_remote_code``: the Python API took the keyword
for a spec field, and the CLI refused its own ``--trust-remote-code`` naming ``spec``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.app.screening import screen_study
from taskgraph.cli.app import app
from taskgraph.errors import ConfigError, SpecError
from taskgraph.models.encoders import load_encoder

runner = CliRunner()

SPEC = """\
name: trust
target: synth_target
candidates: [synth_related, synth_conflict]
encoder: {{name: {model}, max_length: 16, options: {{trust_remote_code: true}}}}
search:
  auxiliaries: {{max_size: 1}}
  sharing: [hard]
  max_steps: 2
  batch_size: 4
  mixing: {{max_examples: {{"*": 16}}}}
training:
  eval_every: 2
  hyperparameters: {{max_eval_examples: 8}}
budget: {{trials: 2}}
sampler: {{name: graph, seed: 0}}
"""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a local Hugging Face model directory (a tiny random BERT)."""
    path = tmp_path_factory.mktemp("model")
    bundle = load_encoder("tiny-bert")
    bundle.model.save_pretrained(path)
    bundle.tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def trust_spec(tmp_path: Path, model_dir: Path) -> Path:
    path = tmp_path / "trust.yaml"
    path.write_text(SPEC.format(model=model_dir), encoding="utf-8")
    return path


def test_screen_study_passes_trust_remote_code_to_the_spec_check(
    tmp_path: Path, trust_spec: Path
) -> None:
    db = tmp_path / "t.db"
    url = f"sqlite:///{db}"
    with pytest.raises(SpecError) as refused:
        screen_study(trust_spec, storage=url, steps=1, probes=1)
    assert str(refused.value).startswith(f"{trust_spec}: encoder.options.trust_remote_code: ")
    # Trusted, the spec passes its check and the screen goes on to look for the data.
    missing = tmp_path / "nowhere"
    with pytest.raises(ConfigError, match="data directory does not exist") as later:
        screen_study(
            trust_spec, storage=url, data=missing, steps=1, probes=1, trust_remote_code=True
        )
    assert "trust_remote_code" not in str(later.value)
    with pytest.raises(ConfigError) as wrong:
        screen_study(trust_spec, storage=url, steps=1, probes=1, trust_remote_code="yes")  # type: ignore[arg-type]
    assert str(wrong.value) == "`trust_remote_code` must be True or False, but got 'yes'"
    assert not db.exists()


def test_study_screen_with_trust_remote_code_screens(tmp_path: Path, trust_spec: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    result = runner.invoke(app, ["study", "screen", str(trust_spec), "--storage", url,
                                 "--steps", "2", "--probes", "1", "--json"])  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {trust_spec}: encoder.options.trust_remote_code: ")
    assert "--trust-remote-code" in result.stderr
    result = runner.invoke(app, ["study", "screen", str(trust_spec), "--storage", url,
                                 "--steps", "2", "--probes", "1", "--json",
                                 "--trust-remote-code"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["study"], report["screen"]) == ("trust", -1)
    assert sorted(c["candidate"] for c in report["candidates"]) == [
        "synth_conflict",
        "synth_related",
    ]
