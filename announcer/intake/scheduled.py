"""The intake side of the schedules: a due firing becomes an announcement like any other.

``ScheduledFirings`` is the ``FiringSink`` the daemon hands to the schedule runner
(``announcer.schedule.runner``). A firing's announcement is the schedule's fields (what it
says, targets, priority ...) with the id ``<schedule>-<date>T<HHMM>``, received at the
runner's clock, from ``Origin(source="schedule", via=(("schedule", name),))``, through
``Intake.accept``: validated, spooled, queued, with its events, a ``rejected`` one included.
``fired`` asks the spool whether the id was accepted (its duplicate window is 24 hours, and
``missed.play_within`` is at most that), so a restart never announces a firing twice.
"""

from __future__ import annotations

from ..schedule.calendar import Firing
from ..schedule.model import ScheduleConfig
from ..schedule.runner import ACCEPTED, CLOSED, REJECTED
from .intake import Accepted, Intake, Origin


class ScheduledFirings:
    def __init__(self, intake: Intake) -> None:
        self.intake = intake

    def fire(self, firing: Firing, schedule: ScheduleConfig, now: float) -> str:
        if self.intake.closed:  # stopping: the next start looks back for it
            return CLOSED
        fields = {**schedule.fields(), "id": firing.id}
        origin = Origin(source="schedule", received=now, via=(("schedule", firing.schedule),))
        result = self.intake.accept(fields, origin)
        return ACCEPTED if isinstance(result, Accepted) else REJECTED

    def fired(self, firing_id: str, now: float) -> bool:
        return self.intake.spool.seen(firing_id, now)
