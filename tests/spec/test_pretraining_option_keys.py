"""``--set search.pretraining.options={adaptive:{nope:1}}``: YAML reads ``nope:1`` (no space
after the colon) as the key ``'nope:1'``; the error names the option path, ``...adaptive.nope``,
without the value glued on."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app

runner = CliRunner()

SPEC = """\
name: t
target: synth_target
candidates: [synth_related]
encoder: {name: tiny-bert, max_length: 16}
search:
  pretraining: {scheme: [none, adaptive], steps: 2}
  max_steps: 2
budget: {trials: 1}
"""
WHERE = "search.pretraining.options"
ALLOWED = "mask_rate, q_start, q_end, full_accuracy, bandwidth, explore, refresh_every"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("{adaptive:{nope:1}}", f"{WHERE}.adaptive.nope: unknown option of 'adaptive'; "
         f"allowed: {ALLOWED}"),
        ("{adaptive:{mask_rate:0.2}}", f"{WHERE}.adaptive.mask_rate: 'mask_rate:0.2' is one "
         "YAML key; write 'mask_rate: 0.2' (a space after ':')"),
    ],
)  # fmt: skip
def test_an_unknown_option_names_its_path_without_the_value(
    tmp_path: Path, value: str, says: str
) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    result = runner.invoke(app, ["study", "validate", str(spec), "--set", f"{WHERE}={value}"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(f"error: --set {WHERE}: {says}"), result.stderr
    assert result.stderr.count("\n") == 1
    assert ":1:" not in result.stderr and "nope:1" not in result.stderr
