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
    directory (loading it says what is wrong).  Every regular file under the directory counts,
    by its path relative to it and its contents (weights, ``config.json``, tokenizer files: each
    changes the model); hidden files and folders (``.cache``, ``.git``) and documentation
    (``README.md``, ``*.rst``, a ``LICENSE``) do not.
    """
    if name in BUILTIN_ENCODERS:
        return None
    root = Path(os.path.expanduser(name))
    if not root.is_dir():
        return None
    from taskgraph.tasks.fingerprints import file_sha256

    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for file in sorted(f for f in files if not _ignored(f)):
            path = Path(folder) / file
            if not path.is_file():
                continue  # a dangling link or a socket: nothing a loader reads
            relative = path.relative_to(root).as_posix()
            digest.update(f"{relative}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def _ignored(file: str) -> bool:
    """Return whether a file of an encoder directory is no part of the model: hidden files,
    and documentation a model card edit changes."""
    return file.startswith(".") or file.endswith((".md", ".rst")) or file.startswith("LICENSE")
