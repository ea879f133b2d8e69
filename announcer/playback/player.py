"""One player per speaker: streams an announcement's render through the speaker chain to its sink.

The player thread takes jobs from the scheduler (``next_job`` blocks; None means shut
down), plays each and reports the outcome (``job_done``); the scheduler turns outcomes
into events and spool records. The player emits ``started`` itself, right after the
first samples are handed to the sink. It never dies: anything a job raises becomes
that job's ``failed`` outcome.

Audio is written in slices of at most ``SLICE_SECONDS``; before each slice the player
checks whether the job was aborted (an emergency interrupting it, a stop, a shutdown).
A device sink blocks at real time, so an abort takes effect within one slice: the
player writes the next ``FADE_OUT_SECONDS`` faded to silence, then aborts the stream.
Interrupted by an emergency, a ``resumable`` stream (a device) is not aborted but kept:
the emergency, next on this speaker, is written into it right behind the fade-out (no
silence flushed, no device re-opened). A kept stream the next job cannot resume (another
rate), or that no job claims within ``KEEP_SECONDS``, is aborted then.

A stream that plays on elsewhere after ``close`` (``playing_until``: an RTP speaker's buffer,
Snapcast, a Home Assistant player) is waited for here, in slices, so an interruption ends it
there too (``abort``), and ``finished`` means heard; then ``played`` gives the remote player back.
On a ``remote_volume`` sink the gain goes to the remote player and the samples stay at full scale.

Sink calls go through the speaker's ``SinkGuard`` (``announcer.playback.sink_guard``): they run on a
thread of their own, one at a time, and the player waits for each at most its audio plus the
speaker's ``stall_timeout``. A device that stops taking audio fails the announcement
(``OutputStalled``) instead of blocking the player; until its stuck call returns, the
speaker's announcements fail at once, then it plays again.

Heartbeat (for the systemd watchdog, ``health()``): the player promises to come back by a
deadline. Waiting for work or for synthesis it beats at least every second (deadline: now
+ ``IDLE_GRACE_SECONDS``); before each sink call (open, a slice write, close, abort) the
deadline becomes now + the audio that call carries + ``SINK_MARGIN_SECONDS``. A player
past its deadline is stuck (waiting on a sink call, or a bug), and the daemon stops pinging;
the guard gives up on a stalled device after ``stall_timeout`` and the player goes on.

Reload (``reconfigure``): a new sink and speaker chain are taken between announcements,
on the player thread (what plays finishes on the old ones); the old sink is closed then.

``started`` carries ``latency_ms``: from ``Announcement.received`` to the moment the
first samples (lead-in silence or chime included: they are already sound on the
speaker's path) are handed to the sink, measured with the scheduler's clock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..audio.dsp import fade, resample
from ..audio.loudness import LoudnessState
from ..audio.samples import Audio
from ..core.announcement import Announcement
from ..core.errors import EngineUnavailable, InputError
from ..core.events import EventBus, Started
from ..sinks.base import Sink, SinkError, Stream
from .queues import Aborted, Job
from .render_pool import RenderPool
from .sink_guard import GuardedStream, SinkGuard
from .speaker_chain import SpeakerChain, emotion_level_db

_LOGGER = logging.getLogger(__name__)

SLICE_SECONDS = 0.02  # how soon an interruption is noticed on a real-time device
FADE_OUT_SECONDS = 0.05
KEEP_SECONDS = 0.5  # an interrupted stream waits this long for the next job to resume it
IDLE_GRACE_SECONDS = 5.0  # idle loops beat every second; this much slack before "hung"
SINK_MARGIN_SECONDS = 5.0  # a sink call may take its audio's duration plus this
EXPECTED_ERRORS = (SinkError, EngineUnavailable, InputError, OSError)


@dataclass
class Outcome:
    state: str  # finished | failed | aborted
    fields: dict[str, Any]
    reason: str | None = None  # for aborted: interrupted | stopped | shutdown


def _chunks(render: Any, rate: int, check: Callable[[], None]) -> Iterator[Audio]:
    """The render's chunks (waiting for each as it is synthesized), resampled to ``rate``; a
    clip keeps its measured loudness."""
    i = 0
    while (chunk := render.chunk(i, check)) is not None:
        yield (
            chunk
            if chunk.sample_rate == rate
            else Audio(resample(chunk.samples, chunk.sample_rate, rate), rate, chunk.loudness)
        )
        i += 1


def error_message(exc: BaseException) -> str:
    if isinstance(exc, EXPECTED_ERRORS):
        return str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


class _Writer:
    """Hands samples to a stream in slices, checking for an abort before each one."""

    def __init__(
        self,
        stream: Stream,
        rate: int,
        job: Job,
        clock: Callable[[], float],
        on_first: Callable[[float], None],
        expect: Callable[[str, float], None] | None = None,
    ) -> None:
        self.stream = stream
        self.expect = expect or (lambda _what, _seconds: None)
        self.clock = clock
        self.rate = rate
        self.job = job
        self.on_first = on_first
        self.samples = 0
        self.tail = np.zeros(0, np.float32)  # what would have come next, for the fade-out
        self._slice = max(1, int(SLICE_SECONDS * rate))

    def write(self, samples: np.ndarray) -> None:
        for start in range(0, len(samples), self._slice):
            if self.job.abort_reason is not None:
                self.tail = samples[start : start + int(FADE_OUT_SECONDS * self.rate)]
                raise Aborted(self.job.abort_reason)
            part = samples[start : start + self._slice]
            if self.samples == 0:  # `started` = the first sample handed over, not accepted: a device
                self.on_first(self.clock())  # write blocks until the buffer has room
            self.expect("write", len(part) / float(self.rate))
            self.stream.write(part)
            self.samples += len(part)

    @property
    def seconds(self) -> float:
        return self.samples / float(self.rate)


class Player:
    def __init__(
        self,
        name: str,
        sink: Sink,
        chain: SpeakerChain,
        renders: RenderPool,
        events: EventBus,
        clock: Callable[[], float],
        next_job: Callable[[str], Job | None],
        job_done: Callable[[str, Job, Outcome], None],
        master_volume: Callable[[], float] | None = None,
    ) -> None:
        self.name = name
        # the runtime master volume (Home Assistant's number entity), read once per announcement
        self.master_volume: Callable[[], float] = master_volume or (lambda: 1.0)
        self.sink = sink
        self._guard = SinkGuard.for_sink(name, sink)  # every call into ``sink`` (see the module doc)
        self.chain = chain
        self.renders = renders
        self.events = events
        self.clock = clock
        self._next_job = next_job
        self._job_done = job_done
        self._beat_lock = threading.Lock()
        self._deadline = time.monotonic() + IDLE_GRACE_SECONDS
        self._doing = "idle"  # what the player was doing when it last promised to come back
        self._doing_since = time.monotonic()
        self._pending: tuple[Sink, SpeakerChain] | None = None  # from reconfigure(), taken between jobs
        self._kept: GuardedStream | None = None  # interrupted, still playing its fade-out: for the next job
        self._kept_at = 0.0
        self.retired = False  # speaker removed by a reload: the thread ends after what it plays
        self.thread = threading.Thread(target=self.run, name=f"announcer-player-{name}", daemon=True)

    # ---- heartbeat (see the module doc) ---------------------------------------------------
    def beat(self) -> None:
        """Progress: called by idle and waiting loops (at least every second) and after sink calls."""
        self.expect("idle", 0.0, grace=IDLE_GRACE_SECONDS)
        if (
            self._kept is not None
            and time.monotonic() - self._kept_at > KEEP_SECONDS
            and threading.current_thread() is self.thread
        ):
            self._release_kept()  # nothing came to resume it: do not hold the device open

    def expect(self, what: str, seconds: float, grace: float = SINK_MARGIN_SECONDS) -> None:
        """About to do ``what`` (a sink call carrying ``seconds`` of audio): back within seconds + grace."""
        now = time.monotonic()
        with self._beat_lock:
            if what != self._doing:
                self._doing_since = now
            self._doing = what
            self._deadline = now + seconds + grace

    def health(self) -> str | None:
        """None while the player makes progress, else why not (for the watchdog's log line)."""
        if not self.thread.is_alive():
            return f"speaker {self.name}: player thread is not running"
        now = time.monotonic()
        with self._beat_lock:
            if now <= self._deadline:
                return None
            doing, since = self._doing, self._doing_since
        if doing == "idle":
            return f"speaker {self.name}: player has not made progress for {now - since:.1f} s"
        return f"speaker {self.name}: stuck in the sink's {doing} for {now - since:.1f} s"

    # ---- reload ---------------------------------------------------------------------------------
    def reconfigure(self, sink: Sink | None, chain: SpeakerChain) -> None:
        """Use ``chain`` (and ``sink``, when not None) from the next announcement on."""
        with self._beat_lock:
            self._pending = (sink if sink is not None else (self._pending or (self.sink, chain))[0], chain)

    def _take_pending(self) -> None:
        with self._beat_lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return
        sink, self.chain = pending
        if sink is not self.sink:
            self._release_kept()
            old, old_guard = self.sink, self._guard
            self.sink, self._guard = sink, SinkGuard.for_sink(self.name, sink)
            self._close_sink(old, old_guard)

    def _close_sink(self, sink: Sink, guard: SinkGuard) -> None:
        self.expect("close", 0.0)
        try:
            guard.call("close", sink.close, always=True)
        except Exception:
            _LOGGER.warning("speaker %s: closing the replaced sink failed", self.name, exc_info=True)
        guard.stop()
        self.beat()

    def run(self) -> None:
        while True:
            try:
                job = self._next_job(self.name)
            except Exception:  # a bug in the scheduler must not silence the speaker for good
                _LOGGER.exception("speaker %s: cannot take the next announcement", self.name)
                continue
            if job is None:
                self._release_kept()
                if self.retired:  # removed by a reload: nobody else will close its sink
                    self._take_pending()
                    self._close_sink(self.sink, self._guard)
                else:
                    self._guard.stop()
                return
            self._take_pending()
            try:
                outcome = self.play(job)
            except Exception as exc:  # play() handles its own errors; this is the last guard
                _LOGGER.exception("speaker %s: unexpected error playing %s", self.name, job.ann.id)
                outcome = Outcome("failed", {"error": error_message(exc)})
            try:
                self._job_done(self.name, job, outcome)
            except Exception:
                _LOGGER.exception("speaker %s: cannot record the outcome of %s", self.name, job.ann.id)

    def play(self, job: Job) -> Outcome:
        ann = job.ann
        render = self.renders.acquire(ann)
        stream: GuardedStream | None = None
        writer: _Writer | None = None
        closed = False

        def check() -> None:  # while waiting for synthesis: progress, and give up when aborted
            self.beat()
            job.check()

        try:
            src_rate = render.wait_rate(check)
            self.expect("open", 0.0)
            rate = self._guard.call("open", self.sink.preferred_rate, src_rate, check=job.check)
            stream = self._resume_kept(ann.id, rate) or GuardedStream(
                self._guard.call("open", self.sink.open, ann.id, rate, check=job.check), self._guard, rate
            )
            stream.check = job.check

            def started(handed_at: float) -> None:
                latency = max(0.0, (handed_at - ann.received) * 1000.0)
                self.events.emit(
                    Started(
                        id=ann.id,
                        speaker=self.name,
                        latency_ms=round(latency),
                        replay=True if job.replay else None,
                        **render.stats.event_fields(),
                    ),
                    ann,
                )  # engine/fallback when a fallback spoke

            writer = _Writer(stream, rate, job, self.clock, started, self.expect)
            write = writer.write
            gain = self.chain.gain(ann.volume, job.volume_cap, self.master_volume(), ann.priority)
            if self.sink.remote_volume:  # the remote player's volume, full-scale samples
                self.expect("volume", 0.0)
                stream.set_volume(gain)
                gain = 1.0
            level_db = emotion_level_db(ann.emotion, ann.intensity)
            loudness = self._loudness_state(ann, level_db)  # one per announcement: kept across repeats
            write(self.chain.prelude(ann.chime, ann.priority, rate, gain))
            for n in range(ann.repeat):
                if n:
                    write(np.zeros(round(ann.repeat_gap * rate), np.float32))
                for samples in self.chain.speech(
                    _chunks(render, rate, check), gain, rate=rate, level_db=level_db, state=loudness
                ):
                    write(samples)
            write(self.chain.postlude(ann.chime, rate, gain))
            job.check()
            self.expect("close", 0.0)
            details = stream.close() or {}
            closed = True
            self._play_out(stream, job)
            return Outcome("finished", {"duration_s": round(writer.seconds, 3), **details})
        except Aborted as exc:
            if stream is not None:
                self._fade_out(stream, writer)
                if exc.reason == "interrupted" and stream.resumable and not closed:
                    self._kept, self._kept_at = stream, time.monotonic()
                else:
                    self._abort(stream)
            return Outcome("aborted", {}, exc.reason)
        except Exception as exc:
            if stream is not None:
                try:
                    self.expect("abort", 0.0)
                    stream.abort()
                except Exception:
                    _LOGGER.debug("speaker %s: abort after failure also failed", self.name, exc_info=True)
            if not isinstance(exc, EXPECTED_ERRORS):
                _LOGGER.exception("speaker %s: %s failed", self.name, ann.id)
            return Outcome("failed", {"error": error_message(exc)})
        finally:
            self.beat()
            self.renders.done_reading(render)

    def _play_out(self, stream: GuardedStream, job: Job) -> None:
        """Wait for a closed stream still playing elsewhere (see the module doc), then ``played``."""
        until = stream.inner.playing_until
        if until is None:
            return
        while (left := until - time.monotonic()) > 0:
            self.beat()
            job.check()  # Aborted: the caller aborts the stream
            time.sleep(min(SLICE_SECONDS, left))
        self.expect("played", 0.0)
        stream.played()

    def _loudness_state(self, ann: Announcement, level_db: float) -> LoudnessState:
        reference = self.renders.synth.reference_lufs(ann.engine) if ann.speaks else None  # a clip needs no engine
        return LoudnessState.starting_at(reference, level_db)

    def _fade_out(self, stream: GuardedStream, writer: _Writer | None) -> None:
        try:
            if writer is not None and len(writer.tail):
                self.expect("write", len(writer.tail) / float(writer.rate))
                # the tail is what would have played next: ramp it to silence instead of a click
                stream.write(
                    fade(np.asarray(writer.tail, np.float32), writer.rate, fade_out=True, seconds=FADE_OUT_SECONDS)
                )
        except Exception:
            _LOGGER.debug("speaker %s: fade-out write failed", self.name, exc_info=True)

    def _abort(self, stream: Stream) -> None:
        try:
            self.expect("abort", 0.0)
            stream.abort()
        except Exception:
            _LOGGER.warning("speaker %s: abort failed", self.name, exc_info=True)

    def _resume_kept(self, ann_id: str, rate: int) -> GuardedStream | None:
        """The kept stream, if it goes on with ``ann_id`` at ``rate``; otherwise it is aborted."""
        kept, self._kept = self._kept, None
        if kept is None:
            return None
        try:
            if kept.resume(ann_id, rate):
                return kept
        except Exception:
            _LOGGER.debug("speaker %s: cannot resume the interrupted stream", self.name, exc_info=True)
        self._abort(kept)
        return None

    def _release_kept(self) -> None:
        kept, self._kept = self._kept, None
        if kept is not None:
            self._abort(kept)
            self.expect("idle", 0.0, grace=IDLE_GRACE_SECONDS)
