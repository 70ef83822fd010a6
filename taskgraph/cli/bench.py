"""``taskgraph bench``: measure the affinity estimators and samplers on a published table."""

from __future__ import annotations


def bench() -> None:
    """Benchmark estimators and samplers on a long-format results table."""
    raise NotImplementedError("taskgraph bench arrives with the affinity issue (#6)")
