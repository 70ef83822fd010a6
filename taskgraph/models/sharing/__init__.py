"""Sharing architectures: how tasks share the encoder (one module per architecture).

Look one up by name in :data:`SHARING_ARCHITECTURES` or build a model with
:func:`build_model`; every architecture is a :class:`MultiTaskModel`.
"""

from taskgraph.models.sharing.base import MultiTaskModel
from taskgraph.models.sharing.factory import build_model
from taskgraph.models.sharing.registry import SHARING_ARCHITECTURES

__all__ = ["SHARING_ARCHITECTURES", "MultiTaskModel", "build_model"]
