"""Give the C heap's free memory back to the system when the daemon goes idle (glibc only).

After a busy spell (a burst of announcements, clauses synthesized, WAVs rendered) glibc
keeps the memory freed in its arenas for reuse, a different amount after every burst, so
the daemon's RSS said little about what it really holds: 271-291 MiB idle after bursts of
the garbage-in reliability test (tests/reliability/test_garbage.py), 234-242 MiB with the
trim. ``malloc_trim(0)`` returns the free pages of every arena; ``IdleTrim`` calls it
once each time the daemon turns idle (queue empty, nothing speaking), a second later, on
a timer thread (0.7-5 ms there). The next announcement faults the pages back in (a
fraction of a millisecond per MiB).

Nothing happens on a C library without ``malloc_trim`` (musl).

``limit_arenas`` (called once at start, before threads) caps glibc's malloc arenas at
``ARENAS``: by default each thread that allocates may get an arena of its own (8 per core),
and with the render pool, the players, the HTTP and Wyoming workers each holding freed
memory the peak RSS under the worst accepted requests was 378 MiB; with 2 arenas, 363.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Callable

_LOGGER = logging.getLogger(__name__)


def _find_malloc_trim() -> Callable[[int], int] | None:
    try:
        fn = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt parameter


def limit_arenas(arenas: int = ARENAS) -> bool:
    """``mallopt(M_ARENA_MAX, arenas)`` unless ``MALLOC_ARENA_MAX`` is set; whether it applied."""
    import os

    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas))


def release_free_memory() -> bool:
    """``malloc_trim(0)``; whether the C library has it."""
    fn = _find_malloc_trim()
    if fn is None:
        return False
    t0 = time.perf_counter()
    fn(0)
    _LOGGER.debug("idle: free heap memory returned to the system (%.1f ms)", (time.perf_counter() - t0) * 1000)
    return True


class IdleTrim:
    """``update(idle)`` on every status change; trims once per busy → idle transition.

    The trim runs ``delay`` seconds after the daemon turned idle, if it still is (what the
    speakers' and synthesis threads free just after the last announcement is included), on a
    timer thread: it holds the heap's locks for a few milliseconds.
    """

    def __init__(self, trim: Callable[[], object] = release_free_memory, delay: float = 1.0) -> None:
        self._trim = trim
        self.delay = delay
        self._lock = threading.Lock()
        self._idle = True  # at start: nothing to give back yet
        self._generation = 0  # bumped on every change, so a timer knows whether it is still current

    def update(self, idle: bool) -> None:
        with self._lock:
            if idle == self._idle:
                return
            self._idle = idle
            self._generation += 1
            generation = self._generation
        if idle:
            timer = threading.Timer(self.delay, self._run, args=(generation,))
            timer.name = "heap-trim"
            timer.daemon = True
            timer.start()

    def _run(self, generation: int) -> None:
        with self._lock:
            if generation != self._generation:  # busy again meanwhile: the next idle trims
                return
        try:
            self._trim()
        except Exception:  # an optimisation; never worth a failure
            _LOGGER.debug("idle: heap trim failed", exc_info=True)
