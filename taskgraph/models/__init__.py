"""Models: encoders (Hugging Face, local files only), task heads and sharing architectures."""

from taskgraph.models.encoders import EncoderBundle, load_encoder
from taskgraph.models.heads import (
    HeadOutput,
    HeadSpec,
    ParsePrediction,
    QAPrediction,
    TaskHead,
    build_head,
)
from taskgraph.models.sharing import SHARING_ARCHITECTURES, MultiTaskModel, build_model

__all__ = [
    "SHARING_ARCHITECTURES",
    "EncoderBundle",
    "HeadOutput",
    "HeadSpec",
    "MultiTaskModel",
    "ParsePrediction",
    "QAPrediction",
    "TaskHead",
    "build_head",
    "build_model",
    "load_encoder",
]
