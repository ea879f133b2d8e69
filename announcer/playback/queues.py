"""Waiting jobs per speaker, in play order: the scheduler's queues, without threads or locks.

A ``Job`` is one announcement queued on (or playing on) one speaker. ``SpeakerQueues``
keeps each speaker's waiting jobs sorted by priority (emergency first), then arrival (a
sequence number, never a timestamp, so equal priorities are strictly first in, first out).
It is plain data: the scheduler holds its lock around every call, and decides what the
results mean (events, the spool).

Rules:

* Order: priority (emergency > high > normal > low), then arrival: a sequence number
  from a counter, never a timestamp, so equal priorities are strictly FIFO. An
  interrupted job goes back with its original number (ahead of later arrivals).
* Queue full (more than ``limits.max_queue`` waiting on one speaker, the playing one
  not counted): the lowest-priority, newest entry of that speaker is dropped with a
  ``cancelled`` event (``speaker``, ``reason: "queue full"``). That may be the new one.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass

from ..core.announcement import Announcement

# why a job was aborted, strongest last: a stop beats an interruption, a pair member that no longer
# leads ("standby") beats both, a shutdown beats all
ABORT_REASONS = ("interrupted", "stopped", "standby", "shutdown")


class Aborted(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Job:
    """One announcement queued on (or playing on) one speaker."""

    ann: Announcement
    seq: int  # arrival order; kept when an interrupted job is requeued
    replay: bool = False  # requeued after an interruption: plays again from its start
    abort_reason: str | None = None
    volume_cap: float | None = None  # quiet hours: set by the scheduler when it hands the job out
    held: str | None = None  # quiet hours: why it waits, as last logged (scheduler bookkeeping)

    @property
    def key(self) -> tuple[int, int]:
        return (-self.ann.rank, self.seq)

    def abort(self, reason: str) -> None:
        """Ask the player to stop this job (called under the scheduler lock)."""
        if self.abort_reason is None or ABORT_REASONS.index(reason) > ABORT_REASONS.index(self.abort_reason):
            self.abort_reason = reason

    def check(self) -> None:
        if self.abort_reason is not None:
            raise Aborted(self.abort_reason)


Entry = tuple[tuple[int, int], Job]  # (sort key, job)


class SpeakerQueues:
    def __init__(self, speakers: Iterable[str] = ()) -> None:
        self._queues: dict[str, list[Entry]] = {s: [] for s in speakers}

    # ---- speakers ----
    def speakers(self) -> list[str]:
        return list(self._queues)

    def __contains__(self, speaker: object) -> bool:
        return speaker in self._queues

    def add_speaker(self, speaker: str) -> None:
        self._queues.setdefault(speaker, [])

    def remove_speaker(self, speaker: str) -> list[Job]:
        """Drop ``speaker``; returns what waited there."""
        return [job for _, job in self._queues.pop(speaker, [])]

    # ---- jobs ----
    def entries(self, speaker: str) -> list[Entry]:
        """``speaker``'s queue in play order (the list itself: the quiet gate reads it in place)."""
        return self._queues[speaker]

    def insert(self, speaker: str, job: Job, max_queue: int) -> list[Job]:
        """Queue ``job``; past ``max_queue`` the lowest-priority, newest jobs are shed (returned; may be ``job``)."""
        q = self._queues[speaker]
        bisect.insort(q, (job.key, job), key=lambda e: e[0])
        shed = []
        while len(q) > max_queue:
            shed.append(q.pop()[1])  # last = lowest priority, newest
        return shed

    def trim(self, max_queue: int) -> list[tuple[str, Job]]:
        """Shed every queue down to ``max_queue`` (after a reload lowered it)."""
        shed = []
        for speaker, q in self._queues.items():
            while len(q) > max_queue:
                shed.append((speaker, q.pop()[1]))
        return shed

    def pop(self, speaker: str, index: int) -> Job:
        return self._queues[speaker].pop(index)[1]

    def head(self, speaker: str) -> Job | None:
        q = self._queues.get(speaker)
        return q[0][1] if q else None

    def remove_below(self, speakers: Iterable[str], rank: int) -> list[tuple[str, Job]]:
        """Take every job of a priority below ``rank`` off ``speakers``' queues (a stop)."""
        removed = []
        for s in speakers:
            q = self._queues[s]
            removed += [(s, job) for _, job in q if job.ann.rank < rank]
            q[:] = [e for e in q if e[1].ann.rank >= rank]
        return removed

    def take(self, speaker: str, ann_id: str) -> Job | None:
        """Take ``ann_id``'s waiting job off ``speaker``'s queue (None: it has none)."""
        q = self._queues.get(speaker, [])
        for i, (_key, job) in enumerate(q):
            if job.ann.id == ann_id:
                return q.pop(i)[1]
        return None

    def clear(self) -> list[tuple[str, Job]]:
        """Take every waiting job off every queue."""
        out = [(s, job) for s, q in self._queues.items() for _key, job in q]
        for q in self._queues.values():
            q.clear()
        return out

    def expire(self, now: float) -> list[tuple[str, Job]]:
        """Take every job whose announcement expired before ``now`` off the queues."""
        gone = []
        for s, q in self._queues.items():
            gone += [(s, job) for _, job in q if now > job.ann.expires]
            q[:] = [e for e in q if now <= e[1].ann.expires]
        return gone

    def waiting(self) -> int:
        """Jobs waiting over all speakers (one announcement on two speakers counts twice)."""
        return sum(len(q) for q in self._queues.values())
