"""Fixtures of the runner tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def local_ray(request: pytest.FixtureRequest) -> Iterator[None]:
    """One local Ray (2 CPUs) for a test module's in-process tests; the runner leaves a
    caller's Ray up.  The workers cannot import a test module by name: it is shipped to them
    by value (the fakes live in taskgraph.testing, which they import like any package module)."""
    import ray

    from taskgraph.runners.ray import QUIET_RAY_ENV

    for key, value in QUIET_RAY_ENV.items():
        os.environ.setdefault(key, value)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(request.module)
    try:
        yield
    finally:
        ray.shutdown()
