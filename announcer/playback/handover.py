"""What the scheduler does when the spool's work changes hands: resume it, give it back, retire what was
played elsewhere. A mixin of ``announcer.playback.scheduler.Scheduler`` (its lock, queues, ledger, spool).

At start the scheduler resumes the spool (``resume_pending``). In an active/standby pair
(``announcer.integrations.pair``) both members spool every announcement, but only the one that leads
has them in its scheduler:

* ``resume_pending``: queue everything the spool holds that the scheduler does not (``queued`` with
  ``resumed: true``; what expired meanwhile gets ``expired``), in the spool's arrival order, each
  speaker's queue then ordering it by priority. At start, and when a member takes the lead.
* ``release``: a member that no longer leads stops what plays (``interrupted``, ``reason:
  "standby"``) and drops every waiting job, without events: everything stays pending in the spool.
* ``retire(id, speaker, state)``: the other member reported ``state`` for it: a waiting job is
  dropped and recorded in the spool without an event. One that plays here goes on (it is the
  one a failover cut off, replayed from its start). False when the scheduler does not have it.

None of this knows about MQTT: the pair decides when, the scheduler only does it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core.announcement import Announcement

if TYPE_CHECKING:
    from ..spool.store import Spool
    from .ledger import Ledger
    from .queues import Job, SpeakerQueues

_LOGGER = logging.getLogger(__name__)


class Handover:
    """Mixin: needs the scheduler's ``_cv``, ``_queues``, ``_ledger``, ``_current``, ``spool``, ``clock``."""

    _cv: threading.Condition
    _queues: SpeakerQueues
    _ledger: Ledger
    _current: dict[str, Job]
    spool: Spool
    clock: Callable[[], float]

    def _terminal(self, ann: Announcement, speaker: str, state: str, *, emit: bool = True, **fields: Any) -> None:
        raise NotImplementedError

    def _queued(self, ann: Announcement, speakers: tuple[str, ...], resumed: bool = False) -> None:
        raise NotImplementedError

    def _enqueue(self, ann: Announcement, speakers: tuple[str, ...]) -> None:
        raise NotImplementedError

    def _status_changed(self) -> None:
        raise NotImplementedError

    def resume_pending(self) -> int:
        """Queue what the spool holds and the scheduler does not; how many announcements were queued."""
        queued = 0
        for ann, speakers in self.spool.pending():
            with self._cv:
                if ann.id in self._ledger:
                    continue
            if self.clock() > ann.expires:
                for s in speakers:
                    self._terminal(ann, s, "expired")
                continue
            self._queued(ann, speakers, resumed=True)
            self._enqueue(ann, speakers)
            queued += 1
        return queued

    def release(self) -> int:
        """Stop what plays and drop what waits, without events; all of it stays pending in the spool."""
        with self._cv:
            for job in self._current.values():
                job.abort("standby")
            dropped = self._queues.clear()
            ids = self._ledger.clear()
            self._cv.notify_all()
        if ids:
            _LOGGER.info("handed %d announcement(s) back to the spool (%d waiting job(s))", len(ids), len(dropped))
        self._status_changed()
        return len(ids)

    def retire(self, ann_id: str, speaker: str, state: str) -> bool:
        """``speaker`` of ``ann_id`` was done elsewhere with ``state``; False if the scheduler does not have it."""
        with self._cv:
            if ann_id not in self._ledger:
                return False
            playing = self._current.get(speaker)
            if playing is not None and playing.ann.id == ann_id:
                return True  # plays here: it goes on
            job = self._queues.take(speaker, ann_id)
        if job is not None:
            self._terminal(job.ann, speaker, state, emit=False)
            self._status_changed()
        return True
