"""`check_spec` refuses sharing-parameter values and encoder options every trial would fail on.

A sharing parameter's fixed value, each choice and both bounds of a searched range go through
the architecture's own ``resolve_params`` (what ``build_model`` runs); tiny-bert's options go
through the loader's own check (``tiny_bert_config``), without building a model, and a
pretrained encoder's options that are fields of its configuration through that class.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.errors import ConfigError, SpecError
from taskgraph.models.heads import HeadSpec
from taskgraph.models.sharing import SHARING_ARCHITECTURES
from taskgraph.models.sharing.hard import HardSharing
from taskgraph.search.checks import check_spec
from taskgraph.spec import spec_from_dict


def _spec(**overrides: Any) -> Any:
    data: dict[str, Any] = {
        "name": "s",
        "target": "synth_target",
        "candidates": ["synth_related"],
        "encoder": {"name": "tiny-bert", "max_length": 16},
    }
    data.update(overrides)
    return spec_from_dict(data)


@pytest.mark.parametrize(
    ("arch", "param", "domain", "message"),
    [
        ("hierarchical", "tagging_layer", 0, "must be a layer number >= 1"),
        ("cross_stitch", "alpha_self", 2.0, r"must be in \(0, 1\), but got 2\.0"),
        ("cross_stitch", "alpha_self", {"low": 0.5, "high": 1.0}, r"but got 1\.0"),
        ("label_embedding", "label_dim", {"low": 0, "high": 4}, "integer >= 1, but got 0"),
        ("mmoe", "num_experts", [2, 0], "integer >= 1, but got 0"),
        ("soft", "lambda", -1.0, "number >= 0"),
    ],
)
def test_a_sharing_value_the_architecture_refuses_is_refused(
    arch: str, param: str, domain: Any, message: str
) -> None:
    spec = _spec(search={"sharing": {arch: {param: domain}}})
    with pytest.raises(SpecError, match=rf"^spec: search\.sharing\.{arch}\.{param}: .*{message}"):
        check_spec(spec)


def test_sharing_values_the_architectures_accept_pass() -> None:
    sharing = {
        "hierarchical": {"tagging_layer": 1, "parsing_layer": {"low": 1, "high": 2}},
        "cross_stitch": {"alpha_self": {"low": 0.5, "high": 0.95}, "top_k_layers": 1},
        "label_embedding": {"label_dim": {"low": 1, "high": 4}},
        "mmoe": {"num_experts": [2, 3]},
    }
    check_spec(_spec(search={"sharing": sharing}))


@pytest.mark.parametrize(
    ("arch", "param", "domain", "message"),
    [
        # a float range of an integer parameter: every trial gets a float (suggest_float)
        ("hierarchical", "tagging_layer", {"low": 1, "high": 2, "type": "float"}, "but got 1.0"),
        ("mmoe", "num_experts", {"low": 2, "high": 4, "step": 0.5}, "but got 2.0"),
    ],
)
def test_a_range_bound_is_checked_as_the_trial_gets_it(
    arch: str, param: str, domain: Any, message: str
) -> None:
    spec = _spec(search={"sharing": {arch: {param: domain}}})
    with pytest.raises(SpecError, match=rf"^spec: search\.sharing\.{arch}\.{param}: .*{message}"):
        check_spec(spec)


class OddWidthSharing(HardSharing):
    """A plug-in whose own check refuses values inside its searched range (even widths)."""

    name = "odd_width"
    PARAMS: ClassVar[dict[str, Any]] = {"width": 1}

    @classmethod
    def search_space(cls, *, num_layers: int = 6) -> dict[str, dict[str, Any]]:
        return {"width": {"type": "int", "low": 1, "high": 3}}

    @classmethod
    def resolve_params(
        cls, params: Mapping[str, Any], *, specs: Sequence[HeadSpec], num_layers: int
    ) -> dict[str, Any]:
        resolved = super().resolve_params(params, specs=specs, num_layers=num_layers)
        if resolved["width"] % 2 == 0:
            raise ConfigError(
                f"sharing architecture 'odd_width': width must be odd, but got {resolved['width']!r}"
            )
        return resolved


@pytest.fixture
def odd_width() -> Iterator[None]:
    SHARING_ARCHITECTURES.register("odd_width", OddWidthSharing)
    yield
    SHARING_ARCHITECTURES.unregister("odd_width")


def _row_spec(width: int) -> Any:
    row = {"name": "r1", "auxiliaries": ["synth_related"]}
    params = {"sharing": "odd_width", "odd_width/width": width}
    return _spec(search={"sharing": ["hard", "odd_width"]}, rows=[{**row, "params": params}])


@pytest.mark.usefixtures("odd_width")
def test_a_row_value_the_architecture_refuses_is_refused() -> None:
    # 2 lies in the searched range [1, 3] (both bounds pass), but the architecture refuses it.
    message = r"^spec: rows\[0\] \(r1\): params\.odd_width/width: .*width must be odd, but got 2$"
    with pytest.raises(SpecError, match=message):
        check_spec(_row_spec(2))
    check_spec(_row_spec(3))


@pytest.mark.usefixtures("odd_width")
def test_validate_refuses_the_row_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\ntarget: synth_target\ncandidates: [synth_related]\n"
        "encoder: {name: tiny-bert, max_length: 16}\n"
        "search: {sharing: [hard, odd_width]}\n"
        "rows: [{name: r1, auxiliaries: [synth_related], "
        "params: {sharing: odd_width, odd_width/width: 2}}]\n"
    )
    result = CliRunner().invoke(app, ["study", "validate", str(path)])
    assert result.exit_code != 0
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: "), result.output
    assert "s.yaml" in errors[0] and "rows[0] (r1): params.odd_width/width: " in errors[0]
    assert "width must be odd, but got 2" in errors[0]
    assert [p.name for p in tmp_path.iterdir()] == ["s.yaml"]


@pytest.mark.parametrize(
    ("options", "where", "message"),
    [
        ({"hidden_sizee": 64}, "hidden_sizee", "unknown option; allowed: seed and the BertConfig"),
        ({"num_hidden_layers": "x"}, "num_hidden_layers", "expected int, got str"),
        ({"hidden_size": 30, "num_attention_heads": 4}, "hidden_size", "multiple of"),
    ],
)
def test_a_tiny_bert_option_the_loader_refuses_is_refused(
    options: dict[str, Any], where: str, message: str
) -> None:
    spec = _spec(encoder={"name": "tiny-bert", "max_length": 16, "options": options})
    with pytest.raises(SpecError, match=rf"^spec: encoder\.options\.{where}: .*{message}"):
        check_spec(spec)


def test_tiny_bert_options_the_loader_accepts_pass() -> None:
    options = {"num_hidden_layers": 1, "hidden_size": 64, "num_attention_heads": 4, "seed": 3}
    check_spec(_spec(encoder={"name": "tiny-bert", "max_length": 16, "options": options}))


@pytest.mark.parametrize(
    ("options", "where", "message"),
    [
        ({"num_hidden_layers": 2.5}, "num_hidden_layers", "expected int, got float"),
        ({"hidden_dropout_prob": "x"}, "hidden_dropout_prob", "hidden_dropout_prob.*str"),
    ],
)
def test_a_pretrained_encoder_config_field_of_the_wrong_type_is_refused(
    options: dict[str, Any], where: str, message: str
) -> None:
    # Each trial's from_pretrained refused it (a strict dataclass error, not a ConfigError).
    spec = _spec(encoder={"name": "minilm", "max_length": 16, "options": options})
    with pytest.raises(SpecError, match=rf"^spec: encoder\.options\.{where}: .*{message}"):
        check_spec(spec)


def test_pretrained_encoder_options_from_pretrained_judges_are_left_to_loading() -> None:
    # Config fields of the right type and from_pretrained's own keywords (not config fields).
    options = {"hidden_dropout_prob": 0.2, "dtype": "float32", "attn_implementation": "eager"}
    check_spec(_spec(encoder={"name": "minilm", "max_length": 16, "options": options}))


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        (
            "encoder: {name: tiny-bert, max_length: 16}\n"
            "search: {sharing: {cross_stitch: {alpha_self: 2.0}}}\n",
            "search.sharing.cross_stitch.alpha_self",
        ),
        (
            "encoder: {name: tiny-bert, max_length: 16, options: {hidden_sizee: 64}}\n",
            "encoder.options.hidden_sizee",
        ),
    ],
)
def test_validate_prints_one_line_naming_the_field_and_the_file(
    tmp_path: Path, lines: str, field: str
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: s\ntarget: synth_target\ncandidates: [synth_related]\n" + lines)
    result = CliRunner().invoke(app, ["study", "validate", str(path)])
    assert result.exit_code != 0
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: "), result.output
    assert field in errors[0] and "s.yaml" in errors[0]


def test_an_objective_metric_the_target_does_not_score_is_named_with_the_allowed_ones() -> None:
    # The same words as a TrialConfig built by hand gets from `train_trial`
    # (tests/training/test_objective_direction.py), with the spec's file as the source.
    spec = _spec(objective={"metric": "f1", "direction": "maximize"})
    with pytest.raises(SpecError) as refused:
        check_spec(spec, source="s.yaml")
    assert str(refused.value) == (
        "s.yaml: objective.metric: 'f1' is not a metric of synth_target; allowed: accuracy"
    )
