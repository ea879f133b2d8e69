"""Shared renders: each announcement is synthesized once, whatever the number of speakers.

A ``Render`` is filled by a synthesis worker one clause (or recorded clip) at a time; every player of that
announcement streams the chunks as they arrive (the first clause plays while the rest
is synthesized) and can read them again for ``repeat`` or after an interruption.

``RenderPool`` owns the worker threads and the renders. A render is requested when an
announcement reaches the head of a speaker's queue (and, at lower priority, for the
next entry of a queue that just started playing: a prefetch). It is kept while some
speaker still owes the announcement; the scheduler releases it when the last speaker
is done. Memory stays bounded: past ``max_kept`` renders, complete renders nobody is
reading are evicted (oldest first) and synthesized again if needed (the clause cache
makes that cheap).
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable

from ..audio.samples import Audio
from ..core.announcement import Announcement
from ..engines.base import Style
from .synthesizer import Synthesizer, SynthStats

_LOGGER = logging.getLogger(__name__)

POLL_SECONDS = 0.02  # how often a waiting player re-checks whether it was aborted


class Render:
    """The audio of one announcement, growing clause by clause."""

    def __init__(self, ann: Announcement, engine: str) -> None:
        self.ann = ann
        self.engine = engine
        self.chunks: list[Audio] = []
        self.rate: int | None = None  # engine rate, known once the engine is loaded
        self.done = False
        self.error: BaseException | None = None
        self.started = False
        self.cancelled = False
        self.readers = 0
        self.stats = SynthStats()
        self._cond = threading.Condition()

    # --- the worker side ----------------------------------------------------------
    def set_rate(self, rate: int) -> None:
        with self._cond:
            self.rate = rate
            self._cond.notify_all()

    def append(self, chunk: Audio) -> None:
        with self._cond:
            self.chunks.append(chunk)
            self._cond.notify_all()

    def finish(self, error: BaseException | None = None) -> None:
        with self._cond:
            self.error = error
            self.done = True
            self._cond.notify_all()

    # --- the player side ------------------------------------------------------------
    def wait_rate(self, check: Callable[[], None]) -> int:
        """The engine's sample rate; ``check`` is called while waiting and may raise to give up."""
        with self._cond:
            while self.rate is None:
                if self.error is not None:
                    raise self.error
                if self.done:
                    raise RuntimeError("synthesis ended without audio")
                check()
                self._cond.wait(POLL_SECONDS)
            return self.rate

    def chunk(self, index: int, check: Callable[[], None]) -> Audio | None:
        """Chunk ``index`` once synthesized, or None after the last one; raises the synthesis error."""
        with self._cond:
            while len(self.chunks) <= index:
                if self.done:
                    if self.error is not None:
                        raise self.error
                    return None
                check()
                self._cond.wait(POLL_SECONDS)
            return self.chunks[index]


class RenderPool:
    def __init__(self, synth: Synthesizer, default_engine: str, workers: int = 2, max_kept: int = 16) -> None:
        self.synth = synth
        self.default_engine = default_engine
        self.workers = max(1, workers)
        self.max_kept = max_kept
        self._renders: OrderedDict[str, Render] = OrderedDict()
        self._lock = threading.Lock()
        self._queue: queue.PriorityQueue[tuple[tuple[int, int, int], Render | None]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._threads: list[threading.Thread] = []
        self._stopping = False

    def start(self) -> None:
        for i in range(self.workers):
            t = threading.Thread(target=self._work, name=f"announcer-synth-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def acquire(self, ann: Announcement) -> Render:
        """The render of ``ann`` for a player about to stream it (call ``done_reading`` after)."""
        render = self._get(ann, prefetch=False)
        with self._lock:
            render.readers += 1
        return render

    def prefetch(self, ann: Announcement) -> None:
        """Start synthesizing ``ann`` early, behind every render a player is waiting for."""
        self._get(ann, prefetch=True)

    def done_reading(self, render: Render) -> None:
        with self._lock:
            render.readers -= 1

    def release(self, ann_id: str) -> None:
        """No speaker owes ``ann_id`` any more: drop its audio and stop synthesizing it."""
        with self._lock:
            render = self._renders.pop(ann_id, None)
        if render is not None:
            render.cancelled = True

    def stop(self, timeout: float) -> None:
        with self._lock:
            self._stopping = True
            renders = list(self._renders.values())
        for r in renders:
            r.cancelled = True
        for _ in self._threads:
            self._queue.put(((-1, -1, -1), None))
        for t in self._threads:
            t.join(timeout)

    def __len__(self) -> int:
        with self._lock:
            return len(self._renders)

    # ---------------------------------------------------------------------- internals
    def _get(self, ann: Announcement, prefetch: bool) -> Render:
        with self._lock:
            render = self._renders.get(ann.id)
            created = render is None
            if created:
                render = Render(ann, ann.engine or self.default_engine)
                self._renders[ann.id] = render
                self._evict(keep=render)
            assert render is not None
            schedule = not render.started and not self._stopping and (created or not prefetch)
        if schedule:
            # waited-for renders first, then by priority, then in request order; a render
            # queued twice (prefetch, then for real) is synthesized by whichever entry comes first
            self._queue.put(((1 if prefetch else 0, -ann.rank, next(self._order)), render))
        return render

    def _evict(self, keep: Render) -> None:
        excess = len(self._renders) - self.max_kept
        if excess <= 0:
            return
        for ann_id, r in list(self._renders.items()):
            if excess <= 0:
                break
            if r is not keep and r.done and r.readers == 0:
                del self._renders[ann_id]
                excess -= 1

    def _work(self) -> None:
        while True:
            _, render = self._queue.get()
            if render is None:
                return
            with self._lock:
                if render.started or render.cancelled:
                    continue
                render.started = True
            try:
                self._synthesize(render)
            except Exception as exc:  # noqa: BLE001 - reported to every player of this announcement
                render.finish(exc)
            else:
                render.finish()
            finally:
                if not render.done:  # never leave players waiting on a render nobody fills
                    render.finish(RuntimeError("synthesis stopped"))

    def _synthesize(self, render: Render) -> None:
        ann = render.ann
        pieces = ann.pieces()
        rate = self.synth.pieces_rate(pieces, render.engine)  # loads the engine when it speaks
        render.set_rate(rate)
        style = Style(ann.emotion, ann.intensity, ann.speed)
        for chunk in self.synth.render_pieces(
            pieces, render.engine, rate, style, ann.voice, render.stats, translations=ann.translations
        ):
            if render.cancelled:
                _LOGGER.debug("%s: synthesis cancelled", ann.id)
                return
            render.append(chunk)
