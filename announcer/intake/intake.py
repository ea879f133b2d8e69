"""From raw fields to a committed, scheduled announcement, or a rejection: the one intake.

Every front door (the MQTT router, Hermes, Home Assistant, the HTTP API, the CLI) hands
its announcement here as raw fields plus an ``Origin`` (where and when it came from) and
gets ``Accepted`` or ``Rejected`` back; a rejection has already been announced as a
``rejected`` event naming the field. ``accept`` runs on the caller's thread and does only
quick work: validate, commit to the spool, enqueue (no synthesis, no playback). It raises
only when the spool cannot commit, so an MQTT message is then not acknowledged and the
broker redelivers it.

A broker *redelivery* (``Origin.redelivered``) of an id the spool already holds is
``Accepted`` with ``new=False`` and no event: we committed it before, the PUBACK was lost,
and the spooled copy plays. The same id sent again by a user is a ``duplicate`` rejection.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..config import Config
from ..core.announcement import Announcement, new_id
from ..core.errors import InputError
from ..core.events import EventBus
from ..core.events import Rejected as RejectedEvent
from ..core.schema import ID_RE
from ..spool.store import Spool
from .content import with_template_defaults
from .parse import build, check_target
from .rate_limit import RateLimiter
from .wire import stop_priority

_LOGGER = logging.getLogger(__name__)


class Scheduling(Protocol):
    def submit(self, ann: Announcement) -> None: ...

    def stop(self, target: str | None, priority_below: str | None = None) -> int: ...


@dataclass(frozen=True)
class Origin:
    """Where an announcement came from: for its expiry, its replies and the record."""

    source: str = "mqtt"  # mqtt | hermes | http | cli | schedule
    via: tuple[tuple[str, str], ...] = ()  # for the history: (("topic", t), ("client", c)), (("user", u),) ...
    received: float = field(default_factory=time.time)  # epoch seconds
    message_expiry: float | None = None  # seconds left (MQTT 5 MessageExpiryInterval as forwarded)
    response_topic: str | None = None  # MQTT 5: where the terminal event goes too
    correlation_data: bytes | None = None
    redelivered: bool = False  # an MQTT DUP: the spool may already hold it


@dataclass(frozen=True)
class Accepted:
    ann: Announcement
    new: bool = True  # False: a broker redelivery of an announcement the spool already had


@dataclass(frozen=True)
class Rejected:
    event: RejectedEvent  # already emitted
    error: InputError

    @property
    def field(self) -> str:
        return self.error.field


Result = Accepted | Rejected


class Intake:
    def __init__(
        self,
        config: Callable[[], Config],
        spool: Spool,
        scheduler: Scheduling,
        events: EventBus,
        field_defaults: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self._config = config  # the live config: read per announcement, so a reload applies at once
        # runtime defaults for fields a payload leaves out (e.g. the default emotion set from Home Assistant)
        self._field_defaults = field_defaults
        self.spool = spool
        self.scheduler = scheduler
        self.events = events
        self.limiter = RateLimiter(config().limits.per_minute)
        self._closed = threading.Event()

    @property
    def cfg(self) -> Config:
        return self._config()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        """Stop taking announcements: front doors then refuse (MQTT: not acked, the broker keeps them)."""
        self._closed.set()

    def accept(
        self, fields: dict[str, Any], origin: Origin | None = None, target: str | None = None
    ) -> Accepted | Rejected:
        """Validate, commit and schedule ``fields``; ``target`` (a topic's) replaces the payload's targets."""
        origin = origin or Origin()
        cfg = self.cfg
        try:
            # a template's defaults come before the runtime ones (Home Assistant's default emotion)
            fields = self._with_defaults(with_template_defaults(fields, cfg))
            forced = None
            if target is not None:
                check_target(cfg, target, where=" in the topic")
                forced = (target,)
            ann = build(
                fields,
                cfg,
                now=origin.received,
                source=origin.source,
                via=origin.via,
                forced_targets=forced,
                message_expiry=origin.message_expiry,
                response_topic=origin.response_topic,
                correlation_data=origin.correlation_data,
            )
            self.limiter.per_minute = cfg.limits.per_minute
            if ann.priority != "emergency" and not self.limiter.allow():
                raise InputError(
                    "limits.per_minute",
                    f"more than {cfg.limits.per_minute} announcements "
                    "in a minute; try again shortly (emergency is never limited)",
                    "rate_limited",
                )
        except InputError as exc:
            return self.reject(exc, fields, origin)
        if not self.spool.add(ann):  # raises if the spool cannot commit: no ack, the broker redelivers
            if origin.redelivered:
                # the broker redelivers what we committed but could not acknowledge (crash, lost
                # connection): the spooled copy plays, and this is not the user's duplicate
                _LOGGER.info("%s: redelivered by the broker, already spooled; acknowledged", ann.id)
                return Accepted(ann, new=False)
            dup = InputError("id", f"{ann.id!r} was already received in the last 24 h; not played again", "duplicate")
            return self.reject(dup, fields, origin)
        self.scheduler.submit(ann)
        return Accepted(ann)

    def reject(self, exc: InputError, fields: dict[str, Any] | None, origin: Origin | None = None) -> Rejected:
        """The ``rejected`` event for ``exc`` (with the payload's id when it has a valid one)."""
        ann_id = fields.get("id") if isinstance(fields, dict) else None
        if not isinstance(ann_id, str) or not ID_RE.fullmatch(ann_id):
            ann_id = new_id()
        event = self.events.emit(RejectedEvent.of(ann_id, exc, origin, fields if isinstance(fields, dict) else None))
        assert isinstance(event, RejectedEvent)
        return Rejected(event, exc)

    def stop(
        self,
        fields: dict[str, Any],
        target: str | None = None,
        origin: Origin | None = None,
        target_field: str = "targets",
    ) -> int | Rejected:
        """A stop (``{}`` or ``{"priority_below", "id"}``) on ``target`` (None: every speaker): how many
        jobs were stopped, or the rejection (an invalid stop stops nothing)."""
        try:
            below = stop_priority(fields)
            if target is not None:
                check_target(self.cfg, target, target_field, "" if target_field != "targets" else " in the topic")
        except InputError as exc:
            return self.reject(exc, fields, origin)
        _LOGGER.info("stop requested on %s%s", target or "all speakers", f" below {below}" if below else "")
        return self.scheduler.stop(target, below)

    def _with_defaults(self, fields: dict[str, Any]) -> dict[str, Any]:
        if self._field_defaults is None:
            return fields
        out = dict(fields)
        for key, value in self._field_defaults().items():
            if out.get(key) is None:
                out[key] = value
        return out
