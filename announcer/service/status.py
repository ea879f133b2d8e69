"""The daemon's status: ``P/status`` (retained), the integrations' view of it, systemd's ``STATUS=``.

``status()`` is ``{"state": "online", "version", "queue", "speaking"}`` plus ``engines``
(``starting | ready | down`` per engine that runs a server of its own), and for a daemon with a
``site``: ``site``, ``display`` and ``last`` (the most recent accepted announcement's ``id``,
``state``, ``ts`` and the start of its ``text``), what ``announcer fleet`` shows. It is published
whenever it changes (the scheduler reports every change) and after every (re)connect;
the integrations (Home Assistant) see each change. When the daemon turns idle (nothing
waits or plays) the C heap's free memory is given back (``announcer.service.memory``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from .. import __version__
from ..core.announcement import Announcement
from ..core.events import Event
from ..integrations.base import Integration
from ..integrations.pair.member import PairMember
from ..mqtt.link import MqttLink
from ..mqtt.publisher import publish_status
from ..mqtt.topics import Topics
from ..playback.runtime import LiveRuntime
from .memory import IdleTrim
from .sd_notify import notify

_LOGGER = logging.getLogger(__name__)

LAST_TEXT_CHARS = 80  # of the last announcement's text in a site's status


class StatusReporter:
    def __init__(
        self,
        live: LiveRuntime,
        queue_status: Callable[[], dict[str, Any]],
        topics: Topics,
        integrations: Sequence[Integration] = (),
    ) -> None:
        self.live = live
        self._queue_status = queue_status  # the scheduler's {"queue", "speaking"}
        self.topics = topics
        self.integrations = list(integrations)
        self.link: MqttLink | None = None  # set once the link exists
        self.pair: PairMember | None = None  # a pair member: P/status only while it leads, its own always
        self._lock = threading.Lock()
        self.last: dict[str, Any] | None = None
        self._idle_trim = IdleTrim()
        self._last_ann: dict[str, Any] | None = None  # a site's most recent accepted announcement

    def status(self) -> dict[str, Any]:
        st = self._queue_status()
        status = {"state": "online", "version": __version__, "queue": st["queue"], "speaking": st["speaking"]}
        engines = {name: eng.state for name, eng in self.live.current.synth.engines.items() if eng.supervised}
        if engines:  # engines served by a process or server of their own: starting | ready | down
            status["engines"] = engines
        if self.pair is not None:
            status.update(self.pair.status_fields())
        site = self.live.config.site
        if site is not None:
            status.update(site=site.name, display=site.display or site.name)
            if self._last_ann is not None:
                status["last"] = dict(self._last_ann)
        return status

    def on_event(self, event: Event, ann: Announcement | None) -> None:
        """An event-bus listener: a site's status follows its most recent accepted announcement.

        Kept for the next publish, which the scheduler's own change right after each of these
        events brings (queued: the queue grows; finished, expired ...: it shrinks or a speaker idles).
        """
        if ann is None or self.live.config.site is None:
            return
        with self._lock:
            if event.state != "queued" and (self._last_ann is None or self._last_ann["id"] != ann.id):
                return  # news of an older announcement
            self._last_ann = {"id": ann.id, "state": event.state, "ts": event.ts, "text": ann.text[:LAST_TEXT_CHARS]}

    def scheduler_changed(self, status: dict[str, Any] | None = None) -> None:
        """The scheduler's callback: publish, and trim the heap once idle."""
        self.publish()
        if status is not None:  # malloc keeps what a busy spell freed: give it back once idle
            self._idle_trim.update(status.get("queue") == 0 and not status.get("speaking"))

    def publish(self, force: bool = False) -> None:
        link = self.link
        if link is None:
            return
        status = self.status()
        with self._lock:
            if status == self.last and not force:
                return
            self.last = status
        self._send(link, status)
        for integration in self.integrations:
            try:
                integration.on_status(status)
            except Exception:
                _LOGGER.exception("%s: status hook failed", integration.name)
        notify(
            f"STATUS=queue {status['queue']}, speaking {','.join(status['speaking']) or 'none'}, "
            f"broker {'connected' if link.connected else 'disconnected'}"
        )

    def _send(self, link: MqttLink, status: dict[str, Any]) -> None:
        """``P/status``, except from a pair member that does not lead; a member's own status too."""
        if self.pair is None or self.pair.publishing:
            publish_status(link, self.topics, status)
        if self.pair is not None:
            self.pair.publish_member_status(status)

    def connection_changed(self, connected: bool) -> None:
        if connected:
            for integration in self.integrations:  # discovery configs and states before the status
                try:
                    integration.on_connect()
                except Exception:
                    _LOGGER.exception("%s: connect hook failed", integration.name)
            self.publish(force=True)
        else:
            notify("STATUS=broker disconnected; reconnecting")

    def publish_offline(self, queue: int) -> None:
        """The last ``P/status`` before a clean stop: offline, with what stays in the spool."""
        if self.link is None:
            return
        offline = dict(self.last or {}, state="offline", queue=queue, speaking=[])
        try:
            self._send(self.link, offline)
        except Exception:  # not connected: the last will says offline anyway
            _LOGGER.debug("cannot publish the offline status", exc_info=True)
