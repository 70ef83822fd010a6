"""The pretraining stage: continued masked-LM training of the encoder before fine-tuning.

:func:`pretrained_encoder_state` gives the encoder weights after ``config.pretraining``
(:class:`~taskgraph.trial.PretrainingConfig`) and a report of the stage, from the cache when a
trial with the same pretraining already ran it.  This module runs the loop; the corpus is
read and cut into windows by :mod:`taskgraph.training.pretraining_corpus`, and the
checkpoints are kept by :mod:`taskgraph.training.pretraining_cache`.

* **Corpus.**  Each ``corpus`` entry is a task name (catalog, inline or ``synth_*``: the text
  of its train split: sentences, sentence pairs, or QA contexts, each distinct context once,
  and questions; the whole split, whatever ``mixing.max_examples`` caps for fine-tuning) or
  the path of a UTF-8 text file (one passage a line, blank lines skipped; a file that is not
  UTF-8 is a ConfigError naming its line).  An empty corpus means the trial's own tasks.
  Texts are tokenized without truncation and cut into windows of ``max_length - 2`` word
  pieces (``[CLS] ... [SEP]``), so long passages are used whole; a chunk of fewer than 4 word
  pieces (a short text, or the tail of a long one) is dropped.  A window longer than the
  encoder's ``max_position_embeddings`` is a ConfigError before anything runs.
  ``max_sequences`` keeps a fixed random subset of the windows.  Up to 5 % of the windows
  (at most 64) are held out to measure the accuracy curve and are never trained on.
* **Loop.**  ``steps`` AdamW steps (``learning_rate``, 10 % linear warmup then linear decay,
  no weight decay on biases and LayerNorms, gradient clipping at 1.0) of ``batch_size``
  windows drawn in seeded random order (epochs; the seed has no scheme in it, so every scheme
  trains on the same windows at the same step), masked by the scheme
  (:mod:`taskgraph.training.masking`; no special token of the tokenizer, ``[UNK]`` included,
  is ever masked) and corrupted 80/10/10 with draws that do not depend on the scheme either.
  The masked-LM head (:class:`~taskgraph.models.heads.masked_lm.MaskedLMHead`, tied to the
  word embeddings) is trained with the encoder and discarded afterwards: fine-tuning starts
  from the encoder only.
* **Curve.**  Masked-token accuracy (top-1) on the held-out windows with fixed random masks
  (the same masks for every scheme and every evaluation) at step 0, every
  ``max(steps // 10, 1)`` steps and at the end: ``[[step, accuracy], ...]``.
* **Cache.**  The weights and the report are kept under ``$TASKGRAPH_CACHE/pretrained/<key>/``
  (and in memory for the process), keyed by the corpus fingerprint (each entry's dataset
  fingerprint or file sha256), the scheme and all its parameters, the seed (each seed
  pretrains on its own, so a seed's variance includes the stage's), the encoder (name and
  options), the input length and the precision (bf16 autocast on CUDA, fp32 elsewhere: the
  two give different weights); a directory is written under a temporary name and renamed into
  place, so parallel trials never read half a checkpoint.
  ``TASKGRAPH_PRETRAIN_CACHE=off`` disables the disk level.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from taskgraph.errors import ConfigError
from taskgraph.models.encoders import weights_fingerprint
from taskgraph.tasks.types import TaskDef
from taskgraph.training.masking import AdaptiveMasking, build_masking, corrupt
from taskgraph.training.pretraining_cache import _read, _write, pretraining_key
from taskgraph.training.pretraining_corpus import (
    _check_window,
    _window_field,
    _windows,
    corpus_texts,
)
from taskgraph.trial import PretrainingConfig, TrialConfig
from taskgraph.vocabulary import stable_seed

__all__ = ["pretrained_encoder_state", "run_pretraining", "stage_precision"]

_HELD_OUT = 64


def stage_precision(device: torch.device) -> str:
    """Return the stage's arithmetic on ``device``: ``"bf16"`` (CUDA autocast) or ``"fp32"``."""
    return "bf16" if device.type == "cuda" else "fp32"


