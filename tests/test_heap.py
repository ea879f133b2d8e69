"""Giving free heap memory back when the daemon turns idle (``announcer.service.memory``)."""

from __future__ import annotations

import threading
import time

import pytest

from announcer.service.memory import IdleTrim, release_free_memory

pytestmark = pytest.mark.unit  # the fast lane (make check)


class Counter:
    def __init__(self) -> None:
        self.calls = 0
        self.called = threading.Event()

    def __call__(self) -> None:
        self.calls += 1
        self.called.set()


def test_trims_once_per_turn_to_idle_after_the_delay() -> None:
    trim = Counter()
    idle = IdleTrim(trim, delay=0.05)
    idle.update(True)  # idle at start: nothing to give back
    idle.update(False)
    assert not trim.called.wait(0.15)
    idle.update(True)
    idle.update(True)  # a status change while still idle: no second trim
    assert trim.called.wait(2.0)
    time.sleep(0.15)
    assert trim.calls == 1


def test_busy_again_within_the_delay_cancels() -> None:
    trim = Counter()
    idle = IdleTrim(trim, delay=0.1)
    idle.update(False)
    idle.update(True)
    idle.update(False)  # the next announcement came before the trim
    time.sleep(0.3)
    assert trim.calls == 0
    idle.update(True)
    assert trim.called.wait(2.0) and trim.calls == 1


def test_a_failing_trim_is_harmless() -> None:
    def boom() -> None:
        raise OSError("no")

    idle = IdleTrim(boom, delay=0.0)
    idle.update(False)
    idle.update(True)
    time.sleep(0.1)  # logged at debug level on the timer thread, nothing raised here


def test_release_free_memory_on_glibc() -> None:
    assert release_free_memory() is True  # the test machines run glibc
