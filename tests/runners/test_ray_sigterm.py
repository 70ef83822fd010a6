"""`kill <pid>` of a Ray driver stays Ctrl-C: ray.init's own SIGTERM handler is undone."""

from __future__ import annotations

import signal
from types import SimpleNamespace

import pytest

from taskgraph.search.heartbeat import Terminated, terminate_as_interrupt

pytestmark = pytest.mark.slow


def test_starting_ray_keeps_sigterm_as_an_interrupt() -> None:
    import ray

    from taskgraph.runners.ray import RayTuneRunner

    assert not ray.is_initialized()
    # _init_ray needs only the runner section of the spec
    this = SimpleNamespace(runner=SimpleNamespace(address=None, num_cpus=1))
    this._start_ray = lambda: RayTuneRunner._start_ray(this)  # type: ignore[arg-type]
    with terminate_as_interrupt():
        try:
            assert RayTuneRunner._init_ray(this) is True  # type: ignore[arg-type]
            handler = signal.getsignal(signal.SIGTERM)
        finally:
            ray.shutdown()
    assert callable(handler)
    with pytest.raises(Terminated):
        handler(signal.SIGTERM, None)
