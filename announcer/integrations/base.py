"""The hook through which optional MQTT integrations (Home Assistant, Hermes) plug into the daemon.

The daemon builds the enabled integrations and hands them to ``Intake``, which
subscribes their topics on every connect and routes each message on a topic it does not
own to them in turn (the first whose ``handle`` returns True took it). The daemon calls
``on_connect`` after every (re)connect, subscribes ``on_event`` to the event bus,
passes every ``P/status`` change to ``on_status`` and a reloaded config to ``reconfigure``.

All hooks run on the MQTT thread (``handle``, ``on_connect``) or the thread that
emitted the event (``on_event``, ``on_status``): they must be quick and must publish
without waiting for the broker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Config
    from ..core.announcement import Announcement
    from ..core.events import Event
    from ..mqtt.paho_adapter import IncomingMessage


class Integration:
    """Base class with no-op hooks; subclasses override what they need."""

    name = "integration"

    def subscriptions(self) -> list[str]:
        return []

    def handle(self, msg: IncomingMessage) -> bool:
        """True if this integration took the message (it is then acknowledged)."""
        return False

    def on_connect(self) -> None:
        """Connected (again) to the broker: publish what the other side must know."""

    def on_event(self, event: Event, ann: Announcement | None) -> None:
        """Every announcement event (after it went out on ``P/events``)."""

    def on_status(self, status: dict[str, Any]) -> None:
        """Every change of ``P/status``."""

    def reconfigure(self, config: Config) -> None:
        """A reload applied ``config`` (the sections that need a restart keep their running values)."""
