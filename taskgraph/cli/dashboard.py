"""``taskgraph dashboard``: serve optuna-dashboard on the records database."""

from __future__ import annotations


def dashboard() -> None:
    """Start optuna-dashboard on 127.0.0.1 for the study database and print its address."""
    raise NotImplementedError("taskgraph dashboard arrives with the search issue (#5)")
