"""Quiet hours: pure rules, no threads and no clock of their own.

``QuietHours.at(now, speaker, priority)`` answers three questions for one job:
may it play now, at most how loud, and when does the quiet end for it.

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

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from datetime import time as dtime
from zoneinfo import ZoneInfo

from .config import PRIORITIES, Config, QuietHoursConfig

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