def pretrained_encoder_state(
    config: TrialConfig,
    encoder: Any,
    *,
    tasks: Mapping[str, TaskDef] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    device: torch.device | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Return (encoder state dict, report) of ``config``'s pretraining, from the cache if there.

    ``encoder`` is the freshly loaded :class:`~taskgraph.models.encoders.EncoderBundle` the
    stage starts from (it is not modified).  The report's ``cached`` is true when the weights
    came from the cache (memory or disk); ``seconds`` and ``tokens`` are the stage's own cost
    whenever it ran.
    """
    pre = config.pretraining
    assert pre is not None
    device = device or torch.device("cpu")
    _check_window(pre.max_length or config.max_length, encoder, field=_window_field(pre))
    texts, fingerprint = corpus_texts(config, tasks=tasks, data_dir=data_dir)
    key = pretraining_key(
        config,
        fingerprint,
        precision=stage_precision(device),
        weights=weights_fingerprint(encoder.model),
    )
    hit = _read(key)
    if hit is not None:
        state, report = hit
        return state, {**report, "cached": True}
    state, report = run_pretraining(
        pre,
        encoder,
        texts,
        seed=config.seed,
        max_length=pre.max_length or config.max_length,
        device=device,
    )
    report.update(corpus_fingerprint=fingerprint, key=key)
    _write(key, state, report)
    return state, {**report, "cached": False}


def _decay_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay: list[torch.nn.Parameter] = []
    plain: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (plain if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def run_pretraining(
    pre: PretrainingConfig,
    encoder: Any,
    texts: Sequence[str],
    *,
    seed: int,
    max_length: int,
    device: torch.device,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Return (encoder state dict on the CPU, report) after masked-LM training on ``texts``.

    Trains a deep copy of ``encoder.model``; the report holds ``scheme``, ``steps``,
    ``sequences``, ``held_out``, ``tokens`` (non-padding tokens of the training batches),
    ``masked_tokens``, ``seconds`` and ``curve`` (``[[step, masked-token accuracy], ...]``;
    adaptive masking adds ``[step, accuracy, competence, target quantile]``).
    """
    import copy

    from taskgraph.models.heads import HeadSpec, build_head
    from taskgraph.tasks.types import TaskType

    start = time.perf_counter()
    _check_window(max_length, encoder, field=_window_field(pre))
    masking = build_masking(pre.scheme, pre.options)
    tokenizer = encoder.tokenizer
    ids = _windows(texts, tokenizer, max_length=max_length)
    if pre.max_sequences is not None and pre.max_sequences < len(ids):
        pick = np.random.default_rng(stable_seed("pretraining-subset", pre.max_sequences))
        ids = ids[np.sort(pick.choice(len(ids), size=pre.max_sequences, replace=False))]
    if len(ids) < 2:
        raise ConfigError(f"pretraining.corpus gives {len(ids)} sequence(s); need at least 2")
    order = np.random.default_rng(stable_seed("pretraining-held-out", len(ids))).permutation(
        len(ids)
    )
    n_held = min(_HELD_OUT, max(1, len(ids) // 20))
    held, train = ids[np.sort(order[:n_held])], ids[np.sort(order[n_held:])]
    # never masked: every special token of the tokenizer ([CLS], [SEP], [PAD], [UNK], [MASK]
    # for BERT), as Hugging Face's DataCollatorForLanguageModeling leaves them
    special_ids = sorted({int(i) for i in tokenizer.all_special_ids})
    special = np.isin(train, special_ids)
    held_special = np.isin(held, special_ids)
    vocab = len(tokenizer)
    mask_id = int(tokenizer.mask_token_id)
    pad_id = int(tokenizer.pad_token_id)
    if isinstance(masking, AdaptiveMasking):
        masking.bind(n_sequences=len(train), length=max_length, vocab_size=vocab)

    torch.manual_seed(stable_seed(seed, "pretraining"))
    model = copy.deepcopy(encoder.model).to(device)
    hidden = int(model.config.hidden_size)
    head = build_head(
        HeadSpec(task="pretraining", type=TaskType.MASKED_LM, num_labels=0),
        hidden_size=hidden,
        word_embeddings=model.get_input_embeddings(),
        layer_norm_eps=float(getattr(model.config, "layer_norm_eps", 1e-12)),
    ).to(device)
    params = torch.nn.ModuleList([model, head])
    optimizer = torch.optim.AdamW(_decay_groups(params, 0.01), lr=pre.learning_rate)
    warmup = max(1, int(0.1 * pre.steps))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (pre.steps - step) / max(1, pre.steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    # Four generators, so that the schemes of one seed share everything but the choice of
    # positions: the window order (no scheme in its seed), the adaptive scheme's refresh
    # passes (drawn apart, so they never shift the order), the choice (the scheme's own), and
    # the 80/10/10 corruption, one generator per step from a scheme-free seed, so a position
    # both schemes mask at a step is corrupted alike whatever else either masked.
    order_rng = np.random.default_rng(stable_seed(seed, "pretraining-order"))
    refresh_rng = np.random.default_rng(stable_seed(seed, "pretraining-refresh"))
    choice_rng = np.random.default_rng(stable_seed(seed, "pretraining-masks", pre.scheme))
    corruption_seed = stable_seed(seed, "pretraining-corruption")
    held_rng = np.random.default_rng(stable_seed("pretraining-held-out-masks"))
    held_chosen = (held_rng.random(held.shape) < 0.15) & ~held_special
    held_inputs, held_labels = corrupt(
        held, held_chosen, mask_token_id=mask_id, vocab_size=vocab, rng=held_rng
    )
    autocast = stage_precision(device) == "bf16"

    def forward(
        original: np.ndarray, inputs: np.ndarray, labels: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (per-masked-position loss (M,), correct (M,)) in row-major order."""
        attended = original != pad_id  # a random replacement may draw the padding id
        width = int(attended.sum(axis=1).max())
        x = torch.from_numpy(inputs[:, :width]).to(device)
        y = torch.from_numpy(labels[:, :width]).to(device)
        attention = torch.from_numpy(attended[:, :width].astype(np.int64)).to(device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=autocast):
            states = model(input_ids=x, attention_mask=attention).last_hidden_state
            out = head(states, {"labels": y, "attention_mask": attention})
        assert isinstance(out.logits, torch.Tensor)
        logits = out.logits.float()
        targets = y[y != -100]
        return F.cross_entropy(logits, targets, reduction="none"), logits.argmax(-1) == targets

    def held_accuracy() -> float:
        model.eval()
        head.eval()
        correct = total = 0
        with torch.inference_mode():
            for lo in range(0, len(held), 64):
                _, right = forward(
                    held[lo : lo + 64], held_inputs[lo : lo + 64], held_labels[lo : lo + 64]
                )
                correct += int(right.sum())
                total += int(right.numel())
        model.train()
        head.train()
        return correct / max(total, 1)

    every = max(pre.steps // 10, 1)
    curve: list[list[float]] = []

    def record(step: int) -> None:
        point = [step, round(held_accuracy(), 5)]
        state = masking.state()
        if state:
            point += [state["competence"], state["target_quantile"]]
        curve.append(point)

    record(0)
    cursor = 0
    refresh_cursor = 0
    permutation = order_rng.permutation(len(train))
    tokens = masked = 0
    model.train()
    head.train()
    for step in range(pre.steps):
        if isinstance(masking, AdaptiveMasking) and step % masking.refresh_every == 0:
            rows = (refresh_cursor + np.arange(masking.refresh_size)) % len(train)
            refresh_cursor = int((refresh_cursor + masking.refresh_size) % len(train))
            chosen = (refresh_rng.random(train[rows].shape) < masking.mask_rate) & ~special[rows]
            inputs, labels = corrupt(
                train[rows], chosen, mask_token_id=mask_id, vocab_size=vocab, rng=refresh_rng
            )
            model.eval()
            head.eval()
            with torch.inference_mode():
                losses, right = forward(train[rows], inputs, labels)
            model.train()
            head.train()
            masking.observe(rows, train[rows], chosen, _scatter(chosen, losses))
            masking.observe_refresh(float(right.float().mean()) if right.numel() else 0.0)
        if cursor + pre.batch_size > len(permutation):
            permutation = order_rng.permutation(len(train))
            cursor = 0
        rows = permutation[cursor : cursor + pre.batch_size]
        cursor += pre.batch_size
        batch = train[rows]
        chosen = masking.choose(rows, batch, ~special[rows], choice_rng)
        step_rng = np.random.default_rng([corruption_seed, step])
        inputs, labels = corrupt(
            batch, chosen, mask_token_id=mask_id, vocab_size=vocab, rng=step_rng
        )
        losses, _ = forward(batch, inputs, labels)
        loss = losses.mean() if losses.numel() else losses.sum()
        if not math.isfinite(float(loss.detach())):
            raise ConfigError(f"pretraining: the masked-LM loss is not finite at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        masking.observe(rows, batch, chosen, _scatter(chosen, losses.detach()))
        tokens += int((batch != pad_id).sum())
        masked += int(chosen.sum())
        if (step + 1) % every == 0 or step + 1 == pre.steps:
            record(step + 1)
    state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
    report = {
        "scheme": pre.scheme,
        "steps": pre.steps,
        "sequences": len(train),
        "held_out": len(held),
        "tokens": tokens,
        "masked_tokens": masked,
        "seconds": round(time.perf_counter() - start, 3),
        "curve": curve,
    }
    return state, report


def _scatter(chosen: np.ndarray, losses: torch.Tensor) -> np.ndarray:
    """Return a (B, L) array with ``losses`` (row-major over ``chosen``) at the chosen places."""
    out = np.zeros(chosen.shape, dtype=np.float32)
    out[chosen] = losses.detach().float().cpu().numpy()
    return out
