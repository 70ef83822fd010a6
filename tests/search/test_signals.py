"""Ctrl-C and SIGTERM around the steps of a trial that must not be cut in half."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from taskgraph.search.heartbeat import Terminated, deferred_interrupt, terminate_as_interrupt


@pytest.fixture(autouse=True)
def restore_handlers() -> Iterator[None]:
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


def test_sigterm_raises_terminated_inside_and_not_after() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with pytest.raises(Terminated), terminate_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    os.kill(os.getpid(), signal.SIGTERM)  # ignored again: no exception, the process lives


def test_terminated_is_caught_as_a_keyboard_interrupt() -> None:
    assert issubclass(Terminated, KeyboardInterrupt)


@pytest.mark.parametrize(
    ("sig", "raised"), [(signal.SIGTERM, Terminated), (signal.SIGINT, KeyboardInterrupt)]
)
def test_a_held_signal_is_delivered_after_the_block(
    sig: signal.Signals, raised: type[BaseException]
) -> None:
    # Python's own Ctrl-C handler (an earlier test in the process may have left another one)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    finished = []
    with pytest.raises(raised) as caught, terminate_as_interrupt():
        with deferred_interrupt():
            os.kill(os.getpid(), sig)
            finished.append("block")  # the signal waits for this
        finished.append("after")  # not reached: the signal is raised on leaving the block
    assert finished == ["block"]
    assert isinstance(caught.value, Terminated) == (sig == signal.SIGTERM)


def test_an_ignored_signal_stays_ignored_after_the_block() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with deferred_interrupt():
        os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_without_terminate_as_interrupt_the_handlers_are_untouched() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with deferred_interrupt():
        pass
    assert signal.getsignal(signal.SIGTERM) is before


def test_keep_terminate_as_interrupt_undoes_a_replacement_only_inside() -> None:
    from taskgraph.search.heartbeat import keep_terminate_as_interrupt

    def other(signum: int, frame: object) -> None:  # what ray.init installs (sys.exit)
        raise SystemExit(signum)

    with terminate_as_interrupt():
        with keep_terminate_as_interrupt():
            signal.signal(signal.SIGTERM, other)
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
    with keep_terminate_as_interrupt():  # outside: the replacement stays
        signal.signal(signal.SIGTERM, other)
    assert signal.getsignal(signal.SIGTERM) is other
