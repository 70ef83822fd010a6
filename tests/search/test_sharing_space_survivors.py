"""The sharing architectures' search spaces (``taskgraph.search.sharing_space``): what its
mutation audit found untested.

Pinned here: reading an architecture's plain-data space (a ``default`` entry ignored, a
malformed entry, typed or not, refused in one line naming ``<arch>.<param>`` and why), the
unknown-parameter message (the first unknown name, the allowed ones sorted, ``(none)``), an
architecture absent from the spaces given, an unknown architecture name, the registry's default
depth (MiniLM's 6), each bound of a spec range passed to the architecture's own check (a float
range's bounds as floats, the encoder's depth passed on, no bound for an unknown depth, an
unregistered name not checked) and the refusal's wording, and the encoder depth read from its
config (only a whole number > 0).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from taskgraph.errors import ConfigError, SpecError
from taskgraph.models.heads import HeadSpec
from taskgraph.models.sharing import SHARING_ARCHITECTURES
from taskgraph.models.sharing.hard import HardSharing
from taskgraph.search.sharing_space import (
    domain_from_plain,
    encoder_depth,
    registry_spaces,
    sharing_domains,
    sharing_refusal,
)
from taskgraph.spec import spec_from_dict
from taskgraph.spec.domains import Domain


def test_a_default_in_an_architectures_space_is_not_part_of_the_domain() -> None:
    domain = domain_from_plain("x.width", {"type": "int", "low": 1, "high": 3, "default": 2})
    assert (domain.kind, domain.low, domain.high) == ("int", 1, 3)
    domain = domain_from_plain("x.mode", {"type": "categorical", "choices": ["a"], "default": "a"})
    assert domain.choices == ("a",)


def test_an_unreadable_space_entry_names_the_architecture_parameter_and_why() -> None:
    with pytest.raises(SpecError) as error:
        sharing_domains({"soft": {}}, {"soft": {"lambda": {"value": [1]}}}, num_layers=None)
    message = str(error.value)
    assert message.startswith("search space of soft.lambda: cannot read {'value': [1]}: ")
    assert "a fixed value must be a number" in message


@pytest.mark.parametrize(
    ("plain", "why"),
    [
        # a plug-in's malformed typed range escaped as pydantic's multi-line ValidationError
        ({"type": "int", "low": 1}, "a range needs both low and high"),
        ({"type": "float", "low": 3, "high": 1}, "low must be <= high, got low=3 high=1"),
        ({"type": "int", "low": 1, "high": 3, "bogus": 1}, "bogus: Extra inputs are not permitted"),
        # ...and a categorical one without choices as a KeyError
        ({"type": "categorical"}, "a categorical parameter needs a list of `choices`"),
        (
            {"type": "categorical", "choices": 5},
            "a categorical parameter needs a list of `choices`",
        ),
    ],
)
def test_a_malformed_typed_or_categorical_entry_is_one_spec_error_line(
    plain: dict[str, object], why: str
) -> None:
    with pytest.raises(SpecError) as error:
        domain_from_plain("soft.lambda", plain)
    message = str(error.value)
    assert message.startswith(f"search space of soft.lambda: cannot read {plain!r}: ")
    assert why in message
    assert "\n" not in message and "pydantic.dev" not in message


def test_the_first_unknown_parameter_is_named_with_the_allowed_ones_sorted() -> None:
    # cross_stitch's own space lists top_k_layers before alpha_self.
    overrides = {"zeta": Domain(value=1), "beta": Domain(value=1)}
    spaces = registry_spaces(["cross_stitch"])
    with pytest.raises(SpecError) as error:
        sharing_domains({"cross_stitch": overrides}, spaces, num_layers=None)
    assert str(error.value) == (
        "search.sharing.cross_stitch: unknown parameter 'beta'; allowed: alpha_self, top_k_layers"
    )


def test_an_architecture_with_no_parameters_says_none_are_allowed() -> None:
    with pytest.raises(SpecError) as error:
        sharing_domains({"hard": {"width": Domain(value=1)}}, {"hard": {}}, num_layers=None)
    assert str(error.value) == "search.sharing.hard: unknown parameter 'width'; allowed: (none)"


def test_an_architecture_missing_from_the_spaces_has_no_parameters() -> None:
    assert sharing_domains({"hard": {}}, {}, num_layers=None) == {"hard": {}}
    with pytest.raises(SpecError, match=r"unknown parameter 'width'; allowed: \(none\)$"):
        sharing_domains({"hard": {"width": Domain(value=1)}}, {}, num_layers=None)


def test_an_unknown_architecture_is_a_spec_error_naming_the_known_ones() -> None:
    with pytest.raises(SpecError) as error:
        registry_spaces(["nope"])
    assert str(error.value).startswith(
        "search.sharing: unknown sharing architecture 'nope'; known: cross_stitch, hard,"
    )


def test_without_an_encoder_depth_the_layer_ranges_are_minilms_six() -> None:
    spaces = registry_spaces(["soft", "mmoe"])
    assert spaces["soft"]["top_k_layers"] == {"type": "int", "low": 1, "high": 6}
    assert spaces["mmoe"]["top_k_layers"]["high"] == 6
    assert registry_spaces(["soft"], num_layers=3)["soft"]["top_k_layers"]["high"] == 3


def test_both_bounds_of_a_spec_range_are_checked() -> None:
    overrides = {"alpha_self": Domain(low=0.5, high=1.5)}
    with pytest.raises(SpecError) as error:
        sharing_domains(
            {"cross_stitch": overrides}, registry_spaces(["cross_stitch"]), num_layers=2
        )
    assert str(error.value) == (
        "search.sharing.cross_stitch.alpha_self: sharing architecture 'cross_stitch': "
        "alpha_self must be in (0, 1), but got 1.5"
    )


class _FloatOnlySharing(HardSharing):
    """A plug-in whose check takes only floats for ``rate`` and layers up to the encoder's depth."""

    name = "float_only"
    PARAMS: ClassVar[dict[str, Any]] = {"rate": 0.5, "layer": 1}

    @classmethod
    def search_space(cls, *, num_layers: int = 6) -> dict[str, dict[str, Any]]:
        return {
            "rate": {"type": "float", "low": 0.1, "high": 0.9},
            "layer": {"type": "int", "low": 1, "high": num_layers},
        }

    @classmethod
    def resolve_params(
        cls, params: Mapping[str, Any], *, specs: Sequence[HeadSpec], num_layers: int
    ) -> dict[str, Any]:
        resolved = super().resolve_params(params, specs=specs, num_layers=num_layers)
        if not isinstance(resolved["rate"], float):
            raise ConfigError(f"float_only: rate must be a float, but got {resolved['rate']!r}")
        if resolved["layer"] > num_layers:
            raise ConfigError(f"float_only: layer {resolved['layer']} is past {num_layers}")
        return resolved


