"""Quiet hours at the scheduler's queues: which waiting job may start now, and at what volume.

``announcer.quiet`` holds the pure rules; this module applies them with the scheduler's
clock and config (the rules are rebuilt when the config object changes, i.e. after a
reload). The decisions are in the scheduler's module doc ("Quiet hours"): a player takes
the first job of its queue that quiet hours allow now; a held job stays where it is and
never blocks the allowed ones behind it; the job handed out carries the window's volume
cap; a held job is logged once (again only when the reason changes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .quiet import Quiet, QuietHours

if TYPE_CHECKING:
    from .announcement import Announcement
    from .config import Config
    from .player import Job

# logged under the scheduler's name, as before this module was split out of it (log filters and
# caplog(logger="announcer.scheduler") keep matching)
_LOGGER = logging.getLogger(__name__)


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
            rule = seen.get(job.ann.priority) or seen.setdefault(job.ann.priority,
                                                                  quiet.at(now, speaker, job.ann.priority))
            if rule.allowed:
                job.volume_cap = rule.cap
                return i
            reason = rule.describe(quiet.local(now))
            if job.held != reason:
                job.held = reason
                _LOGGER.info("%s: waits on speaker %s: %s", job.ann.id, speaker, reason)
        return None
