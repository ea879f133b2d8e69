"""From an incoming MQTT message to the intake (or to the integration that owns its topic).

A site's fleet topics (``F/say``, ``F/say/<site>[/<target>]``, ``F/stop[/<site>]``) are routed
exactly like ``P/say[/<target>]`` and ``P/stop``.

Runs on paho's network thread, one message at a time (the delivery contract is in
``announcer.mqtt.link``): it only decodes, and the intake only validates, commits and
enqueues. Returning True acknowledges the message; False (the intake is closed: the
daemon is stopping) leaves it with the broker, which redelivers it next time.

Two kinds of message are acknowledged and dropped without an event: a *retained*
``say``/``stop`` delivered because we subscribed (the broker hands it over again at
every reconnect: it would be played again each time, or cancel the resumed queue), and
a broker *redelivery* of an id the spool already holds (see ``announcer.intake``). A
redelivered message without an ``id`` cannot be recognised and would get a new one:
senders that care should set ids.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from ..core.errors import InputError
from ..intake.intake import Intake, Origin
from ..intake.wire import decode_payload, decode_stop
from .paho_adapter import IncomingMessage
from .topics import SAY, FleetTopics, Topics

_LOGGER = logging.getLogger(__name__)


class TopicHandler(Protocol):
    """What an integration offers the router: its topic filters and a handler for their messages."""

    name: str

    def subscriptions(self) -> list[str]: ...

    def handle(self, msg: IncomingMessage) -> bool: ...


def origin_of(msg: IncomingMessage, source: str = "mqtt") -> Origin:
    """Where ``msg`` came from: its topic, and the ``client`` its publisher named (MQTT 5), for the history."""
    via = (("topic", msg.topic),) + ((("client", msg.client),) if msg.client else ())
    return Origin(
        source=source,
        via=via,
        received=msg.received,
        message_expiry=msg.message_expiry,
        response_topic=msg.response_topic,
        correlation_data=msg.correlation_data,
        redelivered=msg.duplicate,
    )


class MqttRouter:
    """``handle`` is the link's message handler; ``subscriptions`` its topic filters."""

    def __init__(
        self,
        intake: Intake,
        topics: Topics,
        handlers: Sequence[TopicHandler] = (),
        fleet: FleetTopics | None = None,
    ) -> None:
        self.intake = intake
        self.topics = topics
        self.handlers = list(handlers)
        self.fleet = fleet  # a site's fleet topics (F/say..., F/stop...): routed like P/say, P/stop

    def subscriptions(self) -> list[str]:
        own = self.topics.subscriptions() + (self.fleet.subscriptions() if self.fleet is not None else [])
        return own + [t for h in self.handlers for t in h.subscriptions() if t not in own]

    def handle(self, msg: IncomingMessage) -> bool:
        if self.intake.closed:
            return False
        route = self.topics.route(msg.topic)
        if route is None and self.fleet is not None:
            route = self.fleet.route(msg.topic)
        if route is None:
            if not any(h.handle(msg) for h in self.handlers):
                _LOGGER.debug("ignoring message on %s", msg.topic)
            return True
        if msg.retain:
            # the broker sends a retained message again on every subscribe, i.e. every reconnect:
            # played (or obeyed) each time, it would repeat forever or cancel the resumed queue
            _LOGGER.warning(
                "ignoring the retained message on %s: publish announcements and stops without "
                "retain (clear it with: mosquitto_pub -r -n -t '%s')",
                msg.topic,
                msg.topic,
            )
            return True
        origin = origin_of(msg)
        decode = decode_payload if route.kind == SAY else decode_stop
        try:
            fields = decode(msg.payload, self.intake.cfg)
        except InputError as exc:
            self.intake.reject(exc, None, origin)
            return True
        if route.kind == SAY:
            self.intake.accept(fields, origin, route.target)
        else:
            self.intake.stop(fields, route.target, origin)
        return True
