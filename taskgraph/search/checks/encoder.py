"""Checks of the encoder: its name, its options, and the lengths and depths it allows.

The token windows (``encoder.max_length``, the pretraining stage's) against its positions, and
the searched layer counts of the sharing architectures against its depth.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskgraph.errors import ConfigError, SpecError
from taskgraph.spec.models import StudySpec

if TYPE_CHECKING:
    from taskgraph.search.space import SearchSpace


def _check_encoder(spec: StudySpec, source: str) -> None:
    from taskgraph.models.encoders import ENCODER_NAMES, check_encoder_directory, encoder_config

    name = spec.encoder.name
    if name not in ENCODER_NAMES and not Path(os.path.expanduser(name)).is_dir():
        raise SpecError(
            f"{source}: encoder.name: {name!r} is neither a known encoder nor a directory; "
            f"allowed: {', '.join(ENCODER_NAMES)}, or the path of a local Hugging Face model"
        )
    if name == "tiny-bert":
        _check_tiny_bert_options(spec, source)
    else:
        if name not in ENCODER_NAMES:
            # Every trial would fail on a directory the loader refuses, after the study exists.
            try:
                check_encoder_directory(name, spec.encoder.options)
            except ConfigError as error:
                raise SpecError(f"{source}: encoder.name: {error}") from None
        _check_pretrained_options(spec, source)
    config = encoder_config(name, spec.encoder.options)
    if config is None:  # what the loader refuses, before every trial of a study fails on it
        raise SpecError(
            f"{source}: encoder.name: {name!r} has no readable config.json, so it is not a "
            "Hugging Face model directory"
        )
    positions = _encoder_positions(config)
    if positions is None:
        return
    windows = [("encoder.max_length", spec.encoder.max_length)]
    pretraining = spec.search.pretraining.max_length
    if pretraining is not None:
        windows.append(("search.pretraining.max_length", pretraining))
    for where, length in windows:
        if length > positions:
            raise SpecError(
                f"{source}: {where}: {length} tokens, but encoder {name!r} has "
                f"{positions} positions (max_position_embeddings); use at most {positions}"
            )


def _check_tiny_bert_options(spec: StudySpec, source: str) -> None:
    # The loader's own check of names, types and sizes, without building the model: a bad
    # option otherwise failed every trial of a run as an invalid configuration.
    from taskgraph.models.encoders import EncoderOptionError, tiny_bert_config

    try:
        tiny_bert_config(spec.encoder.options)
    except EncoderOptionError as error:
        raise SpecError(f"{source}: encoder.options.{error.option}: {error.reason}") from None
    except ConfigError as error:
        raise SpecError(f"{source}: encoder.options: {error}") from None


def _check_pretrained_options(spec: StudySpec, source: str) -> None:
    # The options that are fields of the encoder's configuration, of a type its class refuses;
    # the loader's other keywords are judged by loading, once per trial.
    from taskgraph.models.encoders import EncoderOptionError, check_pretrained_options

    try:
        check_pretrained_options(spec.encoder.name, spec.encoder.options)
    except EncoderOptionError as error:
        raise SpecError(f"{source}: encoder.options.{error.option}: {error.reason}") from None


def _encoder_positions(config: dict[str, Any]) -> int | None:
    """Return the encoder's ``max_position_embeddings`` (None when its config does not say)."""
    value = config.get("max_position_embeddings")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_layer_ranges(spec: StudySpec, source: str, space: SearchSpace) -> None:
    """Refuse a spec's own searched range of a layer count that goes past the encoder's depth.

    A layer parameter is one whose registry range follows ``num_layers``.  Such a value above
    the depth would mean the full depth (docs/models.md), so the search would spend trials
    on configurations that are all the same model.  ``space`` is the spec's, built from the
    registry: its encoder depth and its spaces at that depth are reused.
    """
    from taskgraph.search.sharing_space import registry_spaces

    depth = space.encoder_depth
    if depth is None:
        return
    here = space.own_spaces
    deeper = registry_spaces(list(spec.search.sharing), num_layers=depth + 1)
    for arch, overrides in spec.search.sharing.items():
        for name, domain in overrides.items():
            if here[arch].get(name) == deeper[arch].get(name):
                continue  # not a layer count
            # A fixed value above the depth is one configuration (the full depth, as a spec
            # written for a deeper encoder and run on a smaller one may give); a searched
            # range or choice above it spreads trials over copies of one model.
            values = [domain.high, *(domain.choices or ())]
            over = [v for v in values if isinstance(v, int | float) and v > depth]
            if over:
                raise SpecError(
                    f"{source}: search.sharing.{arch}.{name}: {over[0]:g} is above the "
                    f"{depth} layers of encoder {spec.encoder.name!r}; use at most {depth}"
                )
