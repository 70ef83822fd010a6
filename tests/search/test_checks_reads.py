"""`check_spec` reads the encoder's config once and reuses the search space's layer ranges."""

from __future__ import annotations

import json
import pathlib
from pathlib import Path
from typing import Any

import pytest

from taskgraph.errors import SpecError
from taskgraph.models.encoders import encoder_config
from taskgraph.search.checks import check_spec
from taskgraph.spec import spec_from_dict
from taskgraph.testing import write_tiny_encoder


def _encoder_dir(folder: Path, *, layers: int) -> Path:
    return write_tiny_encoder(folder, num_hidden_layers=layers)


@pytest.fixture
def config_reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Return the ``config.json`` files read (``Path.read_text``), in order."""
    seen: list[Path] = []
    read_text = pathlib.Path.read_text

    def counting(self: Path, *args: Any, **kwargs: Any) -> str:
        if self.name == "config.json":
            seen.append(self)
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "read_text", counting)
    return seen


def _spec(encoder: Path, sharing: dict[str, Any]) -> Any:
    return spec_from_dict(
        {
            "name": "s",
            "target": "synth_target",
            "candidates": ["synth_related"],
            "encoder": {"name": str(encoder)},
            "search": {"sharing": sharing},
        }
    )


def test_a_validate_reads_the_encoder_config_once(tmp_path: Path, config_reads: list[Path]) -> None:
    encoder = _encoder_dir(tmp_path / "enc", layers=3)
    check_spec(_spec(encoder, {"hierarchical": {"tagging_layer": {"low": 1, "high": 3}}}))
    assert len(config_reads) == 1


def test_the_layer_check_still_uses_the_encoder_depth(tmp_path: Path) -> None:
    encoder = _encoder_dir(tmp_path / "enc", layers=3)
    spec = _spec(encoder, {"hierarchical": {"tagging_layer": {"low": 1, "high": 4}}})
    with pytest.raises(
        SpecError, match=r"s\.yaml: search\.sharing\.hierarchical\.tagging_layer: 4 is"
    ):
        check_spec(spec, source="s.yaml")
    _encoder_dir(encoder, layers=12)  # the same directory, now deeper: read again
    check_spec(spec, source="s.yaml")


def test_an_edited_config_is_read_again_and_callers_get_copies(tmp_path: Path) -> None:
    encoder = _encoder_dir(tmp_path / "enc", layers=3)
    first = encoder_config(str(encoder))
    assert first is not None and first["num_hidden_layers"] == 3
    first["num_hidden_layers"] = 99  # a caller's change stays its own
    assert encoder_config(str(encoder)) == {**first, "num_hidden_layers": 3}
    (encoder / "config.json").write_text(json.dumps({"num_hidden_layers": 12}))
    assert encoder_config(str(encoder)) == {"num_hidden_layers": 12}
    (encoder / "config.json").write_text("{not json")
    assert encoder_config(str(encoder)) is None
