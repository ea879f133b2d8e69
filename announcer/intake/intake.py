"""From an incoming MQTT message to a committed, scheduled announcement (or a rejection).

Runs on paho's callback thread, so it only parses, commits to the spool and enqueues:
no synthesis, no playback, nothing slow. It returns normally after the commit (the
MQTT link then acknowledges the message); it raises only when the spool cannot commit,
so the broker keeps the message and redelivers it.

Two kinds of message are acknowledged and dropped without an event: a *retained*
``say``/``stop`` delivered because we subscribed (the broker hands it over again at
every reconnect: it would be played again each time, or cancel the resumed queue), and
a broker *redelivery* (DUP) of an id the spool already holds (we committed it but the
PUBACK was lost; the spooled copy plays). A redelivered message without an ``id``
cannot be recognised and would get a new one: senders that care should set ids.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from ..config import Config
from ..core.announcement import Announcement, new_id
from ..core.errors import InputError
from ..core.events import EventBus
from ..core.schema import ID_RE
from ..integrations.base import Integration
from ..mqtt.link import IncomingMessage
from ..spool.store import Spool
from .parse import build, decode_payload, decode_stop, stop_priority
from .rate_limit import RateLimiter

_LOGGER = logging.getLogger(__name__)


class Scheduling(Protocol):
    def submit(self, ann: Announcement) -> None: ...

    def stop(self, target: str | None, priority_below: str | None = None) -> Any: ...


class Intake:
    def __init__(self, cfg: Config, spool: Spool, scheduler: Scheduling, events: EventBus,
                 reply: Callable[[str, bytes | None, dict[str, Any]], None] | None = None,
                 field_defaults: Callable[[], dict[str, Any]] | None = None) -> None:
        self.cfg = cfg
        # runtime defaults for fields a payload leaves out (e.g. the default emotion set from Home Assistant)
        self._field_defaults = field_defaults
        self.integrations: list[Integration] = []
        self.prefix = cfg.mqtt.topic_prefix.rstrip("/")
        self.spool = spool
        self.scheduler = scheduler
        self.events = events
        self._reply = reply
        self.limiter = RateLimiter(cfg.limits.per_minute)
        self._closed = threading.Event()

    def reconfigure(self, cfg: Config) -> None:
        """A reloaded config: targets, defaults and limits from now on (the topic prefix needs a restart)."""
        self.cfg = cfg
        self.limiter.per_minute = cfg.limits.per_minute

    def close(self) -> None:
        """Stop taking messages: ``handle`` returns False, so the link does not ack and the broker keeps them."""
        self._closed.set()

    def add_integration(self, integration: Integration) -> None:
        """Route messages on topics Intake does not own to ``integration`` (call before ``subscriptions``)."""
        self.integrations.append(integration)

    def subscriptions(self) -> list[str]:
        p = self.prefix
        own = [f"{p}/say", f"{p}/say/+", f"{p}/stop", f"{p}/stop/+"]
        return own + [t for i in self.integrations for t in i.subscriptions() if t not in own]

    # ---- entry point (paho thread) ---------------------------------------------------
    def handle(self, msg: IncomingMessage) -> bool:
        if self._closed.is_set():
            return False
        topic = msg.topic
        p = self.prefix
        is_say = topic == f"{p}/say" or topic.startswith(f"{p}/say/")
        if msg.retain and (is_say or topic == f"{p}/stop" or topic.startswith(f"{p}/stop/")):
            # the broker sends a retained message again on every subscribe, i.e. every reconnect:
            # played (or obeyed) each time, it would repeat forever or cancel the resumed queue
            _LOGGER.warning("ignoring the retained message on %s: publish announcements and stops without "
                            "retain (clear it with: mosquitto_pub -r -n -t '%s')", topic, topic)
            return True
        if is_say:
            target = topic[len(p) + 5:] or None
            self.accept(msg.payload, target, msg)
        elif topic == f"{p}/stop" or topic.startswith(f"{p}/stop/"):
            self._stop(topic[len(p) + 6:] or None, msg)
        elif not any(i.handle(msg) for i in self.integrations):
            _LOGGER.debug("ignoring message on %s", topic)
        return True

    def accept(self, payload: bytes | str, target: str | None, msg: IncomingMessage | None = None,
               source: str = "mqtt", raw: dict[str, Any] | None = None) -> Announcement | None:
        """Validate, commit and schedule. Returns the announcement, or None if it was rejected."""
        received = msg.received if msg is not None else time.time()
        response_topic = msg.response_topic if msg is not None else None
        correlation = msg.correlation_data if msg is not None else None
        fields: dict[str, Any] | None = raw
        try:
            if fields is None:
                fields = decode_payload(payload, self.cfg)
            if self._field_defaults is not None:
                fields = dict(fields)
                for key, value in self._field_defaults().items():
                    if fields.get(key) is None:
                        fields[key] = value
            forced = None
            if target is not None:
                self._check_target(target)
                forced = (target,)
            ann = build(fields, self.cfg, now=received, source=source, forced_targets=forced,
                        message_expiry=msg.message_expiry if msg is not None else None,
                        response_topic=response_topic, correlation_data=correlation)
            if ann.priority != "emergency" and not self.limiter.allow():
                raise InputError("limits.per_minute", f"more than {self.cfg.limits.per_minute} announcements "
                                                      "in a minute; try again shortly (emergency is never limited)",
                                 "rate_limited")
        except InputError as exc:
            self._reject(exc, fields, response_topic, correlation)
            return None
        if not self.spool.add(ann):  # raises if the spool cannot commit: no ack, the broker redelivers
            if msg is not None and msg.duplicate:
                # the broker redelivers what we committed but could not acknowledge (crash, lost
                # connection): the spooled copy plays, and this is not the user's duplicate
                _LOGGER.info("%s: redelivered by the broker, already spooled; acknowledged", ann.id)
                return None
            exc = InputError("id", f"{ann.id!r} was already received in the last 24 h; not played again",
                             "duplicate")
            self._reject(exc, fields, response_topic, correlation)
            return None
        self.scheduler.submit(ann)
        return ann

    # ---- helpers ---------------------------------------------------------------------
    def reject(self, exc: InputError, fields: dict[str, Any] | None, msg: IncomingMessage | None = None) -> None:
        """The ``rejected`` event for a message another front door (Hermes) found invalid."""
        self._reject(exc, fields, msg.response_topic if msg is not None else None,
                     msg.correlation_data if msg is not None else None)

    def _reject(self, exc: InputError, fields: dict[str, Any] | None, response_topic: str | None,
                correlation: bytes | None) -> None:
        ann_id = fields.get("id") if isinstance(fields, dict) else None
        if not isinstance(ann_id, str) or not ID_RE.fullmatch(ann_id):
            ann_id = new_id()
        event = self.events.emit("rejected", ann_id=ann_id, reason=exc.reason, error=str(exc))
        if response_topic and self._reply is not None:
            self._reply(response_topic, correlation, event)

    def _stop(self, target: str | None, msg: IncomingMessage) -> None:
        """``P/stop[/<target>]``: an invalid stop is rejected (event) and stops nothing."""
        fields: dict[str, Any] | None = None
        try:
            fields = decode_stop(msg.payload, self.cfg)
            below = stop_priority(fields)
            if target is not None:
                self._check_target(target)
        except InputError as exc:
            self._reject(exc, fields, msg.response_topic, msg.correlation_data)
            return
        _LOGGER.info("stop requested on %s%s", target or "all speakers",
                     f" below {below}" if below else "")
        self.scheduler.stop(target, below)

    def _check_target(self, target: str) -> None:
        """A target named in the topic must be a speaker or zone."""
        if target not in self.cfg.speakers and target not in self.cfg.zones:
            known = ", ".join(list(self.cfg.speakers) + list(self.cfg.zones))
            raise InputError("targets", f"unknown target {target[:60]!r} in the topic (allowed: {known})")
