"""What the daemon publishes about itself: every event on ``P/events`` (and the terminal one on
an MQTT 5 response topic), and ``P/status``.

A response topic is the sender's choice, and the daemon may publish where senders may not
(``P/status``, ``P/availability``, discovery configs): so a reply goes only to a topic under
one of ``mqtt.reply_prefixes`` (default ``P/reply/``). Any other is refused with a warning
(one a minute, with a count) and the event goes to ``P/events`` only.

Listeners of the event bus run on the thread that emitted the event; publishing never
waits for the broker (paho queues QoS 1 messages while disconnected).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..core.announcement import Announcement
from ..core.events import Event, Rejected
from ..core.ratelog import RateLimitedLog
from .link import MqttLink
from .paho_adapter import publish_properties
from .topics import Topics

_LOGGER = logging.getLogger(__name__)


class EventPublisher:
    """An event-bus listener: ``P/events`` for every event; the terminal one also to the response
    topic of the request (an accepted announcement's, or the rejected message's)."""

    def __init__(self, link: MqttLink, topics: Topics, reply_prefixes: Sequence[str] | None = None) -> None:
        self.link = link
        self.topics = topics
        self.reply_prefixes = tuple(reply_prefixes) if reply_prefixes is not None else (topics.reply(""),)
        self._refused = RateLimitedLog(_LOGGER)

    def reply_allowed(self, topic: str) -> bool:
        """Under an allowed prefix, and no wildcard or empty level games (MQTT forbids wildcards in a
        topic name; a broker would refuse it anyway)."""
        if not topic or "+" in topic or "#" in topic or "\x00" in topic:
            return False
        return any(topic.startswith(prefix) and len(topic) > len(prefix) for prefix in self.reply_prefixes)

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
        if not self.reply_allowed(topic):
            self._refused.warning(
                "reply",
                "not replying to %s for %s: response topics must be under %s (mqtt.reply_prefixes); "
                "the event went to %s only",
                topic[:200],
                wire.get("id"),
                ", ".join(self.reply_prefixes),
                self.topics.events,
            )
            return
        props = publish_properties(correlation_data=correlation) if correlation is not None else None
        self.link.publish_json(topic, wire, qos=1, properties=props)


def publish_status(link: MqttLink, topics: Topics, status: dict[str, Any]) -> None:
    """``P/status``, retained."""
    link.publish_json(topics.status, status, qos=1, retain=True)
