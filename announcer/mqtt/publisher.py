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
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from ..core.announcement import Announcement
from ..core.events import Event, Rejected
from ..core.ratelog import RateLimitedLog
from .link import MqttLink
from .paho_adapter import publish_properties
from .topics import Topics

_LOGGER = logging.getLogger(__name__)


class Deliveries:
    """The terminal events published and not yet acknowledged by the broker (QoS 1 PUBACK).

    An active/standby pair's leader starts nothing new while one is outstanding: once the
    broker has a ``finished``, the standby learns it even if the leader dies the next moment,
    so a takeover replays at most what was playing. ``acked`` is called on paho's network
    thread (``MqttLink.on_published``) and may come before ``sent`` registered the mid.
    """

    EARLY = 1000  # acknowledgements kept for mids not (yet) registered

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: set[int] = set()
        self._early: OrderedDict[int, None] = OrderedDict()

    def sent(self, mid: int) -> None:
        with self._lock:
            if mid in self._early:  # acknowledged already
                del self._early[mid]
                return
            self._pending.add(mid)

    def acked(self, mid: int) -> bool:
        """Record a PUBACK; True when it was the last outstanding one."""
        with self._lock:
            if mid in self._pending:
                self._pending.discard(mid)
                return not self._pending
            self._early[mid] = None
            while len(self._early) > self.EARLY:
                self._early.popitem(last=False)
            return False

    def all_acked(self) -> bool:
        return not self._pending


class EventPublisher:
    """An event-bus listener: ``P/events`` for every event; the terminal one also to the response
    topic of the request (an accepted announcement's, or the rejected message's)."""

    def __init__(
        self,
        link: MqttLink,
        topics: Topics,
        reply_prefixes: Sequence[str] | None = None,
        publishing: Callable[[], bool] | None = None,
        deliveries: Deliveries | None = None,
    ) -> None:
        self.link = link
        self.topics = topics
        self.reply_prefixes = tuple(reply_prefixes) if reply_prefixes is not None else (topics.reply(""),)
        self._refused = RateLimitedLog(_LOGGER)
        self.publishing = publishing  # an active/standby pair: only the member that leads publishes
        self.deliveries = deliveries  # a pair: the terminal events not yet acknowledged

    def reply_allowed(self, topic: str) -> bool:
        """Under an allowed prefix, and no wildcard or empty level games (MQTT forbids wildcards in a
        topic name; a broker would refuse it anyway)."""
        if not topic or "+" in topic or "#" in topic or "\x00" in topic:
            return False
        return any(topic.startswith(prefix) and len(topic) > len(prefix) for prefix in self.reply_prefixes)

    def __call__(self, event: Event, ann: Announcement | None) -> None:
        if self.publishing is not None and not self.publishing():
            return
        wire = event.to_wire()
        info = self.link.publish_json(self.topics.events, wire, qos=1)
        if self.deliveries is not None and event.terminal:
            self.deliveries.sent(info.mid)
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
