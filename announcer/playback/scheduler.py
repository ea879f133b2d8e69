"""The scheduler: who plays what, when, on which speaker; preemption, expiry and the bookkeeping.

The queues themselves are ``announcer.playback.queues`` (plain data), the bookkeeping of
who still owes what ``announcer.playback.ledger``; this module owns the lock, the players
(one thread each, ``announcer.playback.player``), the synthesis pool and the events.

Flow: the intake commits an ``Announcement`` to the spool and calls ``submit``, which
emits ``queued`` and puts one ``Job`` on each of its speakers' queues.

Rules (the decisions, in one place):

* Order and queue limits (``announcer.playback.queues``): priority, then arrival; a full
  queue sheds its lowest, newest job (``cancelled``, ``reason: "queue full"``).
* Expiry: checked when a player takes a job (``clock() > ann.expires`` → ``expired``
  for that speaker, never played) and swept from waiting queues about once a second.
* Emergency: interrupts a lower-priority job playing on its speakers (the player fades it
  out, see ``announcer.playback.player``); its synthesis starts at once (prefetch).
  ``interrupted`` is emitted and the job is requeued to play again from its start (unless
  it expired meanwhile; its second ``started`` carries ``replay: true``); it stays pending
  in the spool, so a crash replays it too. Emergencies never interrupt emergencies.
* Resume (``start``): ``spool.pending()`` is queued again (``queued`` with ``resumed:
  true``) before the players start, so priority order holds across a restart; what
  expired while the daemon was down gets ``expired`` per speaker. A pair member resumes,
  releases and retires at changes of leader (``announcer.playback.handover``).
* Start gate (``may_start``, an active/standby pair's): a player takes a job only while it
  says yes; what plays goes on. ``wake()`` when it changes.
* Failures: an engine or sink error is ``failed`` (``speaker``, ``error``) for that
  speaker only; expected errors (SinkError, EngineUnavailable, InputError, OSError)
  are logged as one line, anything else with its traceback. Players never die.
* Stop (``P/stop``): waiting jobs are cancelled at once, the playing one after its
  fade-out. Every ``cancelled`` event is per speaker (field ``speaker``, ``reason:
  "stopped"``), like ``started``/``finished``: an announcement on three speakers that
  is stopped everywhere yields three ``cancelled`` events.
* Events after ``queued`` all carry ``speaker``. When every speaker of an announcement
  reached a terminal state the spool closes it (``ann_done``) and its audio is freed.
* Shutdown: what plays is aborted (``interrupted`` with ``reason: "shutdown"``) and
  stays pending in the spool with everything queued; ``start`` resumes it next time.
  With ``drain`` (SIGTERM: ``shutdown.drain_timeout``) a ``high`` or ``emergency``
  announcement that is playing may finish first (``finished``, closed in the spool),
  for at most ``drain`` seconds; then it is aborted like the rest. Nothing new starts.
* Reload (``reconfigure(runtime)``): queued jobs stay where they are for speakers that still
  exist (the new ``limits.max_queue`` may shed the lowest, ``reason: "queue full"``);
  those of removed speakers are ``cancelled`` (``reason: "speaker removed"``). What
  plays finishes on the sink and chain it started with; the player takes the new ones
  before its next job. A removed speaker's player ends after what it plays.
* Heartbeat: a player waiting for work beats at least every ``SWEEP_SECONDS``.
* Quiet hours (``announcer.playback.quiet_hours``): a player takes the first job of its
  queue that quiet hours allow now; held jobs never block the allowed ones behind them.
* ``status()``: ``queue`` (waiting jobs, per speaker) and ``speaking``; ``on_status_change``
  gets every change.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..config import Config
from ..core.announcement import Announcement
from ..core.events import EventBus, Interrupted, Queued, speaker_event
from ..core.schema import PRIORITIES, PRIORITY_RANK
from ..sinks.base import Sink
from ..spool.store import Spool
from .handover import Handover
from .ledger import Ledger
from .player import Outcome, Player
from .queues import Job, SpeakerQueues
from .quiet_hours import QuietGate
from .render_pool import RenderPool
from .runtime import Runtime
from .speaker_chain import SpeakerChain
from .speakers import Speakers

_LOGGER = logging.getLogger(__name__)

SWEEP_SECONDS = 1.0
SYNTH_WORKERS = 2  # threads synthesizing (one engine call at a time per engine)
MAX_RENDERS = 16  # complete renders kept for repeats and replays
DRAIN_PRIORITIES = ("high", "emergency")  # what may finish playing on SIGTERM (shutdown.drain_timeout)

StatusCallback = Callable[[dict[str, Any]], None]


class Scheduler(Handover):
    def __init__(self, runtime: Runtime, spool: Spool, events: EventBus, clock: Callable[[], float] = time.time,
                 on_status_change: StatusCallback | None = None, master_volume: Callable[[], float] | None = None,
                 may_start: Callable[[], bool] | None = None) -> None:  # fmt: skip
        self.runtime = runtime
        self.spool = spool
        self.events = events
        self.clock = clock
        self.on_status_change = on_status_change
        self.renders = RenderPool(runtime.synth, runtime.config.default_engine, SYNTH_WORKERS, MAX_RENDERS)
        self._cv = threading.Condition()
        self._queues = SpeakerQueues(runtime.sinks)
        self._ledger = Ledger()
        self._master_volume = master_volume
        self._may_start = may_start or (lambda: True)  # read under the lock: must be quick and take no lock
        self._current: dict[str, Job] = {}
        self._seq = itertools.count()
        self._stopping = False
        self._started = False
        self._status_lock = threading.Lock()
        self._last_status: dict[str, Any] | None = None
        self._quiet = QuietGate(lambda: self.cfg, clock)  # rules follow the config a reload swaps in
        self.speakers = Speakers(self._make_player, runtime.sinks)
        self._sweeper = threading.Thread(target=self._sweep_loop, name="announcer-expiry", daemon=True)

    @property
    def cfg(self) -> Config:
        return self.runtime.config

    def _make_player(self, name: str, sink: Sink) -> Player:
        player = Player(
            name, sink, self._chain(name), self.renders, self.events, self.clock, self._next_job, self._job_done
        )
        if self._master_volume is not None:  # multiplies every speaker's gain (runtime setting)
            player.master_volume = self._master_volume
        return player

    def _chain(self, name: str) -> SpeakerChain:
        return SpeakerChain(self.cfg.speakers[name], self.runtime.chimes, self.cfg.audio.target_lufs)

    # ------------------------------------------------------------------ lifecycle
    def start(self, resume: bool = True) -> None:
        """Start the synthesis workers, resume the spool (unless told not to), then one player per speaker."""
        if self._started:
            return
        self._started = True
        self.renders.start()
        if resume:
            self.resume_pending()
        self.speakers.start()
        self._sweeper.start()
        self._status_changed()

    def wake(self) -> None:
        """Look at the queues again now (the start gate opened)."""
        with self._cv:
            self._cv.notify_all()

    def shutdown(self, timeout: float = 5.0, drain: float = 0.0) -> None:
        """Stop taking work, abort what plays (it stays pending in the spool) and join the threads.

        With ``drain`` > 0, a ``high``/``emergency`` job that is playing may finish first, for
        at most ``drain`` seconds (then it is aborted too); ``timeout`` comes on top of that.
        """
        with self._cv:
            self._stopping = True
            draining = {s: j for s, j in self._current.items() if drain > 0 and j.ann.priority in DRAIN_PRIORITIES}
            for s, job in self._current.items():
                if s not in draining:
                    job.abort("shutdown")
            self._cv.notify_all()
        if draining:
            self._drain(draining, drain)
        deadline = time.monotonic() + timeout
        self.speakers.join(deadline)
        for name in self.speakers.still_running():
            _LOGGER.warning("speaker %s did not stop within %.1f s", name, timeout)
        self.renders.stop(max(0.0, deadline - time.monotonic()))
        if self._sweeper.is_alive():
            self._sweeper.join(max(0.0, deadline - time.monotonic()))

    def _drain(self, draining: dict[str, Job], drain: float) -> None:
        """Let the ``draining`` jobs finish for at most ``drain`` seconds, then abort those still playing."""
        names = ", ".join(f"{job.ann.id} ({job.ann.priority}) on {s}" for s, job in draining.items())
        _LOGGER.info("draining: letting %s finish (at most %.0f s)", names, drain)
        self.speakers.join(time.monotonic() + drain, lambda name: name in draining)
        with self._cv:
            late = [(s, job) for s, job in self._current.items() if s in draining and job is draining[s]]
            for _s, job in late:
                job.abort("shutdown")
        for s, job in late:
            _LOGGER.warning("draining: %s on %s did not finish within %.0f s; stopped (it stays in the spool)",
                            job.ann.id, s, drain)  # fmt: skip

    # ------------------------------------------------------------------ front doors
    def submit(self, ann: Announcement) -> None:
        """Queue an announcement the spool has already committed."""
        with self._cv:
            if self._stopping:
                _LOGGER.info("%s: not queued, shutting down (it stays in the spool)", ann.id)
                return
            if ann.id in self._ledger:
                _LOGGER.warning("%s: already queued; ignoring the second submit", ann.id)
                return
        self._queued(ann, ann.speakers)
        self._enqueue(ann, ann.speakers)

    def _queued(self, ann: Announcement, speakers: tuple[str, ...], resumed: bool = False) -> None:
        held = self._quiet.held(ann, speakers)
        self.events.emit(Queued(id=ann.id, targets=ann.targets, priority=ann.priority, warnings=ann.warnings,
                                speakers=speakers, resumed=resumed or None, held=held), ann)  # fmt: skip

    def stop(self, target: str | None = None, priority_below: str | None = None) -> int:
        """Stop what plays and cancel what waits on ``target``'s speakers (all when None).

        With ``priority_below``, only announcements of a lower priority. Returns how many
        jobs (speaker × announcement) were stopped or cancelled. The caller has checked
        ``target`` and ``priority_below`` (``announcer.intake``); others are a ValueError.
        """
        if target is None:
            speakers = tuple(self._queues.speakers())
        elif target in self.cfg.speakers or target in self.cfg.zones:
            speakers = tuple(s for s in self.cfg.expand_targets([target]) if s in self._queues)
        else:
            raise ValueError(f"unknown target {target!r}")
        if priority_below is not None and priority_below not in PRIORITY_RANK:
            raise ValueError(f"unknown priority {priority_below!r}")
        below = PRIORITY_RANK[priority_below] if priority_below is not None else len(PRIORITIES)
        aborted = 0
        with self._cv:
            cancelled = self._queues.remove_below(speakers, below)
            for s in speakers:
                job = self._current.get(s)
                if job is not None and job.ann.rank < below:
                    job.abort("stopped")
                    aborted += 1
        for s, job in cancelled:
            self._terminal(job.ann, s, "cancelled", reason="stopped")
        self._status_changed()
        return len(cancelled) + aborted

    def status(self) -> dict[str, Any]:
        """``queue``: waiting jobs over all speakers (one announcement on two counts twice);
        ``speaking``: the speakers that took a job (synthesizing or playing it)."""
        with self._cv:
            return {
                "queue": self._queues.waiting(),
                "speaking": [s for s in self._queues.speakers() if s in self._current],
            }

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing waits, plays or is owed (for ``say`` and tests); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            while self._ledger or self._current:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cv.wait(remaining if remaining is not None else SWEEP_SECONDS)
        return True

    # ------------------------------------------------------------------ queues
    def _enqueue(self, ann: Announcement, speakers: tuple[str, ...]) -> None:
        unknown: list[str] = []
        shed: list[tuple[str, Job]] = []
        if not speakers:
            return
        with self._cv:
            seq = next(self._seq)
            self._ledger.owe(ann.id, speakers)
            for s in speakers:
                if s not in self._queues:
                    unknown.append(s)
                    continue
                shed += self._insert(s, Job(ann, seq))
            self._cv.notify_all()
        if ann.priority == "emergency":
            # synthesize while the interrupted announcement fades out, not after
            self.renders.prefetch(ann)
        for s in unknown:
            self._terminal(ann, s, "failed", error=f"speaker {s!r} is not configured")
        for s, job in shed:
            self._terminal(job.ann, s, "cancelled", reason="queue full")
        self._status_changed()

    def _insert(self, speaker: str, job: Job) -> list[tuple[str, Job]]:
        """Queue ``job`` (under the lock); interrupt a lower job for an emergency; return what was shed."""
        shed = self._queues.insert(speaker, job, self.cfg.limits.max_queue)
        if job.ann.priority == "emergency":
            playing = self._current.get(speaker)
            if playing is not None and playing.ann.rank < job.ann.rank:
                playing.abort("interrupted")
        return [(speaker, j) for j in shed]

    def _next_job(self, speaker: str) -> Job | None:
        """Block until ``speaker`` has a live job (None when shutting down). Runs on the player thread."""
        while True:
            expired: list[Job] = []
            job: Job | None = None
            with self._cv:
                self._current.pop(speaker, None)
                if speaker not in self._queues:  # removed by a reload
                    return None
                while (
                    not self._stopping
                    and speaker in self._queues
                    and (
                        not self._may_start()
                        or (index := self._quiet.playable(speaker, self._queues.entries(speaker))) is None
                    )
                ):
                    self._cv.wait(SWEEP_SECONDS)  # held jobs: look again when the clock moved; heartbeat
                    self._beat(speaker)
                if self._stopping or speaker not in self._queues:
                    self._cv.notify_all()
                    return None
                assert index is not None
                candidate = self._queues.pop(speaker, index)
                if self.clock() > candidate.ann.expires:
                    expired.append(candidate)
                else:
                    job = candidate
                    self._current[speaker] = job
                upcoming = self._queues.head(speaker)
            for e in expired:
                self._terminal(e.ann, speaker, "expired")
            self._status_changed()
            if job is not None:
                if upcoming is not None:
                    self.renders.prefetch(upcoming.ann)
                return job

    # ------------------------------------------------------------------ heartbeat
    def _beat(self, speaker: str) -> None:
        self.speakers.beat(speaker)

    # ------------------------------------------------------------------ reload
    def reconfigure(self, runtime: Runtime) -> None:
        """Apply a reloaded runtime (see the module doc): one sink per speaker of its config; an
        unchanged speaker keeps its sink object (the reload passes the same one)."""
        removed: list[tuple[str, Job]] = []
        with self._cv:
            self.runtime = runtime
            self.renders.synth = runtime.synth  # renders already running finish with the engine they started on
            self.renders.default_engine = runtime.config.default_engine
            for name in [n for n in self._queues.speakers() if n not in runtime.sinks]:
                removed += [(name, job) for job in self._queues.remove_speaker(name)]
            for name in self.speakers.sync(runtime.sinks, self._chain, self._started and not self._stopping):
                self._queues.add_speaker(name)
            shed = self._queues.trim(runtime.config.limits.max_queue)
            self._cv.notify_all()
        for s, job in removed:
            self._terminal(job.ann, s, "cancelled", reason="speaker removed")
        for s, job in shed:
            self._terminal(job.ann, s, "cancelled", reason="queue full")
        self._status_changed()

    def health(self) -> list[str]:
        """Why players are not making progress (empty: all are); for the watchdog."""
        with self._cv:
            return self.speakers.health()

    def _sweep_loop(self) -> None:
        """Expire waiting jobs about once a second, so ``expired`` comes on time and frees queue room."""
        while True:
            with self._cv:
                if self._stopping:
                    return
                gone = self._queues.expire(self.clock())
            for s, job in gone:
                self._terminal(job.ann, s, "expired")
            if gone:
                self._status_changed()
            with self._cv:
                if not self._stopping:
                    self._cv.wait(SWEEP_SECONDS)

    def _job_done(self, speaker: str, job: Job, outcome: Outcome) -> None:
        """The player finished with ``job`` (runs on the player thread)."""
        ann = job.ann
        with self._cv:  # not speaking any more: the status is right by the time the event goes out
            if self._current.get(speaker) is job:
                del self._current[speaker]
        if outcome.state != "aborted":
            self._terminal(ann, speaker, outcome.state, **outcome.fields)
        elif outcome.reason == "interrupted":
            self.events.emit(Interrupted(id=ann.id, speaker=speaker), ann)
            if self.clock() > ann.expires:
                self._terminal(ann, speaker, "expired")
            elif speaker not in self._queues:  # removed by a reload while it played
                self._terminal(ann, speaker, "cancelled", reason="speaker removed")
            else:
                with self._cv:
                    shed = self._insert(speaker, Job(ann, job.seq, replay=True)) if not self._stopping else []
                for s, j in shed:
                    self._terminal(j.ann, s, "cancelled", reason="queue full")
        elif outcome.reason == "stopped":
            self._terminal(ann, speaker, "cancelled", reason="stopped")
        else:  # shutdown, standby: stays pending in the spool, replayed from its start (next start, or the leader)
            self.events.emit(Interrupted(id=ann.id, speaker=speaker, reason=outcome.reason), ann)
        with self._cv:
            self._cv.notify_all()
        self._status_changed()

    # ------------------------------------------------------------------ bookkeeping
    def _terminal(self, ann: Announcement, speaker: str, state: str, *, emit: bool = True, **fields: Any) -> None:
        """``speaker`` is done with ``ann``: event (unless ``emit`` is off: a pair's other member played it),
        spool, and close the announcement when nobody owes it.

        The event goes out before the spool records it: a crash in between replays that one
        announcement from its start (the contract allows it for the one cut off, and the
        client sees a second ``finished``), whereas the other order could lose the event for
        good and leave a ``send --wait`` hanging.
        """
        if emit:
            self.events.emit(speaker_event(state, ann.id, speaker, **fields), ann)
        try:
            self.spool.speaker_done(ann.id, speaker, state)
        except Exception:
            _LOGGER.exception("%s: cannot record %s for speaker %s in the spool", ann.id, state, speaker)
        with self._cv:
            final = self._ledger.settle(ann.id, speaker, state)
        if final is None:
            return
        try:
            self.spool.ann_done(ann.id, final)
        except Exception:
            _LOGGER.exception("%s: cannot close the announcement in the spool", ann.id)
        self.renders.release(ann.id)
        with self._cv:  # last: wait_idle() returns only once the spool and the audio are settled
            self._ledger.forget(ann.id)
            self._cv.notify_all()

    def _status_changed(self) -> None:
        if self.on_status_change is None:
            return
        with self._status_lock:  # serialised, and always the latest state: callers never publish stale news
            snap = self.status()
            if snap == self._last_status:
                return
            self._last_status = snap
            try:
                self.on_status_change(snap)
            except Exception:
                _LOGGER.exception("status listener failed")
