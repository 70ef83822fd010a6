"""TextEmb task embeddings (Vu et al. 2020): the mean MiniLM embedding of a task's training text.

Each text's embedding is what the packaged sentence-transformers model gives (its
``modules.json``: Transformer -> mean Pooling -> Normalize): the mean of its token states,
scaled to unit length; a task's vector is the mean of those.  Texts are cut where the model
cuts them: at its ``sentence_bert_config.json``'s ``max_seq_length`` (256 word pieces for
all-MiniLM-L6-v2), so a vector equals ``SentenceTransformer.encode(texts).mean(0)``.

They give the ``textemb`` and ``setfn`` estimators a prediction for targets without records,
from similar tasks.  Torch and the encoder are loaded here, in the models layer, never by the
application or command-line layers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["max_seq_length", "task_text_embeddings", "text_embeddings"]

#: The cut when the model directory has no ``sentence_bert_config.json`` (a plain HF model).
DEFAULT_MAX_LENGTH = 128


def task_text_embeddings(
    tasks: Sequence[str], *, data_dir: str | None = None, limit: int = 256, batch_size: int = 32
) -> dict[str, np.ndarray]:
    """Return TextEmb vectors: the mean MiniLM sentence embedding of up to ``limit`` training texts per catalog task.

    Tasks that are not in the catalog or whose data is missing are left out.
    """
    from taskgraph.errors import TaskgraphError
    from taskgraph.tasks import get_task, load_examples

    texts: dict[str, list[str]] = {}
    for name in tasks:
        try:
            examples = load_examples(get_task(name), "train", data_dir=data_dir, limit=limit)
        except TaskgraphError:
            continue
        texts[name] = [t for t in (_example_text(e) for e in examples) if t]
    return text_embeddings(texts, batch_size=batch_size)


def text_embeddings(
    texts: Mapping[str, Sequence[str]], *, batch_size: int = 32
) -> dict[str, np.ndarray]:
    """Return per task the mean MiniLM sentence embedding of its ``texts`` (tasks without text are left out).

    The same vectors as :func:`task_text_embeddings` gives for catalog tasks, for texts given
    directly (a task-metadata file's descriptions and examples).
    """
    import torch
    import torch.nn.functional as F

    from taskgraph.models import load_encoder
    from taskgraph.models.encoders import minilm_path

    texts = {k: [t for t in v if t] for k, v in texts.items()}
    texts = {k: v for k, v in texts.items() if v}
    if not texts:
        return {}
    bundle = load_encoder("minilm")
    bundle.model.eval()
    max_length = max_seq_length(minilm_path(), bundle.model.config.max_position_embeddings)
    result: dict[str, np.ndarray] = {}
    with torch.inference_mode():
        for name, lines in texts.items():
            vectors = []
            for start in range(0, len(lines), batch_size):
                batch = bundle.tokenizer(list(lines[start : start + batch_size]), padding=True,
                                         truncation=True, max_length=max_length, return_tensors="pt")  # fmt: skip
                hidden = bundle.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                vectors.append(F.normalize(pooled, p=2.0, dim=-1).numpy())
            result[name] = np.concatenate(vectors).mean(axis=0)
    return result


def max_seq_length(directory: Path, max_position_embeddings: int | None = None) -> int:
    """Return the word pieces a text is cut to: the sentence-transformers model's own limit.

    ``max_seq_length`` of ``directory``'s ``sentence_bert_config.json``, else
    :data:`DEFAULT_MAX_LENGTH`; never more than ``max_position_embeddings``.  A config file
    that does not parse, or whose value is not a positive integer, is a :class:`ConfigError`
    naming it.
    """
    from taskgraph.errors import ConfigError

    file = directory / "sentence_bert_config.json"
    length: Any = DEFAULT_MAX_LENGTH
    if file.is_file():
        try:
            config = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ConfigError(
                f"{file}: cannot read the sentence-transformers config: {error}"
            ) from None
        if isinstance(config, dict) and config.get("max_seq_length") is not None:
            length = config["max_seq_length"]
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ConfigError(
            f"{file}: `max_seq_length` must be a positive integer, but got {length!r}"
        )
    if max_position_embeddings:
        length = min(length, int(max_position_embeddings))
    return int(length)


def _example_text(example: Any) -> str:
    if hasattr(example, "tokens"):
        return " ".join(example.tokens)
    if hasattr(example, "question"):
        return f"{example.question} {example.context}"
    if hasattr(example, "text"):
        return example.text if example.text_pair is None else f"{example.text} {example.text_pair}"
    return ""
