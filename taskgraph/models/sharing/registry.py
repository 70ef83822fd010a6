"""The sharing architectures, by the name a study spec uses (imported on first lookup)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from taskgraph.registry import Registry

if TYPE_CHECKING:
    from taskgraph.models.sharing.base import MultiTaskModel

__all__ = ["SHARING_ARCHITECTURES"]

SHARING_ARCHITECTURES: Registry[type[MultiTaskModel]] = Registry(kind="sharing architecture")
SHARING_ARCHITECTURES.register("hard", "taskgraph.models.sharing.hard:HardSharing")
SHARING_ARCHITECTURES.register(
    "hierarchical", "taskgraph.models.sharing.hierarchical:HierarchicalSharing"
)
SHARING_ARCHITECTURES.register("soft", "taskgraph.models.sharing.soft:SoftSharing")
SHARING_ARCHITECTURES.register(
    "cross_stitch", "taskgraph.models.sharing.cross_stitch:CrossStitchSharing"
)
SHARING_ARCHITECTURES.register(
    "label_embedding", "taskgraph.models.sharing.label_embedding:LabelEmbeddingSharing"
)
SHARING_ARCHITECTURES.register("mmoe", "taskgraph.models.sharing.mmoe:MixtureOfExpertsSharing")
