"""Quiet hours: the rules (``QuietHours``, pure, no clock of their own) and the gate at the
scheduler's queues (``QuietGate``: which waiting job may start now, and at what volume).

``QuietHours.at(now, speaker, priority)`` answers three questions for one job:
may it play now, at most how loud, and when does the quiet end for it. ``QuietGate``
applies them with the scheduler's clock and config (the rules are rebuilt when the config
object changes, i.e. after a reload). A player takes the first job of its queue, in queue
order, that quiet hours allow now; a job below the window's ``min_priority`` stays where it
is (held) until the window ends or it expires, and never blocks the allowed ones behind it.
The job handed out carries the window's volume cap. A held job is named in the ``queued``
event (``held: {speaker: "quiet hours until 07:00"}``) and logged once by the player that
skips it (again only when the reason changes); a player with only held jobs re-checks at
least once a second. What already plays when a window starts plays on.

Rules (the decisions, in one place):

* A window is ``start``..``end`` in wall-clock time of the configured zone (top-level
  ``timezone``, an IANA name; None: the system's local time). ``start`` is included,
  ``end`` is not. ``end <= start`` crosses midnight (22:00–07:00 ends the next
  morning); ``end == start`` is a whole 24 hours. ``days`` names the day a window
  *starts*: ``days: [fri]`` with 22:00–07:00 is Friday night into Saturday morning.
* Wall times become instants through zoneinfo (PEP 495, ``fold=0``), and every
  comparison is between instants, so a window that spans a DST change lasts the real
  time the clock says (22:00–07:00 is 8 h on the spring-forward night, 10 h in autumn).
* ``speakers: []`` is every speaker. A window applies to a job when it is active now
  and names the job's speaker (or none).
* Several windows active at once: the strictest wins, i.e. the highest
  ``min_priority`` and the lowest ``volume``.
* A job below the ``min_priority`` of an active window is held; ``until`` is the first
  instant at which no window that would hold it is active any more (back-to-back or
  overlapping windows are followed through, up to ``HORIZON_DAYS``; beyond that
  ``until`` is None: held until it expires).
* A job that may play inside quiet hours gets ``cap`` (the lowest volume of the active
  windows); ``until`` is then when that quiet ends (every applying window followed
  through). Outside quiet hours: allowed, no cap, ``until`` None.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from datetime import time as dtime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ..config import Config, QuietHoursConfig
from ..core.schema import PRIORITIES

if TYPE_CHECKING:
    from ..core.announcement import Announcement
    from .queues import Job

_LOGGER = logging.getLogger(__name__)

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HORIZON_DAYS = 8  # chained windows are followed this far; further is "no end in sight"


@dataclass(frozen=True)
class Quiet:
    """What quiet hours say about one job at one instant."""

    allowed: bool  # may start now
    cap: float | None = None  # the volume cap while quiet (None: not in quiet hours)
    until: datetime | None = None  # local time the hold (or the capped quiet) ends; None: not quiet / no end in sight
    held_by: QuietHoursConfig | None = None  # the window that holds it (first one found)

    @property
    def quiet(self) -> bool:
        return self.cap is not None or not self.allowed

    def describe(self, now: datetime | None = None) -> str:
        """``"quiet hours until 07:00"`` (the date is added when the end is not within a day)."""
        if self.until is None:
            return "quiet hours"
        if now is not None and self.until - now >= timedelta(days=1):
            return f"quiet hours until {self.until:%a %Y-%m-%d %H:%M}"
        return f"quiet hours until {self.until:%H:%M}"


NOT_QUIET = Quiet(True)


def zone(name: str | None) -> tzinfo | None:
    """The zone for ``timezone`` (None: the system's local time, which follows its own DST)."""
    return ZoneInfo(name) if name else None


class QuietHours:
    def __init__(self, windows: Iterable[QuietHoursConfig], tz: tzinfo | None = None) -> None:
        self.windows = tuple(windows)
        self.tz = tz

    @classmethod
    def from_config(cls, cfg: Config) -> QuietHours:
        return cls(cfg.quiet_hours, zone(cfg.timezone))

    def __bool__(self) -> bool:
        return bool(self.windows)

    def local(self, when: float | datetime) -> datetime:
        """``when`` (epoch seconds or a datetime) as a datetime in the rules' zone."""
        if self.tz is not None:
            return datetime.fromtimestamp(self._epoch(when), self.tz)
        return datetime.fromtimestamp(self._epoch(when)).astimezone()  # aware, with the local offset of then

    def at(self, when: float | datetime, speaker: str, priority: str) -> Quiet:
        """May a job of ``priority`` start on ``speaker`` at ``when``, how loud, and until when is it quiet?"""
        if not self.windows:
            return NOT_QUIET
        now = self._epoch(when)
        rank = PRIORITIES.index(priority)
        applying = [w for w in self.windows if not w.speakers or speaker in w.speakers]
        active = [(w, end) for w in applying if (end := self._active_end(w, now)) is not None]
        if not active:
            return NOT_QUIET
        cap = min(w.volume for w, _ in active)
        holding = [w for w, _ in active if rank < PRIORITIES.index(w.min_priority)]
        if holding:
            blockers = [w for w in applying if rank < PRIORITIES.index(w.min_priority)]
            return Quiet(False, cap, self._clear_at(blockers, now), holding[0])
        return Quiet(True, cap, self._clear_at(applying, now))

    # ------------------------------------------------------------------ internals
    def _epoch(self, when: float | datetime) -> float:
        if isinstance(when, datetime):
            if when.tzinfo is None:  # a naive datetime is a wall time in the rules' zone
                when = when.replace(tzinfo=self.tz) if self.tz else when
            return when.timestamp()
        return float(when)

    def _instant(self, day: date, t: dtime) -> float:
        return datetime.combine(day, t, tzinfo=self.tz).timestamp()

    def _active_end(self, w: QuietHoursConfig, now: float) -> float | None:
        """The end (epoch) of ``w``'s occurrence containing ``now``, or None when it is not active."""
        today = datetime.fromtimestamp(now, self.tz).date()
        for start_day in (today - timedelta(days=1), today):
            if DAY_NAMES[start_day.weekday()] not in w.days:
                continue
            begin = self._instant(start_day, w.start)
            end_day = start_day + timedelta(days=1) if w.end <= w.start else start_day
            end = self._instant(end_day, w.end)
            if begin <= now < end:
                return end
        return None

    def _clear_at(self, windows: list[QuietHoursConfig], now: float) -> datetime | None:
        """The first instant from ``now`` at which none of ``windows`` is active (None: not within the horizon)."""
        t = now
        limit = now + HORIZON_DAYS * 86400
        while t < limit:
            ends = [e for w in windows if (e := self._active_end(w, t)) is not None]
            if not ends:
                return self.local(t)
            t = max(ends)
        return None


class QuietGate:
    def __init__(self, config: Callable[[], Config], clock: Callable[[], float]) -> None:
        self._config = config  # the scheduler's current config
        self._clock = clock
        self._rules: tuple[Config, QuietHours] | None = None

    def rules(self) -> QuietHours:
        """The quiet-hours rules of the current config (rebuilt when the config object changes)."""
        cfg = self._config()
        if self._rules is None or self._rules[0] is not cfg:
            self._rules = (cfg, QuietHours.from_config(cfg))
        return self._rules[1]

    def held(self, ann: Announcement, speakers: tuple[str, ...]) -> dict[str, str] | None:
        """For the ``queued`` event: the speakers on which quiet hours hold ``ann`` now, and until when."""
        quiet = self.rules()
        if not quiet:
            return None
        now = self._clock()
        held = {}
        for s in speakers:
            q = quiet.at(now, s, ann.priority)
            if not q.allowed:
                held[s] = q.describe(quiet.local(now))
        return held or None

    def playable(self, speaker: str, queue: Sequence[tuple[Any, Job]]) -> int | None:
        """Index of the first job of ``speaker``'s queue (``(sort key, job)`` entries, in order) that
        quiet hours let start now; sets its volume cap. Called under the scheduler's lock."""
        if not queue:
            return None
        quiet = self.rules()
        if not quiet:
            queue[0][1].volume_cap = None
            return 0
        now = self._clock()
        seen: dict[str, Quiet] = {}  # the answer depends on the priority only
        for i, (_, job) in enumerate(queue):
            if now > job.ann.expires:
                return i  # taken to be reported as expired
            rule = seen.get(job.ann.priority) or seen.setdefault(
                job.ann.priority, quiet.at(now, speaker, job.ann.priority)
            )
            if rule.allowed:
                job.volume_cap = rule.cap
                return i
            reason = rule.describe(quiet.local(now))
            if job.held != reason:
                job.held = reason
                _LOGGER.info("%s: waits on speaker %s: %s", job.ann.id, speaker, reason)
        return None
