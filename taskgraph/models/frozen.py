"""Frozen bottom layers whose outputs are computed once per example and reused.

Fine-tuning every layer of the encoder costs a forward and a backward pass through all of
them at each step.  With the embeddings and the bottom ``k`` layers frozen (no gradients, no
dropout), their output for a given input never changes, so it can be computed once per
example (:func:`frozen_prefix`, in evaluation mode under ``torch.inference_mode``) and kept
beside the token ids as ``frozen_hidden``; each step then runs only the top ``N - k`` layers,
forward and backward (:func:`run_top`).  The prefix outputs depend on the pretrained weights,
the tokens and ``k`` alone, so one computation serves every step, epoch and trial that uses
the same encoder and data.  Dropout inside the frozen layers is off (it would make the
outputs differ from step to step); the trainable layers keep theirs.

Architectures that call the encoder as one block (``hard``, ``label_embedding``) support it;
the others route tasks through copies of layers or between layers, so freezing is refused for
them with a :class:`ConfigError` rather than silently computing something else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from taskgraph.errors import ConfigError
from taskgraph.models.layerwise import (
    EncoderParts,
    attention_bias,
    embed,
    run_layers,
    split_encoder,
)

__all__ = ["FROZEN_KEY", "freeze_bottom", "frozen_fingerprint", "frozen_prefix", "run_top"]

FROZEN_KEY = "frozen_hidden"  # the batch key holding the frozen prefix's output (B, L, H)
_SUPPORTED = ("hard", "label_embedding")


def _parts(model: nn.Module, architecture: str) -> EncoderParts:
    encoder = getattr(model, "encoder", None)
    if architecture not in _SUPPORTED or not isinstance(encoder, nn.Module):
        raise ConfigError(
            f"hyperparameter `freeze_layers` is implemented for the sharing architectures "
            f"{', '.join(_SUPPORTED)}, not {architecture!r}"
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
    """Return a sha256 of the frozen part's weights (embeddings and bottom layers) and depth.

    What the frozen outputs depend on besides the tokens: two encoders with these weights give
    the same prefix outputs, however they were loaded (a package, a directory, a continued
    pretraining), and any change of a frozen weight gives another fingerprint.  Costs one pass
    over the frozen weights (about 0.1 s for MiniLM's embeddings and four layers).
    """
    parts = _parts(model, architecture)
    layers = int(getattr(model, "frozen_layers", 0))
    digest = hashlib.sha256(f"{architecture}|{layers}".encode())
    for module in (parts.embeddings, *parts.layers[:layers]):
        for name, tensor in module.state_dict().items():
            data = tensor.detach().to("cpu").contiguous()
            digest.update(f"{name}|{data.dtype}|{tuple(data.shape)}".encode())
            digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
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
    modules = (parts.embeddings, *parts.layers[:layers])
    was_training = [m.training for m in modules]
    for module in modules:
        module.eval()
    try:
        with torch.inference_mode():
            for start in range(0, rows, batch_size):
                index = order[start : start + batch_size]
                longest = max(int(lengths[index].max()), 1)
                batch = {k: inputs[k][index, :longest].to(device) for k in keys}
                hidden = embed(parts.embeddings, batch)
                bias = attention_bias(parts.config, hidden, batch.get("attention_mask"))
                hidden = run_layers(list(parts.layers[:layers]), hidden, bias)
                out[index, :longest] = hidden.float().cpu()
    finally:
        for module, mode in zip(modules, was_training, strict=True):
            module.train(mode)
    return out  # made outside inference_mode, so training may read it


def run_top(model: nn.Module, batch: Mapping[str, Tensor], *, architecture: str) -> Tensor:
    """Return the encoder's last hidden states from the frozen prefix in ``batch``."""
    parts = _parts(model, architecture)
    layers = int(getattr(model, "frozen_layers", 0))
    hidden = batch[FROZEN_KEY]
    bias = attention_bias(parts.config, hidden, batch.get("attention_mask"))
    return run_layers(list(parts.layers[layers:]), hidden, bias)
