"""Home Assistant at run time: publish discovery configs and states, take HA's commands.

* On every (re)connect and whenever ``<discovery_prefix>/status`` says ``online`` (HA's
  birth message): first an empty retained config for every entity published last time
  that is gone (a zone removed from the config), then every config (retained), then the
  states: ``P/state/emotion``, ``P/state/volume``, ``P/state/last`` (retained) and
  ``P/status`` again.
* ``P/set/emotion`` (an emotion or alias) and ``P/set/volume`` (percent) change the
  runtime settings, which persist (``announcer.spool.settings``) and apply to the next
  announcement; the new state is published retained at once. A *retained* command (the
  broker hands it over again at every reconnect) is ignored with a warning, like a retained
  ``say``: the kept settings win, and their states are republished on every connect.
* ``P/state/last`` follows the most recent accepted announcement: its text, its newest
  event's state (and speaker), emotion, priority, targets.
* Schedules (when there are any): ``P/state/schedules`` (the next firing of a running
  schedule, each schedule's next firing and whether it is paused) and
  ``P/state/schedule/<name>`` (``ON``/``OFF``), retained, published whenever the runner
  says what is next changed. ``P/set/schedule/<name>`` ``OFF`` pauses a schedule, ``ON``
  runs it again: persisted in ``settings.json``, applied by the runner at once.

The payloads themselves come from the pure functions in ``announcer.integrations.homeassistant.discovery``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from importlib import metadata
from typing import TYPE_CHECKING, Any, cast

from ...config import Config
from ...core.announcement import Announcement
from ...core.events import Event
from ...mqtt.paho_adapter import IncomingMessage, json_bytes
from ...mqtt.topics import discovery_status
from ...schedule.runner import ScheduleRunner
from ...spool.settings import RuntimeSettings
from ..base import Integration
from . import discovery as ha

if TYPE_CHECKING:
    from email.message import Message

_LOGGER = logging.getLogger(__name__)

Publish = Callable[[str, bytes, int, bool], Any]


def project_url() -> str | None:
    """The package's home page, if its metadata names one (for the discovery origin block)."""
    try:
        # an email Message (typeshed's PackageMetadata only has .get from Python 3.12)
        meta = cast("Message", metadata.metadata("announcer"))
    except metadata.PackageNotFoundError:
        return None
    url = meta.get("Home-page")
    if url:
        return str(url)
    for entry in meta.get_all("Project-URL") or []:
        _label, _, value = str(entry).partition(",")
        if value.strip().startswith("http"):
            return value.strip()
    return None


