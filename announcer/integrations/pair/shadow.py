"""What a pair member keeps for the announcements the other member plays.

Both members receive every announcement (plain subscriptions on persistent sessions) and commit
it to their spool before acknowledging it; only the leader has them in its scheduler. Each member
follows the other's events on ``P/events`` and *retires* what the other reports done: a terminal
state for a speaker (``finished``, ``cancelled``, ``expired``, ``failed``) closes that speaker in
this member's spool (or drops the waiting job, when this member leads: a late event of the old
leader), without an event of its own; a ``rejected`` (not a ``duplicate``: that says nothing
about the first copy) closes every speaker. When this member takes the lead it plays what is
still pending: what the old leader did not finish.

An event may come before the announcement it is about (the two are different topics): it is
kept as a *tombstone* for ``TOMBSTONE_S`` and applied when the announcement arrives.

A stop that reaches a member that does not lead cancels the matching pending announcements in
its spool too (the leader does the same and says so in its events), so a leader that dies
right after a stop does not leave them to be played by the other.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from ...config import Config
from ...core.announcement import Announcement
from ...core.events import SPEAKER_TERMINAL
from ...core.schema import PRIORITIES, PRIORITY_RANK
from ...spool.store import Spool

_LOGGER = logging.getLogger(__name__)

TOMBSTONE_S = 3600.0
MAX_TOMBSTONES = 10000
ALL = "*"  # a tombstone for every speaker (a rejection)


class Retiring(Protocol):
    def retire(self, ann_id: str, speaker: str, state: str) -> bool: ...


class Shadow:
    def __init__(self, spool: Spool, config: Callable[[], Config], clock: Callable[[], float] = time.monotonic) -> None:
        self.spool = spool
        self._config = config
        self.clock = clock
        self.scheduler: Retiring | None = None
        self._tombstones: OrderedDict[str, tuple[float, dict[str, str]]] = OrderedDict()
        self.retired = 0  # speakers closed because the other member reported them (for the status)

    # ---- the other member's events -------------------------------------------------------------
    def on_event(self, event: dict[str, Any]) -> None:
        ann_id, state, speaker = event.get("id"), event.get("state"), event.get("speaker")
        if not isinstance(ann_id, str):
            return
        if state in SPEAKER_TERMINAL and isinstance(speaker, str):
            self.retire(ann_id, speaker, str(state))
        elif state == "rejected" and event.get("reason") != "duplicate":
            self.retire(ann_id, ALL, "cancelled")

    def retire(self, ann_id: str, speaker: str, state: str) -> None:
        """``speaker`` (``ALL``: every one) of ``ann_id`` is done elsewhere with ``state``."""
        known = self.spool.state(ann_id)
        if known is None:
            self._bury(ann_id, speaker, state)
            return
        _final, speakers = known
        for s, s_state in speakers.items():
            if speaker not in (ALL, s):
                continue
            if self.scheduler is not None and self.scheduler.retire(ann_id, s, state):
                continue
            if s_state == "pending":
                self.spool.speaker_done(ann_id, s, state)
                self.retired += 1
                _LOGGER.debug("%s: %s on %s by the other member; retired here", ann_id, state, s)

    # ---- announcements this member holds for the other ------------------------------------------
    def held(self, ann: Announcement) -> None:
        """``ann`` was committed while the other member leads: apply what it already reported."""
        entry = self._tombstones.pop(ann.id, None)
        if entry is None:
            return
        for speaker, state in entry[1].items():
            self.retire(ann.id, speaker, state)

    def stop(self, target: str | None, priority_below: str | None) -> int:
        """Cancel the pending announcements a stop concerns (no events); how many speakers."""
        cfg = self._config()
        speakers = set(cfg.speakers) if target is None else set(cfg.expand_targets([target]))
        below = PRIORITY_RANK[priority_below] if priority_below is not None else len(PRIORITIES)
        n = 0
        for ann, owed in self.spool.pending():
            if ann.rank >= below:
                continue
            for s in owed:
                if s in speakers:
                    self.spool.speaker_done(ann.id, s, "cancelled")
                    n += 1
        return n

    def _bury(self, ann_id: str, speaker: str, state: str) -> None:
        now = self.clock()
        while self._tombstones:
            oldest, (at, _) = next(iter(self._tombstones.items()))
            if now - at <= TOMBSTONE_S and len(self._tombstones) < MAX_TOMBSTONES:
                break
            del self._tombstones[oldest]
        entry = self._tombstones.setdefault(ann_id, (now, {}))
        entry[1].setdefault(speaker, state)
