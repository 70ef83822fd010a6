"""``build_model``: a sharing architecture by name, over an encoder, with one head per task."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from taskgraph.models.encoders import EncoderBundle
from taskgraph.models.heads import HeadSpec
from taskgraph.models.sharing.base import MultiTaskModel, check_head_specs, check_param_names
from taskgraph.models.sharing.registry import SHARING_ARCHITECTURES

__all__ = ["build_model"]


def build_model(
    *,
    sharing: str,
    encoder: EncoderBundle | Callable[[], EncoderBundle],
    heads: Sequence[HeadSpec],
    params: Mapping[str, Any] | None = None,
) -> MultiTaskModel:
    """Return the multi-task model of architecture ``sharing`` with a head per spec.

    ``encoder`` is a loaded bundle or a callable that loads one; its modules become the
    model's (they are not copied), so give each model its own bundle.  The architecture name
    and the parameter names are checked before the encoder is loaded: an unknown one is a
    :class:`~taskgraph.errors.UnknownNameError` / :class:`~taskgraph.errors.ConfigError`
    that lists the allowed names.
    """
    architecture = SHARING_ARCHITECTURES.get(sharing)
    specs = list(heads)
    check_head_specs(specs)
    params = dict(params or {})
    # Names are checked here already, so a typo fails before a (slow) encoder load; the values
    # are checked by the architecture, which needs the encoder's depth.
    check_param_names(sharing, params, allowed=architecture.allowed_params(specs))
    bundle = encoder if isinstance(encoder, EncoderBundle) else encoder()
    return architecture(encoder=bundle, heads=specs, params=params)
