"""What the daemon publishes about itself: every event on ``P/events`` (and the terminal one on
an MQTT 5 response topic), and ``P/status``.

Listeners of the event bus run on the thread that emitted the event; publishing never
waits for the broker (paho queues QoS 1 messages while disconnected).
"""

from __future__ import annotations

import logging
from typing import Any

from ..core.announcement import Announcement
from ..core.events import Event, Rejected
from .link import MqttLink
from .paho_adapter import publish_properties
from .topics import Topics

_LOGGER = logging.getLogger(__name__)


class EventPublisher:
    """An event-bus listener: ``P/events`` for every event; the terminal one also to the response
    topic of the request (an accepted announcement's, or the rejected message's)."""

    def __init__(self, link: MqttLink, topics: Topics) -> None:
        self.link = link
        self.topics = topics

    def __call__(self, event: Event, ann: Announcement | None) -> None:
        wire = event.to_wire()
        self.link.publish_json(self.topics.events, wire, qos=1)
        if not event.terminal:
            return
        if ann is not None and ann.response_topic:
            self.reply(ann.response_topic, ann.correlation_data, wire)
        elif isinstance(event, Rejected) and event.origin is not None and event.origin.response_topic:
            self.reply(event.origin.response_topic, event.origin.correlation_data, wire)

    def reply(self, topic: str, correlation: bytes | None, wire: dict[str, Any]) -> None:
        props = publish_properties(correlation_data=correlation) if correlation is not None else None
        self.link.publish_json(topic, wire, qos=1, properties=props)


def publish_status(link: MqttLink, topics: Topics, status: dict[str, Any]) -> None:
    """``P/status``, retained."""
    link.publish_json(topics.status, status, qos=1, retain=True)
