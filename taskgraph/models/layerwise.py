"""Running a BERT-like encoder one layer at a time.

Hierarchical, soft and cross-stitch sharing need the hidden states between layers, or need
different copies of a layer for different tasks, so they cannot call the Hugging Face model as
one block.  This module splits a BERT-like model (``model.embeddings`` and
``model.encoder.layer``: BERT, RoBERTa, XLM-R, CamemBERT, ELECTRA, MiniLM) into its embeddings
and its layers and runs them the way ``BertModel.forward`` does in transformers 5: embeddings,
then one attention bias built by :func:`transformers.masking_utils.create_bidirectional_mask`
(which respects the configured attention implementation: eager, sdpa, ...), then each layer
called as ``layer(hidden_states, attention_bias)``.

Having that layout is not enough: DeBERTa-v2 and MPNet have it too, but their encoders call
each layer differently (with relative-position inputs this module does not compute; DeBERTa
with a mask of its own form, and its layers return tuples).  So :func:`split_encoder` accepts
only the ``config.model_type`` values of :data:`LAYERWISE_MODEL_TYPES`, whose layers run as
BERT's do (a test checks each against its model's own output).

ELECTRA models whose embeddings are narrower than the hidden states (``embedding_size`` !=
``hidden_size``, e.g. ELECTRA-small: 128 -> 256) carry a linear ``model.embeddings_project``
that ``ElectraModel.forward`` applies after the embeddings; :func:`split_encoder` then returns
the embeddings and that projection as one module (:class:`ProjectedEmbeddings`), so every
caller of :func:`embed` gets hidden-width states.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from torch import Tensor, nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.masking_utils import create_bidirectional_mask

from taskgraph.errors import ConfigError

__all__ = [
    "LAYERWISE_MODEL_TYPES",
    "EncoderParts",
    "ProjectedEmbeddings",
    "attention_bias",
    "embed",
    "run_layers",
    "split_encoder",
]

# The model types whose layers this module runs exactly as their own model does.
LAYERWISE_MODEL_TYPES = ("bert", "camembert", "electra", "roberta", "xlm-roberta")


class ProjectedEmbeddings(nn.Module):
    """An encoder's embeddings followed by its ``embeddings_project`` (ELECTRA), as one module."""

    def __init__(self, *, embeddings: nn.Module, project: nn.Module) -> None:
        """Hold ``embeddings`` and ``project`` (the encoder's own modules, not copies)."""
        super().__init__()
        self.embeddings = embeddings
        self.project = project
        self.training = embeddings.training  # a wrapper made mid-evaluation is in eval mode too

    @property
    def word_embeddings(self) -> nn.Module:
        """Return the input word embeddings (embedding width, before the projection)."""
        module = self.embeddings.word_embeddings
        assert isinstance(module, nn.Module)
        return module

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        """Return the projected embedding output (B, L, hidden_size)."""
        hidden = self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        projected = self.project(hidden)
        assert isinstance(projected, Tensor)
        return projected


@dataclass
class EncoderParts:
    """The embeddings module, the layer list and the config of a BERT-like encoder.

    ``embeddings`` ends at the hidden width: for an encoder with ``embeddings_project``
    (ELECTRA with ``embedding_size != hidden_size``) it is a :class:`ProjectedEmbeddings`.
    """

    embeddings: nn.Module
    layers: nn.ModuleList
    config: PretrainedConfig


def split_encoder(model: PreTrainedModel, *, architecture: str) -> EncoderParts:
    """Return the embeddings and layers of ``model`` (shared, not copied).

    Raises :class:`ConfigError` naming ``architecture`` when the model is not BERT-like: not
    laid out as BERT is, or of a model type outside :data:`LAYERWISE_MODEL_TYPES`.
    """
    embeddings = getattr(model, "embeddings", None)
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if not isinstance(embeddings, nn.Module) or not isinstance(layers, nn.ModuleList):
        raise ConfigError(
            f"sharing architecture {architecture!r} runs the encoder layer by layer and needs a "
            f"BERT-like model (model.embeddings and model.encoder.layer); got {type(model).__name__}"
        )
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in LAYERWISE_MODEL_TYPES:
        raise ConfigError(
            f"sharing architecture {architecture!r} runs the encoder layer by layer, which works "
            f"only for the model types {', '.join(LAYERWISE_MODEL_TYPES)}; got "
            f"{type(model).__name__} (model_type {model_type!r})"
        )
    if getattr(model.config, "is_decoder", False):
        raise ConfigError(
            f"sharing architecture {architecture!r} needs a bidirectional encoder; "
            f"{type(model).__name__} is configured as a decoder"
        )
    # ElectraModel.forward applies this projection between the embeddings and the first layer.
    project = getattr(model, "embeddings_project", None)
    if isinstance(project, nn.Module):
        embeddings = ProjectedEmbeddings(embeddings=embeddings, project=project)
    return EncoderParts(embeddings=embeddings, layers=layers, config=model.config)


def embed(embeddings: nn.Module, batch: Mapping[str, Tensor]) -> Tensor:
    """Return the embedding output (B, L, H) for the ``input_ids`` (and ``token_type_ids``).

    ``embeddings`` is :attr:`EncoderParts.embeddings` (projected to the hidden width where the
    encoder has an ``embeddings_project``).
    """
    return embeddings(input_ids=batch["input_ids"], token_type_ids=batch.get("token_type_ids"))


def attention_bias(
    config: PretrainedConfig, embedded: Tensor, attention_mask: Tensor | None
) -> Tensor | None:
    """Return the attention bias the layers expect (``None`` when no position is masked)."""
    # Same call as BertModel._create_attention_masks, so layer-by-layer runs match the model.
    return create_bidirectional_mask(
        config=config, inputs_embeds=embedded, attention_mask=attention_mask
    )


def run_layers(
    layers: nn.ModuleList | list[nn.Module], hidden: Tensor, bias: Tensor | None
) -> Tensor:
    """Return ``hidden`` passed through ``layers`` in order."""
    for layer in layers:
        hidden = layer(hidden, bias)
    return hidden
