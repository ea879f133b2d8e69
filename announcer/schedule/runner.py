"""The schedule runner: one thread that fires each schedule's announcements through the intake.

The runner knows when (``announcer.schedule.calendar``); what a firing becomes is the
intake's business: it hands each due ``Firing`` to a ``FiringSink`` (the daemon's is
``announcer.intake.scheduled``, which builds the announcement, id ``<schedule>-<date>T<HHMM>``,
and puts it through ``Intake.accept`` like any other: spool, queues, events). Time comes
from a ``Clock`` passed in (``announcer.schedule.clock``), so tests move it.

Rules (the decisions, in one place):

* Each schedule has its next firing. The thread sleeps until the earliest one (at most
  ``MAX_SLEEP`` at a time, so a clock step or a host that slept is noticed), then ``tick``
  handles everything due.
* A firing is *on time* when handled within ``LATE_GRACE`` seconds of its instant. A later
  one is *missed*: with ``missed: skip`` it is not announced (one warning); with
  ``missed: {play_within: S}`` it is announced if it is at most S seconds late. When
  several firings of one schedule are due at once (the daemon was down, the host slept),
  only the latest is considered; the earlier ones are logged as missed.
* Never twice: a firing whose id the spool already holds (``FiringSink.fired``) is not
  fired again. That is what makes a restart safe: at start each schedule looks back
  ``max(LATE_GRACE, play_within)`` seconds, and a firing in that window fires only if the
  spool has not seen it. The ids come from the nominal local time, so the repeated hour of
  autumn cannot fire a time twice either (``announcer.schedule.calendar``).
* Paused schedules (``paused()``, e.g. Home Assistant's switch, persisted by the daemon)
  keep their times but announce nothing (one info line per firing).
* A reload (``wake()``; the config is read at every tick): a new or changed schedule starts
  from the last tick (no retroactive firings); a removed one stops; a changed ``timezone``
  recomputes every schedule.
* The intake refusing a firing (rate limit, an invalid field) is its ``rejected`` event; the
  runner goes on. The intake raising (the spool cannot commit) keeps the firing due, and it
  is tried again after ``RETRY_SECONDS`` while it is still within its window.
* ``subscribe``: listeners (Home Assistant's sensor and switches) hear of every change of
  what is next: a firing handled, a reload, ``changed()`` after a pause or resume.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass
from datetime import tzinfo
from typing import Protocol

from .calendar import Firing, firings, next_firing, site_zone
from .clock import Clock, SystemClock
from .model import ScheduleConfig

_LOGGER = logging.getLogger(__name__)

LATE_GRACE = 60.0  # seconds: handled within this after its time, a firing is on time
MAX_SLEEP = 30.0  # the thread looks at the clock at least this often
RETRY_SECONDS = 5.0
REMEMBERED = 1024  # ids of recent firings kept in memory (the spool is what decides)
CHECK_EARLIER = 100  # missed firings looked up in the spool (to count only those never announced)

ACCEPTED, REJECTED, CLOSED = "accepted", "rejected", "closed"  # what a FiringSink says


class ScheduleSource(Protocol):
    """Where the schedules come from: the live config (``schedules``, ``timezone``)."""

    @property
    def schedules(self) -> Mapping[str, ScheduleConfig]: ...

    @property
    def timezone(self) -> str | None: ...


class FiringSink(Protocol):
    """The intake side of the runner."""

    def fire(self, firing: Firing, schedule: ScheduleConfig, now: float) -> str:
        """Announce ``firing`` (received at ``now``): ACCEPTED, REJECTED or CLOSED; raises if it could not commit."""
        ...

    def fired(self, firing_id: str, now: float) -> bool:
        """Whether ``firing_id`` was already announced (the spool holds it)."""
        ...


@dataclass(frozen=True)
class Upcoming:
    schedule: str
    firing: Firing | None  # None: it never fires again (its end_date passed)
    paused: bool


class ScheduleRunner:
    def __init__(
        self,
        config: Callable[[], ScheduleSource],
        sink: FiringSink,
        paused: Callable[[], Set[str]] = frozenset,
        clock: Clock | None = None,
    ) -> None:
        self._config = config
        self.sink = sink
        self._paused = paused
        self.clock: Clock = clock or SystemClock()
        self._lock = threading.RLock()
        self._known: dict[str, ScheduleConfig] = {}
        self._tz_name: str | None = None
        self.tz: tzinfo = site_zone(None)
        self._next: dict[str, Firing | None] = {}
        self._cursor: float | None = None  # the last tick: everything up to here was handled
        self._fired: OrderedDict[str, None] = OrderedDict()  # recent ids announced: a fast path before the spool
        self._retry_at: float | None = None  # the intake raised: nothing is tried again before this
        self._listeners: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self.tick()
        self._thread = threading.Thread(target=self._run, name="announcer-schedules", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        """Look at the config and the clock now (after a reload, a pause, a resume)."""
        self._wake.set()

    def changed(self) -> None:
        """Something listeners show changed (a schedule paused or resumed): tell them, and wake."""
        self.wake()
        self._notify()

    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            delay = MAX_SLEEP
            try:
                self.tick()
                delay = self.seconds_to_next()
            except Exception:  # never let the thread die: the next round retries
                _LOGGER.exception("schedules: tick failed")
                delay = RETRY_SECONDS
            self.clock.wait(delay, self._wake)

    def seconds_to_next(self) -> float:
        """How long the thread sleeps now: until the next firing (or the retry), at most ``MAX_SLEEP``."""
        with self._lock:
            due = [max(f.at, self._retry_at or 0.0) for f in self._next.values() if f is not None]
        if not due:
            return MAX_SLEEP
        return max(0.0, min(min(due) - self.clock.now(), MAX_SLEEP))

    # ---- what is next -----------------------------------------------------------------------
    def upcoming(self) -> list[Upcoming]:
        """Each schedule's next firing, in config order."""
        paused = self._paused()
        with self._lock:
            return [Upcoming(name, self._next.get(name), name in paused) for name in self._known]

    def next_unpaused(self) -> Firing | None:
        """The next firing of any schedule that is not paused."""
        return min((u.firing for u in self.upcoming() if u.firing is not None and not u.paused), default=None)

    # ---- firing -----------------------------------------------------------------------------
    def tick(self) -> list[tuple[Firing, str]]:
        """Handle every firing due now; returns what happened to each (for logs and tests)."""
        now = self.clock.now()
        changed = self._sync(now)
        done: list[tuple[Firing, str]] = []
        retrying = self._retry_at is not None and now < self._retry_at
        if not retrying:
            self._retry_at = None
        while not retrying:
            with self._lock:
                due = min((f for f in self._next.values() if f is not None and f.at <= now), default=None)
                if due is None:
                    break
                schedule = self._known[due.schedule]
                due = self._latest(due, schedule, now)
                self._next[due.schedule] = next_firing(due.schedule, schedule.timing(), self.tz, due.at)
            try:
                outcome = self._handle(due, schedule, now)
            except Exception as exc:  # the spool could not commit: try again shortly, while it is in time
                _LOGGER.error("schedule %s: cannot announce %s now (%s); trying again", due.schedule, due.id, exc)
                with self._lock:
                    self._next[due.schedule] = due
                    self._retry_at = now + RETRY_SECONDS
                break
            done.append((due, outcome))
        with self._lock:
            self._cursor = now
        if done or changed:
            self._notify()
        return done

    def _latest(self, due: Firing, schedule: ScheduleConfig, now: float) -> Firing:
        """The last firing of ``due``'s schedule that is due by ``now``; the earlier ones were missed
        (those the spool holds were announced before a restart, and are not counted)."""
        earlier: list[Firing] = []
        count, latest = 0, due
        for f in firings(due.schedule, schedule.timing(), self.tz, due.at, now):
            if len(earlier) < CHECK_EARLIER:
                earlier.append(latest)
            count, latest = count + 1, f
        if count <= len(earlier):
            earlier = [f for f in earlier if f.id not in self._fired and not self.sink.fired(f.id, now)]
            count = len(earlier)
        if count:
            _LOGGER.warning(
                "schedule %s: %d firing(s) from %s on missed (the daemon was not running or the host slept); "
                "not announced",
                due.schedule,
                count,
                earlier[0].id if earlier else due.id,
            )
        return latest

    def _handle(self, firing: Firing, schedule: ScheduleConfig, now: float) -> str:
        name = firing.schedule
        if name in self._paused():
            _LOGGER.info("schedule %s: paused; %s not announced", name, firing.id)
            return "paused"
        if firing.id in self._fired or self.sink.fired(firing.id, now):
            _LOGGER.debug("schedule %s: %s was already announced", name, firing.id)
            return "done"
        late = now - firing.at
        allowed = max(LATE_GRACE, schedule.play_within)
        if late > allowed:
            policy = "skip" if not schedule.play_within else f"play_within {schedule.play_within:g} s"
            _LOGGER.warning(
                "schedule %s: %s missed by %.0f s (missed: %s); not announced", name, firing.id, late, policy
            )
            return "missed"
        result = self.sink.fire(firing, schedule, now)
        if result == ACCEPTED:
            self._fired[firing.id] = None
            while len(self._fired) > REMEMBERED:
                self._fired.popitem(last=False)
            _LOGGER.info(
                "schedule %s: announced %s%s", name, firing.id, f" ({late:.0f} s late)" if late > LATE_GRACE else ""
            )
        elif result == REJECTED:
            _LOGGER.warning("schedule %s: %s was rejected (see its rejected event)", name, firing.id)
        return result

    def _sync(self, now: float) -> bool:
        """Follow the config: schedules added, changed or removed, the zone changed. True if anything did."""
        cfg = self._config()
        schedules, tz_name = dict(cfg.schedules), cfg.timezone
        with self._lock:
            if schedules == self._known and tz_name == self._tz_name and self._cursor is not None:
                return False
            rezone = tz_name != self._tz_name or self._cursor is None
            if rezone:
                self._tz_name, self.tz = tz_name, site_zone(tz_name)
            first = self._cursor is None
            for name in [n for n in self._next if n not in schedules]:
                del self._next[name]
            for name, schedule in schedules.items():
                if not rezone and self._known.get(name) == schedule:
                    continue
                # at start, look back for firings a restart may still owe; after a reload, from the last tick
                start = now - max(LATE_GRACE, schedule.play_within) if first else (self._cursor or now)
                self._next[name] = next_firing(name, schedule.timing(), self.tz, start)
            self._known = schedules
        return True

    def _notify(self) -> None:
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:
                _LOGGER.exception("schedules: a listener failed")
