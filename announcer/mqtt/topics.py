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
``P/pair/leader``          both   a pair's lease: retained ``{"member", "epoch", "ts"}``
``P/pair/<m>/availability`` out   a pair member's ``online`` / ``offline`` (its last will)
``P/pair/<m>/status``      out    a pair member's own status (retained)
``P/pair/<m>/sync``        both   a member's marker: back from the broker, the retained state is in
``F/say[/<site>[/<t>]]``   in     a fleet's announcement: every site, one site (when ``site`` is set)
``F/stop[/<site>]``        in     a fleet's stop: every site, one site
``F/sites/<site>/...``     (in)   a site's ``P/...`` as the centre sees it (``announcer fleet``)
=========================  =====  ==============================================================

``F`` is ``fleet.prefix`` (default ``announcer-fleet``). At the centre a site's own topics are
``F/sites/<site>/<the same suffix>``: its daemons use that prefix, or its bridge remaps
``P`` to it (docs/fleet.md). Speakers of type ``mqtt`` publish to the topic their config names
(not listed here).
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

    # ---- an active/standby pair (both ways) ----
    @property
    def pair_all(self) -> str:
        return self._t("pair", "#")

    @property
    def pair_leader(self) -> str:
        return self._t("pair", "leader")

    def member_availability(self, member: str) -> str:
        return self._t("pair", member, "availability")

    def member_status(self, member: str) -> str:
        return self._t("pair", member, "status")

    def member_sync(self, member: str) -> str:
        return self._t("pair", member, "sync")

    def pair_member_of(self, topic: str) -> tuple[str, str] | None:
        """``(member, what)`` of ``P/pair/<member>/<what>``; else None."""
        base = self._t("pair") + "/"
        if not topic.startswith(base):
            return None
        member, _, what = topic[len(base) :].partition("/")
        return (member, what) if member and what and "/" not in what else None

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


@dataclass(frozen=True)
class FleetTopics:
    """The topics a fleet shares, under ``fleet.prefix``; ``site`` is this daemon's (None: a tool at the centre)."""

    prefix: str
    site: str | None = None

    @classmethod
    def under(cls, fleet_prefix: str, site: str | None = None) -> FleetTopics:
        return cls(fleet_prefix.rstrip("/"), site)

    def _t(self, *parts: str) -> str:
        return "/".join((self.prefix, *parts))

    # ---- to the sites ----
    def say(self, site: str | None = None, target: str | None = None) -> str:
        """``F/say`` (every site), ``F/say/<site>``, ``F/say/<site>/<target>``."""
        return self._t(SAY, *[p for p in (site, target) if p])

    def stop(self, site: str | None = None) -> str:
        return self._t(STOP, *[p for p in (site,) if p])

    # ---- from the sites, as the centre sees them ----
    def site_topic(self, site: str, *parts: str) -> str:
        """``F/sites/<site>/<parts>``: a site's ``P/<parts>`` at the centre."""
        return self._t("sites", site, *parts)

    def every_site(self, *parts: str) -> str:
        """``F/sites/+/<parts>``."""
        return self._t("sites", "+", *parts)

    def site_of(self, topic: str) -> tuple[str, str] | None:
        """``(site, rest)`` of ``F/sites/<site>/<rest>``; else None."""
        base = self._t("sites") + "/"
        if not topic.startswith(base):
            return None
        site, _, rest = topic[len(base) :].partition("/")
        return (site, rest) if site and rest else None

    # ---- a site's daemon ----
    def subscriptions(self) -> list[str]:
        """``F/say``, ``F/say/<site>``, ``F/say/<site>/+``, ``F/stop``, ``F/stop/<site>`` (none without a site)."""
        if self.site is None:
            return []
        return [self.say(), self.say(self.site), self.say(self.site, "+"), self.stop(), self.stop(self.site)]

    def route(self, topic: str) -> Route | None:
        """A fleet topic for this site as a ``Route`` (the target its last level names, if any); else None."""
        if self.site is None:
            return None
        if topic in (self.say(), self.say(self.site)):
            return Route(SAY, None)
        if topic in (self.stop(), self.stop(self.site)):
            return Route(STOP, None)
        base = self.say(self.site) + "/"
        if topic.startswith(base) and "/" not in topic[len(base) :]:
            return Route(SAY, topic[len(base) :] or None)
        return None


def discovery_config(discovery_prefix: str, component: str, node_id: str, object_id: str) -> str:
    """Home Assistant's discovery topic of one entity."""
    return f"{discovery_prefix.rstrip('/')}/{component}/{node_id}/{object_id}/config"


def discovery_status(discovery_prefix: str) -> str:
    """Home Assistant's birth/will topic (``online`` when it starts)."""
    return f"{discovery_prefix.rstrip('/')}/status"
