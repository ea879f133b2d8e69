"""Sink calls with a deadline: a device that stops taking audio fails its announcement, not its speaker.

A sound device's write blocks at real time. A device that stops taking samples (a hung
USB audio interface, a stalled driver) blocks it for good, inside PortAudio and ALSA,
where nothing in Python can interrupt it. So a speaker's sink calls (open, each write,
close, abort) run on a thread of their own, ``SinkGuard``'s (one per sink, strictly in
order), and the player waits for each with a deadline: the audio the call carries plus
the speaker's ``stall_timeout`` (default 10 s). Past it the call is abandoned, and
``OutputStalled`` (a ``SinkError``) fails the announcement on that speaker (``failed``,
with the error); the player goes on with the next one. Other speakers never wait for it.

While an abandoned call still blocks, the device is not touched again: every call fails at
once with ``OutputStalled`` (``call(always=True)``, an abort, is queued behind the stuck
call instead), so what is queued for that speaker fails quickly, with an error, rather
than piling up behind the hung device. When the stuck call returns (the device takes audio
again), the queued clean-up runs, a log line says so, and the next announcement opens the
device afresh: it recovers without a restart. A call that never returns keeps its (daemon)
thread; nothing else waits for it.

A call overdue by ``CHECK_AFTER_SECONDS`` is also given up when ``check`` raises (the
announcement was stopped or interrupted, the daemon shuts down): a stop or a SIGTERM does
not wait out a hung device either.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..sinks.base import DEFAULT_STALL_TIMEOUT, Sink, SinkError, Stream

_LOGGER = logging.getLogger(__name__)

CHECK_AFTER_SECONDS = 1.0  # a call overdue by this much may be given up when its job is aborted
POLL_SECONDS = 0.05


class OutputStalled(SinkError):
    """A sink call did not return in time (the device takes no audio), or one before it still has not."""


class _Call:
    __slots__ = ("args", "done", "error", "finished", "fn", "result", "submitted", "what")

    def __init__(self, what: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.what = what
        self.fn = fn
        self.args = args
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.finished = False  # guarded by SinkGuard._lock
        self.submitted = time.monotonic()


def output_label(name: str, sink: Sink) -> str:
    """How errors name a speaker's output: its device when it has one."""
    device = getattr(getattr(sink, "config", None), "device", None)
    return f"audio device {device!r}" if device is not None else f"speaker {name}'s output"


class SinkGuard:
    """Runs one sink's calls on a thread of its own, each with a deadline (see the module doc)."""

    def __init__(self, speaker: str, label: str, stall_timeout: float = DEFAULT_STALL_TIMEOUT) -> None:
        self.speaker = speaker
        self.label = label
        self.stall_timeout = stall_timeout
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._stuck: _Call | None = None  # abandoned and still running
        self._thread: threading.Thread | None = None
        self._stopped = False

    @classmethod
    def for_sink(cls, speaker: str, sink: Sink) -> SinkGuard:
        timeout = getattr(getattr(sink, "config", None), "stall_timeout", None) or DEFAULT_STALL_TIMEOUT
        return cls(speaker, output_label(speaker, sink), float(timeout))

    def call(
        self,
        what: str,
        fn: Callable[..., Any],
        *args: Any,
        seconds: float = 0.0,
        check: Callable[[], None] | None = None,
        always: bool = False,
    ) -> Any:
        """``fn(*args)`` on the sink's thread; its result, or its exception re-raised here.

        ``seconds``: the audio the call carries (a write blocks that long on a device).
        Raises ``OutputStalled`` past ``seconds + stall_timeout``, or at once while an earlier
        call is stuck; with ``always`` the call is then queued behind it and None returned.
        """
        with self._lock:
            stuck = self._stuck
            if stuck is None or always:
                c = _Call(what, fn, args)
                self._submit(c)
        if stuck is not None:
            if always:
                return None
            raise OutputStalled(
                f"{self.label} stalled: its {stuck.what} has not returned for "
                f"{time.monotonic() - stuck.submitted:.1f} s (the device takes no audio); "
                "not used until it does"
            )
        limit = seconds + self.stall_timeout
        while not c.done.wait(POLL_SECONDS):
            waited = time.monotonic() - c.submitted
            if check is not None and waited > seconds + CHECK_AFTER_SECONDS:
                try:
                    check()
                except BaseException:
                    self._abandon(c, f"given up after {waited:.1f} s")
                    raise
            if waited > limit and self._abandon(c, f"did not return within {limit:.1f} s"):
                raise OutputStalled(
                    f"{self.label} stalled: its {what} took no audio for {limit:.1f} s "
                    "(it did not return); giving up on this announcement"
                )
        if c.error is not None:
            raise c.error
        return c.result

    def stop(self) -> None:
        """End the thread once what is queued ran (a stuck call first returns, if ever)."""
        with self._lock:
            self._stopped = True
            if self._thread is not None:
                self._calls.put(None)

    # ---- internals ------------------------------------------------------------------------
    def _submit(self, c: _Call) -> None:
        """Queue ``c`` (under the lock), starting the thread on first use."""
        if self._stopped:
            raise SinkError(f"{self.label}: speaker {self.speaker} is shutting down")
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"announcer-sink-{self.speaker}", daemon=True)
            self._thread.start()
        self._calls.put(c)

    def _abandon(self, c: _Call, why: str) -> bool:
        """Leave ``c`` running and treat the output as stuck in it; False if it has just finished."""
        with self._lock:
            if c.finished:
                return False
            self._stuck = c
        _LOGGER.error(
            "speaker %s: %s stalled: its %s %s; its announcements fail until it takes audio again",
            self.speaker,
            self.label,
            c.what,
            why,
        )
        return True

    def _run(self) -> None:
        while (c := self._calls.get()) is not None:
            try:
                c.result = c.fn(*c.args)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller (dropped if it gave up)
                c.error = exc
            with self._lock:
                c.finished = True
                recovered = self._stuck is c
                if recovered:
                    self._stuck = None
            if recovered:
                _LOGGER.warning(
                    "speaker %s: the output takes audio again (its %s returned after %.1f s%s)",
                    self.speaker,
                    c.what,
                    time.monotonic() - c.submitted,
                    f": {c.error}" if c.error is not None else "",
                )
            c.done.set()
            del c  # while this thread waits for the next call, keep nothing of the last (stream, samples)


class GuardedStream(Stream):
    """A sink's stream whose every call goes through the sink's ``SinkGuard``.

    ``check`` (set per announcement) lets an overdue call be given up when the job is aborted.
    """

    def __init__(self, stream: Stream, guard: SinkGuard, sample_rate: int) -> None:
        self.inner = stream
        self.resumable = stream.resumable
        self.check: Callable[[], None] | None = None
        self._guard = guard
        self._rate = sample_rate

    def write(self, samples: np.ndarray) -> None:
        self._guard.call("write", self.inner.write, samples, seconds=len(samples) / float(self._rate), check=self.check)

    def close(self) -> dict[str, Any]:
        details: dict[str, Any] = self._guard.call("close", self.inner.close, check=self.check)
        return details

    def abort(self) -> None:
        self._guard.call("abort", self.inner.abort, always=True)  # behind a stuck call: it ends the stream

    def played(self) -> None:
        self._guard.call("played", self.inner.played, check=self.check)

    def set_volume(self, gain: float) -> None:
        self._guard.call("volume", self.inner.set_volume, gain, check=self.check)

    def resume(self, announcement_id: str, sample_rate: int) -> bool:
        return bool(self._guard.call("resume", self.inner.resume, announcement_id, sample_rate))