class HomeAssistantBridge(Integration):
    name = "homeassistant"

    def __init__(
        self,
        cfg: Config,
        settings: RuntimeSettings,
        publish: Publish,
        version: str,
        refresh_status: Callable[[], None] | None = None,
        schedules: ScheduleRunner | None = None,
    ) -> None:
        self.cfg = cfg
        self.schedules = schedules
        if schedules is not None:
            schedules.subscribe(self.publish_schedules)
        self.settings = settings
        self._publish = publish
        self.version = version
        self._refresh_status = refresh_status
        self.topics = ha.topics_of(cfg)
        self.birth_topic = discovery_status(cfg.homeassistant.discovery_prefix)
        self._url = project_url()
        self._lock = threading.Lock()
        self._last: dict[str, Any] | None = None

    # ---- Integration -------------------------------------------------------------------
    def subscriptions(self) -> list[str]:
        return [self.birth_topic, self.topics.set_emotion, self.topics.set_volume, self.topics.set_schedule("+")]

    def handle(self, msg: IncomingMessage) -> bool:
        topic = msg.topic
        if topic == self.birth_topic:
            # a retained birth message arrives with our own subscription, right after on_connect published
            if msg.payload.strip().lower() == b"online" and not msg.retain:
                _LOGGER.info("homeassistant: %s is online; publishing discovery again", self.birth_topic)
                self.publish_all(refresh_status=True)
            return True
        if topic in (self.topics.set_emotion, self.topics.set_volume) and msg.retain:
            # a retained command comes back at every (re)connect and would undo what was set since
            # (a retained volume 0 silenced every restart): the kept settings win
            _LOGGER.warning(
                "homeassistant: ignoring the retained command on %s (the kept setting stays: %s); publish "
                "commands without retain (clear it with: mosquitto_pub -r -n -t '%s')",
                topic,
                self.emotion() if topic == self.topics.set_emotion else f"{ha.volume_percent(self.settings.volume)}%",
                topic,
            )
            return True
        if topic == self.topics.set_emotion:
            self._set_emotion(msg.payload)
            return True
        if topic == self.topics.set_volume:
            self._set_volume(msg.payload)
            return True
        name = self.topics.schedule_set(topic)
        if name is not None:
            self._set_schedule(name, msg.payload)
            return True
        return False

    def on_connect(self) -> None:
        self.publish_all()  # the daemon publishes P/status right after

    def on_event(self, event: Event, ann: Announcement | None) -> None:
        if ann is None:  # a rejection: no announcement became "the last one"
            return
        with self._lock:
            if event.state != "queued" and (self._last is None or self._last.get("id") != ann.id):
                return  # news of an older announcement
            self._last = ha.last_state(event, ann)
            last = self._last
        self._send(self.topics.state_last, json_bytes(last), retain=True)

    def reconfigure(self, config: Config) -> None:
        """Zones may have come or gone: publish the discovery configs (and removals) again."""
        self.cfg = config
        self.publish_all()

    # ---- publishing ----------------------------------------------------------------------
    def publish_all(self, refresh_status: bool = False) -> None:
        """Removals, then every config, then every state (``P/status`` too when ``refresh_status``)."""
        entities = ha.entities(self.cfg, self.version, self._url)
        current = [e.topic for e in entities]
        for topic in ha.removed_topics(self.settings.ha_config_topics, current):
            _LOGGER.info("homeassistant: removing the entity of %s (no longer configured)", topic)
            self._send(topic, b"", retain=True)
        for e in entities:
            self._send(e.topic, json_bytes(e.payload), retain=True)
        try:
            self.settings.set_ha_config_topics(current)
        except OSError as exc:
            _LOGGER.warning("homeassistant: cannot record the published entities in %s: %s", self.settings.path, exc)
        self.publish_states(refresh_status)

    def publish_states(self, refresh_status: bool = False) -> None:
        self._send(self.topics.state_emotion, self.emotion().encode(), retain=True)
        self._send(self.topics.state_volume, str(ha.volume_percent(self.settings.volume)).encode(), retain=True)
        with self._lock:
            last = self._last
        if last is not None:
            self._send(self.topics.state_last, json_bytes(last), retain=True)
        self.publish_schedules()
        if refresh_status and self._refresh_status is not None:
            self._refresh_status()

    def publish_schedules(self) -> None:
        """``P/state/schedules`` and every ``P/state/schedule/<name>`` (the runner calls this on changes)."""
        if self.schedules is None or not self.cfg.schedules:
            return
        upcoming = self.schedules.upcoming()
        self._send(self.topics.state_schedules, json_bytes(ha.schedules_state(upcoming)), retain=True)
        for u in upcoming:
            self._send(self.topics.state_schedule(u.schedule), b"OFF" if u.paused else b"ON", retain=True)

    def emotion(self) -> str:
        return self.settings.emotion or self.cfg.defaults.emotion

    def _send(self, topic: str, payload: bytes, retain: bool) -> None:
        try:
            self._publish(topic, payload, 1, retain)
        except Exception as exc:  # not connected: everything is published again on the next connect
            _LOGGER.debug("homeassistant: cannot publish %s now: %s", topic, exc)

    # ---- commands ----------------------------------------------------------------------
    def _set_emotion(self, payload: bytes) -> None:
        text = payload.decode("utf-8", "replace").strip()
        try:
            emotion = self.settings.set_emotion(text)
        except ValueError as exc:
            _LOGGER.warning("homeassistant: %s: %s; ignored", self.topics.set_emotion, exc)
        except OSError as exc:
            _LOGGER.error("homeassistant: cannot save the default emotion to %s: %s", self.settings.path, exc)
        else:
            _LOGGER.info("default emotion is now %s", emotion)
        self._send(self.topics.state_emotion, self.emotion().encode(), retain=True)

    def _set_schedule(self, name: str, payload: bytes) -> None:
        topic = self.topics.set_schedule(name)
        if name not in self.cfg.schedules or self.schedules is None:
            _LOGGER.warning("homeassistant: %s: no schedule %r (have: %s); ignored", topic, name[:60],
                            ", ".join(self.cfg.schedules) or "none")  # fmt: skip
            return
        try:
            running = ha.parse_switch_command(payload)
            self.settings.set_schedule_paused(name, not running)
        except ValueError as exc:
            _LOGGER.warning("homeassistant: %s: %s; ignored", topic, exc)
        except OSError as exc:
            _LOGGER.error("homeassistant: cannot save the schedule's state to %s: %s", self.settings.path, exc)
        else:
            _LOGGER.info("schedule %s is %s", name, "running" if running else "paused")
        self.schedules.changed()  # the runner reads the pause at once; listeners (this bridge) republish

    def _set_volume(self, payload: bytes) -> None:
        try:
            volume = self.settings.set_volume(ha.parse_volume_command(payload))
        except ValueError as exc:
            _LOGGER.warning("homeassistant: %s: %s; ignored", self.topics.set_volume, exc)
        except OSError as exc:
            _LOGGER.error("homeassistant: cannot save the master volume to %s: %s", self.settings.path, exc)
        else:
            _LOGGER.info("master volume is now %s%%", ha.volume_percent(volume))
        self._send(self.topics.state_volume, str(ha.volume_percent(self.settings.volume)).encode(), retain=True)
