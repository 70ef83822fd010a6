"""Frozen bottom layers whose outputs are computed once per example and reused.

Fine-tuning every layer of the encoder costs a forward and a backward pass through all of
them at each step.  With the embeddings and the bottom ``k`` layers frozen (no gradients, no
dropout), their output for a given input never changes, so it can be computed once per
example (:func:`frozen_prefix`, in evaluation mode under ``torch.inference_mode``) and kept
beside the token ids as ``frozen_hidden``; each step then runs only the top ``N - k`` layers,
forward and backward (:func:`run_top`).  The prefix outputs depend on the frozen weights, the
encoder's configuration (activation, LayerNorm epsilon, attention implementation, ...), the
inputs and ``k`` (:func:`frozen_fingerprint` covers all but the inputs), so one computation
serves every step, epoch and trial that uses the same encoder and data.  Dropout inside the
frozen layers is off (it would make the outputs differ from step to step); the trainable
layers keep theirs.

Batches without ``frozen_hidden`` (masked-LM tasks, whose inputs are re-masked at every step,
or a caller's own batches) run the frozen layers at each step (:func:`run_prefix`), also in
evaluation mode and without gradients, so they see the same frozen layers as every other task.
A masked-LM head tied to the word embeddings (``{"tie": True}``, the default) projects onto
the vocabulary with the word-embedding matrix, which is frozen with the embeddings: only its
transform and bias train (``{"tie": False}`` gives it a trainable copy instead).

Architectures that call the encoder as one block (``hard``, ``label_embedding``) support it;
the others route tasks through copies of layers or between layers, so freezing is refused for
them with a :class:`ConfigError` rather than silently computing something else.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from taskgraph.errors import ConfigError
from taskgraph.models.encoders import hash_tensors
from taskgraph.models.layerwise import (
    EncoderParts,
    attention_bias,
    embed,
    run_layers,
    split_encoder,
)

__all__ = [
    "FREEZE_ARCHITECTURES",
    "FROZEN_KEY",
    "freeze_bottom",
    "frozen_fingerprint",
    "frozen_prefix",
    "run_prefix",
    "run_top",
]

FROZEN_KEY = "frozen_hidden"  # the batch key holding the frozen prefix's output (B, L, H)
#: the sharing architectures whose build implements ``freeze_layers`` (study checks read it)
FREEZE_ARCHITECTURES = ("hard", "label_embedding")
# Where the config came from, not what it computes: a package and a directory holding the same
# model give the same frozen outputs and should share them.  (The weights' dtypes are hashed
# with the weights themselves.)
_PROVENANCE_KEYS = (
    "_name_or_path",
    "_commit_hash",
    "architectures",
    "transformers_version",
    "dtype",
    "torch_dtype",
)


def _parts(model: nn.Module, architecture: str) -> EncoderParts:
    encoder = getattr(model, "encoder", None)
    if architecture not in FREEZE_ARCHITECTURES or not isinstance(encoder, nn.Module):
        raise ConfigError(
            f"hyperparameter `freeze_layers` is implemented for the sharing architectures "
            f"{', '.join(FREEZE_ARCHITECTURES)}, not {architecture!r}"
        )
    return split_encoder(encoder, architecture=architecture)  # type: ignore[arg-type]


def freeze_bottom(model: nn.Module, layers: int, *, architecture: str) -> None:
    """Stop gradients to ``model.encoder``'s embeddings and bottom ``layers`` layers.

    Sets ``model.frozen_layers``; raises :class:`ConfigError` when ``layers`` exceeds the
    encoder's depth or the architecture does not run the encoder as one block.
    """
    parts = _parts(model, architecture)
    depth = len(parts.layers)
    if not 0 <= layers <= depth:
        raise ConfigError(
            f"hyperparameter `freeze_layers` must be in [0, {depth}] for this encoder "
            f"({depth} layers), but got {layers}"
        )
    setattr(model, "frozen_layers", layers)  # noqa: B010 - any module, not only MultiTaskModel
    if layers == 0:
        return
    for module in (parts.embeddings, *parts.layers[:layers]):
        for parameter in module.parameters():
            parameter.requires_grad_(False)


def frozen_fingerprint(model: nn.Module, *, architecture: str) -> str:
    """Return a sha256 of the frozen part's weights and config (embeddings, bottom layers, depth).

    What the frozen outputs depend on besides the inputs: the encoder's configuration (every
    field but where it was loaded from, plus the attention implementation) and the frozen
    weights.  Two encoders with this configuration and these weights give the same prefix
    outputs, however they were loaded (a package, a directory, a continued pretraining); a
    change of a frozen weight or of the configuration (``hidden_act``, ``layer_norm_eps``,
    ...) gives another fingerprint.  Costs one pass over the frozen weights (about 0.1 s for
    MiniLM's embeddings and four layers).
    """
    parts = _parts(model, architecture)
    layers = int(getattr(model, "frozen_layers", 0))
    digest = hashlib.sha256(f"{architecture}|{layers}".encode())
    settings = json.loads(parts.config.to_json_string(use_diff=False))
    for key in _PROVENANCE_KEYS:
        settings.pop(key, None)
    settings["attn_implementation"] = getattr(parts.config, "_attn_implementation", None)
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for module in (parts.embeddings, *parts.layers[:layers]):
        hash_tensors(digest, module.state_dict())
    return digest.hexdigest()


def frozen_prefix(
    model: nn.Module,
    inputs: Mapping[str, Tensor],
    *,
    architecture: str,
    batch_size: int,
    device: torch.device,
) -> Tensor:
    """Return the output (N, L, H) of the frozen embeddings and bottom layers, on the CPU.

    ``inputs`` holds padded ``input_ids`` and ``attention_mask`` (and ``token_type_ids``) of
    N sequences; rows are computed ``batch_size`` at a time in evaluation mode.
    """
    parts = _parts(model, architecture)
    layers = int(getattr(model, "frozen_layers", 0))
    rows = int(inputs["input_ids"].shape[0])
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in inputs]
    mask = inputs["attention_mask"]
    lengths = mask.sum(dim=1)
    # Length-sorted batches, each trimmed to its longest row: far less padding computed.
    order = torch.argsort(lengths, stable=True)
    width = int(mask.shape[1]) if rows else 1
    out = torch.zeros((rows, width, int(parts.config.hidden_size)))
    with torch.inference_mode():
        for start in range(0, rows, batch_size):
            index = order[start : start + batch_size]
            longest = max(int(lengths[index].max()), 1)
            batch = {k: inputs[k][index, :longest].to(device) for k in keys}
            out[index, :longest] = _run_frozen(parts, layers, batch).float().cpu()
    return out  # made outside inference_mode, so training may read it


def run_prefix(model: nn.Module, batch: Mapping[str, Tensor], *, architecture: str) -> Tensor:
    """Return the frozen embeddings' and bottom layers' output (B, L, H) for one batch.

    For batches that carry no ``frozen_hidden`` (masked LM): computed now, in evaluation mode
    (no dropout) and without gradients, as :func:`frozen_prefix` computes it.
    """
    parts = _parts(model, architecture)
    with torch.no_grad():
        return _run_frozen(parts, int(getattr(model, "frozen_layers", 0)), batch)


def _run_frozen(parts: EncoderParts, layers: int, batch: Mapping[str, Tensor]) -> Tensor:
    """Return the frozen modules' output on ``batch``, run in evaluation mode."""
    # Every submodule's own mode is restored (not the roots' recursively): the caller's
    # train/eval state of the encoder is left exactly as it was.
    modes = [
        (module, module.training)
        for root in (parts.embeddings, *parts.layers[:layers])
        for module in root.modules()
    ]
    for module, _ in modes:
        module.training = False
    try:
        hidden = embed(parts.embeddings, batch)
        bias = attention_bias(parts.config, hidden, batch.get("attention_mask"))
        return run_layers(list(parts.layers[:layers]), hidden, bias)
    finally:
        for module, mode in modes:
            module.training = mode


def run_top(model: nn.Module, batch: Mapping[str, Tensor], *, architecture: str) -> Tensor:
    """Return the encoder's last hidden states from the frozen prefix in ``batch``."""
    parts = _parts(model, architecture)
    layers = int(getattr(model, "frozen_layers", 0))
    hidden = batch[FROZEN_KEY]
    bias = attention_bias(parts.config, hidden, batch.get("attention_mask"))
    return run_layers(list(parts.layers[layers:]), hidden, bias)