@pytest.fixture
def float_only() -> Iterator[None]:
    SHARING_ARCHITECTURES.register("float_only", _FloatOnlySharing)
    yield
    SHARING_ARCHITECTURES.unregister("float_only")


@pytest.mark.usefixtures("float_only")
def test_a_float_range_with_whole_bounds_is_checked_as_floats() -> None:
    # A trial's suggest_float gives 1.0, not 1: the bound is passed as the trial would get it.
    rate = Domain(low=1, high=2, type="float")
    assert rate.kind == "float" and rate.values() == (1, 2)
    spaces = registry_spaces(["float_only"])
    out = sharing_domains({"float_only": {"rate": rate}}, spaces, num_layers=None)
    assert out["float_only"]["rate"] == rate
    with pytest.raises(SpecError, match=r"rate must be a float, but got 1$"):
        sharing_domains({"float_only": {"rate": Domain(value=1)}}, spaces, num_layers=None)


@pytest.mark.usefixtures("float_only")
def test_the_encoder_depth_reaches_the_architectures_check_and_an_unknown_one_bounds_nothing() -> (
    None
):
    assert sharing_refusal("float_only", "layer", 3, num_layers=2) == (
        "float_only: layer 3 is past 2"
    )
    assert sharing_refusal("float_only", "layer", 2, num_layers=2) is None
    assert sharing_refusal("float_only", "layer", 1000, num_layers=None) is None


def test_an_unregistered_architecture_is_not_checked() -> None:
    assert sharing_refusal("plain_data_only", "width", -1, num_layers=2) is None
    spaces = {"plain_data_only": {"width": {"type": "int", "low": 1, "high": 3}}}
    out = sharing_domains({"plain_data_only": {"width": Domain(value=-1)}}, spaces, num_layers=2)
    assert out["plain_data_only"]["width"] == Domain(value=-1)


def _spec(encoder: dict[str, Any]) -> Any:
    return spec_from_dict({"name": "s", "target": "t", "candidates": ["a"], "encoder": encoder})


@pytest.mark.parametrize(
    ("layers", "depth"), [(3, 3), (0, None), (-1, None), (True, None), (2.0, None), ("2", None)]
)
def test_the_encoder_depth_is_a_whole_number_of_layers_above_zero(
    layers: Any, depth: int | None
) -> None:
    spec = _spec({"name": "tiny-bert", "options": {"num_hidden_layers": layers}})
    assert encoder_depth(spec) == depth


def test_an_encoder_without_a_readable_config_has_no_known_depth(tmp_path: Path) -> None:
    assert encoder_depth(_spec({"name": str(tmp_path)})) is None
