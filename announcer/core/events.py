"""Announcement events: one frozen dataclass per state, logged one line each, fanned out to listeners.

States: queued, started, finished, interrupted, cancelled, expired, rejected, failed.
``started``/``finished``/``interrupted``/``cancelled``/``failed`` are per speaker (so is
``expired`` once an announcement was queued; a rejected one never had speakers).
``Event.to_wire()`` is the JSON object published on ``P/events`` (``id``, ``state``, ``ts``,
``site`` and ``member`` in a fleet or a pair, then the state's own fields; a field that is None
is left out). Listeners get the typed
event and the announcement (None for a rejection): the MQTT side publishes it, Home
Assistant, Hermes and the HTTP side keep what they need.

Every event is logged under ``announcer.events`` as one line ``<id> <state> key=value ...``
(WARNING for rejected, failed and expired, else INFO), before any listener sees it: the
log is the record of what happened even when the broker is gone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from .announcement import Announcement
    from .errors import InputError

# the log's name is part of what operators filter on; it stays announcer.events whatever the module is called
_LOGGER = logging.getLogger("announcer.events")

STATES = ("queued", "started", "finished", "interrupted", "cancelled", "expired", "rejected", "failed")
TERMINAL = frozenset({"finished", "cancelled", "expired", "rejected", "failed"})
SPEAKER_TERMINAL = frozenset({"finished", "cancelled", "expired", "failed"})


def utc_ts(epoch: float | None = None) -> str:
    dt = datetime.now(timezone.utc) if epoch is None else datetime.fromtimestamp(epoch, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


@dataclass(frozen=True, kw_only=True)
class Event:
    """What every event carries; subclasses add their state's fields (``None``: not on the wire)."""

    state: ClassVar[str]
    wire_extra: ClassVar[tuple[str, ...]] = ()  # fields kept out of the wire form (context for listeners)
    id: str
    ts: str = field(default_factory=utc_ts)
    site: str | None = None  # the daemon's site (``site.name``), stamped by the bus
    member: str | None = None  # the pair member that emitted it (its ``mqtt.client_id``), stamped by the bus

    def to_wire(self) -> dict[str, Any]:
        """The JSON object of ``P/events``: id, state, ts, then this state's fields that are set."""
        out: dict[str, Any] = {"id": self.id, "state": self.state, "ts": self.ts}
        for f in fields(self):
            if f.name in ("id", "ts") or f.name in self.wire_extra:
                continue
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name == "details":
                out.update(value)
            else:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    @property
    def speaker_name(self) -> str | None:
        return getattr(self, "speaker", None)


@dataclass(frozen=True, kw_only=True)
class Queued(Event):
    state: ClassVar[str] = "queued"
    targets: tuple[str, ...]
    priority: str
    warnings: tuple[str, ...] = ()
    speakers: tuple[str, ...] = ()
    resumed: bool | None = None  # queued again from the spool after a restart
    held: dict[str, str] | None = None  # speaker -> why quiet hours hold it ("quiet hours until 07:00")


@dataclass(frozen=True, kw_only=True)
class Started(Event):
    state: ClassVar[str] = "started"
    speaker: str
    latency_ms: int
    replay: bool | None = None  # played again from its start after an interruption
    engine: str | None = None  # set when a fallback engine speaks instead of the one asked for
    fallback: bool | None = None
    warnings: Sequence[str] | None = None


@dataclass(frozen=True, kw_only=True)
class Finished(Event):
    state: ClassVar[str] = "finished"
    speaker: str
    duration_s: float | None = None
    details: dict[str, Any] | None = None  # what the sink reports (a file's path, a topic and size ...)


@dataclass(frozen=True, kw_only=True)
class Interrupted(Event):
    state: ClassVar[str] = "interrupted"
    speaker: str
    reason: str | None = None  # None: an emergency interrupted it (it plays again); "shutdown"


@dataclass(frozen=True, kw_only=True)
class Cancelled(Event):
    state: ClassVar[str] = "cancelled"
    speaker: str
    reason: str  # stopped | queue full | speaker removed


@dataclass(frozen=True, kw_only=True)
class Expired(Event):
    state: ClassVar[str] = "expired"
    speaker: str | None = None


@dataclass(frozen=True, kw_only=True)
class Failed(Event):
    state: ClassVar[str] = "failed"
    speaker: str
    error: str


@dataclass(frozen=True, kw_only=True)
class Rejected(Event):
    """Never became an announcement. ``field``, ``origin`` and ``payload`` are for the front door and the
    history, not the wire."""

    state: ClassVar[str] = "rejected"
    wire_extra: ClassVar[tuple[str, ...]] = ("field", "origin", "payload")
    reason: str  # invalid | oversize | duplicate | rate_limited
    error: str  # "<field>: <message>"
    field: str = ""
    origin: Any = None  # the front door's context (an MQTT response topic to answer on)
    payload: Any = None  # the fields as received, when they were decoded (what the history shows of it)

    @classmethod
    def of(cls, ann_id: str, exc: InputError, origin: Any = None, payload: Any = None) -> Rejected:
        return cls(id=ann_id, reason=exc.reason, error=str(exc), field=exc.field, origin=origin, payload=payload)


_PER_SPEAKER: dict[str, Callable[..., Event]] = {
    "failed": Failed,
    "cancelled": Cancelled,
    "expired": Expired,
    "interrupted": Interrupted,
}


def speaker_event(state: str, ann_id: str, speaker: str, **fields: Any) -> Event:
    """The per-speaker event of ``state`` (finished, failed, cancelled, expired, interrupted); a
    ``finished`` keeps what the sink reported besides ``duration_s`` as its ``details``."""
    if state == "finished":
        duration = fields.pop("duration_s", None)
        return Finished(id=ann_id, speaker=speaker, duration_s=duration, details=fields or None)
    return _PER_SPEAKER[state](id=ann_id, speaker=speaker, **fields)


Listener = Callable[[Event, "Announcement | None"], None]


class EventBus:
    """Fans events out. ``site`` and ``member`` (when given) are stamped on every event, here and only
    here, so the log line, ``P/events`` and every listener carry the same ones."""

    def __init__(self, site: str | None = None, member: str | None = None) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._stamp = {k: v for k, v in (("site", site), ("member", member)) if v is not None}

    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def emit(self, event: Event, ann: Announcement | None = None) -> Event:
        """Stamp ``event`` (site, member), log it (one line) and hand it to every listener; returns it."""
        if self._stamp and any(getattr(event, k) is None for k in self._stamp):
            event = replace(event, **{k: v for k, v in self._stamp.items() if getattr(event, k) is None})
        self._log(event)
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event, ann)
            except Exception:  # a broken listener must not stop the others or the caller
                _LOGGER.exception("event listener failed for %s", event.id)
        return event

    @staticmethod
    def _log(event: Event) -> None:
        wire = event.to_wire()
        extras = " ".join(f"{k}={v}" for k, v in wire.items() if k not in ("id", "state", "ts"))
        level = logging.WARNING if event.state in ("rejected", "failed", "expired") else logging.INFO
        _LOGGER.log(level, "%s %s %s", event.id, event.state, extras)
