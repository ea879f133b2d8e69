"""The time the schedules run on: a seam, so tests can move it (``ManualClock``) instead of waiting.

A ``Clock`` says what time it is (epoch seconds, wall clock: schedules follow the wall
clock, suspend and NTP steps included) and waits (until a number of seconds has passed on
it, or an event is set, whichever comes first).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...

    def wait(self, seconds: float, wake: threading.Event) -> None: ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> float:
        return time.time()

    def wait(self, seconds: float, wake: threading.Event) -> None:
        wake.wait(max(0.0, seconds))


class ManualClock:
    """A clock that only moves when told to (``set``, ``advance``): for tests and rehearsals.

    ``wait`` returns once the clock has been moved past its deadline or ``wake`` is set.
    """

    def __init__(self, start: float) -> None:
        self._now = float(start)
        self._cond = threading.Condition()

    def now(self) -> float:
        with self._cond:
            return self._now

    def set(self, when: float) -> None:
        with self._cond:
            self._now = float(when)
            self._cond.notify_all()

    def advance(self, seconds: float) -> None:
        with self._cond:
            self._now += seconds
            self._cond.notify_all()

    def wait(self, seconds: float, wake: threading.Event) -> None:
        with self._cond:
            deadline = self._now + max(0.0, seconds)
            while self._now < deadline and not wake.is_set():
                self._cond.wait(0.01)  # ``wake`` is a plain Event: look at it now and then
