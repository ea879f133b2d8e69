"""Rate-limited log lines: what anyone on the network can trigger is logged once per interval.

A failed login, a malformed Wyoming header, a bad HTTP body: each is worth one line, but a
client that sends thousands must not fill the journal. ``RateLimitedLog.log(kind, ...)``
writes the first line of a ``kind`` at once; later ones within ``interval`` seconds are
only counted, and the first one after the interval is written with that count
(``... (and 1234 more like it in the last 60 s)``). Kinds are counted separately, never per
client address (varying the address must not buy more lines). Thread-safe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

DEFAULT_INTERVAL = 60.0  # seconds


class RateLimitedLog:
    def __init__(
        self,
        logger: logging.Logger,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}  # kind -> when its last line was written
        self._suppressed: dict[str, int] = {}  # kind -> lines not written since

    def log(self, level: int, kind: str, msg: str, *args: Any) -> bool:
        """Write ``msg % args`` at ``level`` unless a ``kind`` line was written within the interval
        (then count it); True when written."""
        now = self._clock()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.interval:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return False
            suppressed = self._suppressed.pop(kind, 0)
            since = now - last if last is not None else 0.0
            self._last[kind] = now
        if suppressed:
            msg += " (and %d more like it in the last %.0f s)"
            args = (*args, suppressed, since)
        self.logger.log(level, msg, *args)
        return True

    def warning(self, kind: str, msg: str, *args: Any) -> bool:
        return self.log(logging.WARNING, kind, msg, *args)

    def info(self, kind: str, msg: str, *args: Any) -> bool:
        return self.log(logging.INFO, kind, msg, *args)
