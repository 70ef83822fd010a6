"""The version of an encoder given as a directory: a sha256 of the files in it.

A model family (:meth:`~taskgraph.trial.TrialConfig.family_key`) names its encoder, and a
name says which weights it means only for the two encoders taskgraph ships (``"minilm"``, the
weights of a pinned package, and ``"tiny-bert"``, built from its options and seed).  A
directory can have its weights replaced under the same path (a newer checkpoint saved over the
old one): its runs would then pool with the old weights' runs and a gain would set one model
against a baseline of another.  :func:`encoder_version` fingerprints what the directory holds
so that a configuration carries it (``TrialConfig.encoder_version``) and a changed directory is
another family.

Kept free of torch: the search driver calls it for every trial it configures.  Each file's
digest is cached by its path, size and times (:func:`~taskgraph.tasks.fingerprints.file_sha256`),
so an unchanged directory costs one ``stat`` per file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["BUILTIN_ENCODERS", "encoder_version"]

#: encoders whose name pins their weights (what ``taskgraph.models.encoders.ENCODER_NAMES``
#: lists; repeated here so that this module needs no torch)
BUILTIN_ENCODERS = ("minilm", "tiny-bert")


def encoder_version(name: str) -> str | None:
    """Return the sha256 of the encoder directory ``name``'s files, or None.

    None for a built-in encoder (:data:`BUILTIN_ENCODERS`) and for a path that is not a
    directory (loading it says what is wrong).  The directory's own regular files count, by
    name and contents (weights, ``config.json``, tokenizer files: what ``from_pretrained``
    reads); subfolders (a Trainer's ``checkpoint-*``, ``runs``, ``onnx``) do not, nor do
    hidden files and documentation (``README.md``, ``*.rst``, a ``LICENSE``).  A file that
    vanishes while it is read is left out; one that cannot be read is a :class:`ConfigError`.
    """
    if name in BUILTIN_ENCODERS:
        return None
    root = Path(os.path.expanduser(name))
    if not root.is_dir():
        return None
    from taskgraph.errors import ConfigError
    from taskgraph.tasks.fingerprints import file_sha256

    digest = hashlib.sha256()
    for path in sorted(root.iterdir()):
        if _ignored(path.name) or not path.is_file():
            continue  # a folder, a dangling link or a socket: nothing the loader reads
        try:
            digest.update(f"{path.name}\0{file_sha256(path)}\n".encode())
        except FileNotFoundError:
            continue  # removed meanwhile (something writes into the directory)
        except OSError as error:
            raise ConfigError(
                f"encoder {name!r}: cannot read {str(path)!r}: {error.strerror or error}"
            ) from None
    return digest.hexdigest()


def _ignored(file: str) -> bool:
    """Return whether a file of an encoder directory is no part of the model: hidden files,
    and documentation a model card edit changes."""
    return file.startswith(".") or file.endswith((".md", ".rst")) or file.startswith("LICENSE")
