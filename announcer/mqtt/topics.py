"""Every MQTT topic the daemon reads or writes, in one table (prefix ``P``, default ``announcer``).

=========================  =====  ==============================================================
topic                      dir    what
=========================  =====  ==============================================================
``P/say``                  in     an announcement for the default targets
``P/say/<target>``         in     an announcement for one speaker or zone
``P/stop[/<target>]``      in     stop and cancel (empty, ``{}`` or ``{"priority_below"}``)
``P/set/emotion``          in     Home Assistant: the default emotion
``P/set/volume``           in     Home Assistant: the master volume in percent
``P/set/schedule/<name>``  in     Home Assistant: ``ON`` runs a schedule, ``OFF`` pauses it
``hermes/tts/say``         in     Rhasspy Hermes (when ``hermes.enabled``)
``<discovery>/status``     in     Home Assistant's birth message (``online``)
``P/events``               out    one JSON event per state change (QoS 1)
``P/status``               out    retained ``{"state", "version", "queue", "speaking", ...}``
``P/availability``         out    retained ``online`` / ``offline`` (last will)
``P/state/emotion|volume`` out    retained: Home Assistant's settings
``P/state/last``           out    retained: the most recent announcement
``P/state/schedules``      out    retained: the next firing, and each schedule's next and pause
``P/state/schedule/<name>`` out   retained: ``ON`` (running) / ``OFF`` (paused)
``P/reply/<token>``        out    ``announcer send``'s MQTT 5 response topic
``hermes/tts/sayFinished`` out    Rhasspy Hermes
``<discovery>/<component>/<node>/<object>/config``  out  Home Assistant discovery (retained)
=========================  =====  ==============================================================

Speakers of type ``mqtt`` publish to the topic their config names (not listed here).
"""

from __future__ import annotations

from dataclasses import dataclass

HERMES_SAY = "hermes/tts/say"
HERMES_SAY_FINISHED = "hermes/tts/sayFinished"

SAY = "say"
STOP = "stop"


@dataclass(frozen=True)
class Route:
    """An incoming topic of the daemon's own: ``say`` or ``stop``, and the target the topic names."""

    kind: str  # SAY | STOP
    target: str | None


@dataclass(frozen=True)
class Topics:
    prefix: str

    @classmethod
    def under(cls, topic_prefix: str) -> Topics:
        return cls(topic_prefix.rstrip("/"))

    def _t(self, *parts: str) -> str:
        return "/".join((self.prefix, *parts))

    # ---- in ----
    @property
    def say(self) -> str:
        return self._t(SAY)

    def say_to(self, target: str) -> str:
        return self._t(SAY, target)

    @property
    def stop(self) -> str:
        return self._t(STOP)

    def stop_at(self, target: str) -> str:
        return self._t(STOP, target)

    @property
    def set_emotion(self) -> str:
        return self._t("set", "emotion")

    @property
    def set_volume(self) -> str:
        return self._t("set", "volume")

    def set_schedule(self, name: str) -> str:
        return self._t("set", "schedule", name)

    def schedule_set(self, topic: str) -> str | None:
        """The schedule a ``P/set/schedule/<name>`` topic names (None: not such a topic)."""
        base = self._t("set", "schedule") + "/"
        return topic[len(base) :] or None if topic.startswith(base) else None

    # ---- out ----
    @property
    def events(self) -> str:
        return self._t("events")

    @property
    def status(self) -> str:
        return self._t("status")

    @property
    def availability(self) -> str:
        return self._t("availability")

    @property
    def state_emotion(self) -> str:
        return self._t("state", "emotion")

    @property
    def state_volume(self) -> str:
        return self._t("state", "volume")

    @property
    def state_last(self) -> str:
        return self._t("state", "last")

    @property
    def state_schedules(self) -> str:
        return self._t("state", "schedules")

    def state_schedule(self, name: str) -> str:
        return self._t("state", "schedule", name)

    def reply(self, token: str) -> str:
        return self._t("reply", token)

    # ---- routing ----
    def subscriptions(self) -> list[str]:
        """The daemon's own filters: ``P/say``, ``P/say/+``, ``P/stop``, ``P/stop/+``."""
        return [self.say, self.say_to("+"), self.stop, self.stop_at("+")]

    def route(self, topic: str) -> Route | None:
        """``P/say[/<target>]`` or ``P/stop[/<target>]`` (an empty last level is no target); else None."""
        for kind in (SAY, STOP):
            base = self._t(kind)
            if topic == base:
                return Route(kind, None)
            if topic.startswith(base + "/"):
                return Route(kind, topic[len(base) + 1 :] or None)
        return None


def discovery_config(discovery_prefix: str, component: str, node_id: str, object_id: str) -> str:
    """Home Assistant's discovery topic of one entity."""
    return f"{discovery_prefix.rstrip('/')}/{component}/{node_id}/{object_id}/config"


def discovery_status(discovery_prefix: str) -> str:
    """Home Assistant's birth/will topic (``online`` when it starts)."""
    return f"{discovery_prefix.rstrip('/')}/status"
