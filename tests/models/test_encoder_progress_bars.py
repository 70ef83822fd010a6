"""Text embeddings (``--text-embeddings``) load MiniLM without a progress bar in a log or pipe."""

from __future__ import annotations

import pytest
from transformers.utils import logging as hf_logging

from taskgraph.models import encoders
from taskgraph.models.task_embeddings import text_embeddings


def test_loading_the_encoder_off_a_terminal_draws_no_progress_bar(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(encoders, "_LOADED", {})  # loaded afresh here, the session's cache kept
    # Bars on, as in a fresh process (an earlier CLI test may have turned them off for good).
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.enable_progress_bar()
    try:
        vectors = text_embeddings({"t": ["a sentence to embed"]})
        assert vectors["t"].shape == (384,)
        err = capfd.readouterr().err
        assert "Loading weights" not in err and "\r" not in err
        assert hf_logging.is_progress_bar_enabled()  # the caller's setting is back
    finally:
        if not was_enabled:
            hf_logging.disable_progress_bar()
