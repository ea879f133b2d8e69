"""Home Assistant MQTT discovery payloads, built by pure functions (no client, no state).

Each entity is one retained config message on
``<discovery_prefix>/<component>/<node_id>/<object_id>/config``; every one carries the
same device block (one device per daemon), an origin block (``o``), a ``unique_id``
and the availability topic ``P/availability``. ``ha_bridge.HomeAssistantBridge``
publishes them and handles the commands; this module only says what they are.

Topic ids are ASCII (``[a-zA-Z0-9_-]``, as Home Assistant's discovery requires); zone
display names (any language, e.g. Chinese) become entity *names*, never ids.

A daemon with a ``site`` is the device of that site: named by the site's display name, node id
the site's name unless ``homeassistant.node_id`` is set, and its "say", zone and stop commands go
to the fleet's topics for that site (``F/say/<site>[/<zone>]``, ``F/stop/<site>``), which reach
it from its own broker and, through the bridge, from the central one. The two members of a pair
publish the same device: available while either member is (``availability_mode: any``), with
a "Leader" sensor naming the member that plays.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ...config import Config
from ...core.emotions import EMOTIONS
from ...core.events import Event
from ...mqtt.topics import FleetTopics, Topics, discovery_config
from ...schedule.runner import Upcoming

ID_OK = re.compile(r"^[a-zA-Z0-9_-]+$")

VOLUME_STEP = 5  # percent


@dataclass(frozen=True)
class Entity:
    """One discovery message: where it goes and what it says."""

    component: str
    object_id: str
    topic: str
    payload: dict[str, Any]


def ascii_id(name: str) -> str:
    """A name as a discovery id: ``[a-zA-Z0-9_-]`` only (anything else becomes ``_``)."""
    out = re.sub(r"[^a-zA-Z0-9_-]", "_", name)
    return out or "_"


def entity_slug(name: str) -> str:
    """For ``default_entity_id``: lower case ``[a-z0-9_]``."""
    return re.sub(r"[^a-z0-9_]", "_", name.lower())


def topics_of(cfg: Config) -> Topics:
    return Topics.under(cfg.mqtt.topic_prefix)


def node_of(cfg: Config) -> str:
    """``homeassistant.node_id``; with a site and no node id of its own, the site's name."""
    ha = cfg.homeassistant
    if cfg.site is not None and "node_id" not in ha.model_fields_set:
        return cfg.site.name
    return ha.node_id


def device_block(cfg: Config, version: str) -> dict[str, Any]:
    node = node_of(cfg)
    if cfg.site is not None:
        name = cfg.site.display or cfg.site.name
    else:
        name = "Announcer" if node == "announcer" else f"Announcer {node}"
    return {
        "identifiers": [f"announcer_{node}"],
        "name": name,
        "manufacturer": "announcer",
        "model": "Voice announcement daemon",
        "sw_version": version,
    }


def origin_block(version: str, url: str | None = None) -> dict[str, Any]:
    """``o``: who published the config (``url`` only when the package metadata names one)."""
    out: dict[str, Any] = {"name": "announcer", "sw": version}
    if url:
        out["url"] = url
    return out


def availability(cfg: Config) -> list[dict[str, str]]:
    """``P/availability``; a pair's two member topics (either online: available)."""
    t = topics_of(cfg)
    topics = [t.availability]
    if cfg.pair is not None:
        topics = [t.member_availability(m) for m in sorted((cfg.mqtt.client_id, cfg.pair.peer))]
    return [{"topic": x, "payload_available": "online", "payload_not_available": "offline"} for x in topics]


def _entity(
    cfg: Config, version: str, url: str | None, component: str, object_id: str, name: str | None, fields: dict[str, Any]
) -> Entity:
    node = node_of(cfg)
    oid = ascii_id(object_id)
    unique = f"announcer_{node}_{oid}"
    payload: dict[str, Any] = {
        "name": name,
        "unique_id": unique,
        # object_id for Home Assistant < 2025.10, default_entity_id for later ones (each ignores the other)
        "object_id": entity_slug(f"{node}_{oid}"),
        "default_entity_id": f"{component}.{entity_slug(f'{node}_{oid}')}",
        "device": device_block(cfg, version),
        "o": origin_block(version, url),
        "availability": availability(cfg),
        "qos": 1,
    }
    if cfg.pair is not None:
        payload["availability_mode"] = "any"
    payload.update(fields)
    topic = discovery_config(cfg.homeassistant.discovery_prefix, component, node, oid)
    return Entity(component, oid, topic, payload)


def command_topics(cfg: Config) -> tuple[str, dict[str, str], str]:
    """Where "say", each zone and "stop" send: ``P/...``, or a site's fleet topics."""
    if cfg.site is not None:
        f = FleetTopics.under(cfg.fleet.prefix, cfg.site.name)
        return f.say(f.site), {z: f.say(f.site, z) for z in cfg.zones}, f.stop(f.site)
    t = topics_of(cfg)
    return t.say, {z: t.say_to(z) for z in cfg.zones}, t.stop


def zone_display_name(cfg: Config, zone: str) -> str:
    return cfg.zone_names.get(zone) or zone


def entities(cfg: Config, version: str, url: str | None = None) -> list[Entity]:
    """Every entity of this daemon, in publishing order."""
    t = topics_of(cfg)
    say, zone_topics, stop = command_topics(cfg)
    out = [
        _entity(
            cfg, version, url, "notify", "say", "Say", {"command_topic": say, "retain": False, "icon": "mdi:bullhorn"}
        ),
    ]
    for zone in cfg.zones:
        out.append(
            _entity(
                cfg,
                version,
                url,
                "notify",
                f"zone_{zone}",
                zone_display_name(cfg, zone),
                {"command_topic": zone_topics[zone], "retain": False, "icon": "mdi:bullhorn-outline"},
            )
        )
    out += [
        _entity(
            cfg,
            version,
            url,
            "select",
            "emotion",
            "Default emotion",
            {
                "command_topic": t.set_emotion,
                "state_topic": t.state_emotion,
                "options": list(EMOTIONS),
                "retain": False,
                "entity_category": "config",
                "icon": "mdi:emoticon-outline",
            },
        ),
        _entity(
            cfg,
            version,
            url,
            "number",
            "volume",
            "Master volume",
            {
                "command_topic": t.set_volume,
                "state_topic": t.state_volume,
                "min": 0,
                "max": 100,
                "step": VOLUME_STEP,
                "unit_of_measurement": "%",
                "mode": "slider",
                "retain": False,
                "entity_category": "config",
                "icon": "mdi:volume-high",
            },
        ),
        _entity(
            cfg,
            version,
            url,
            "sensor",
            "queue",
            "Queue",
            {
                "state_topic": t.status,
                "value_template": "{{ value_json.queue }}",
                "state_class": "measurement",
                "icon": "mdi:playlist-play",
            },
        ),
        _entity(
            cfg,
            version,
            url,
            "sensor",
            "last",
            "Last announcement",
            {
                "state_topic": t.state_last,
                "value_template": "{{ value_json.text[:255] }}",
                "json_attributes_topic": t.state_last,
                "icon": "mdi:message-text-outline",
            },
        ),
        _entity(
            cfg,
            version,
            url,
            "binary_sensor",
            "speaking",
            "Speaking",
            {
                "state_topic": t.status,
                "value_template": "{{ 'ON' if value_json.speaking else 'OFF' }}",
                "payload_on": "ON",
                "payload_off": "OFF",
                "device_class": "sound",
            },
        ),
        _entity(
            cfg,
            version,
            url,
            "button",
            "stop",
            "Stop",
            {
                # "{}" is a valid P/stop payload (stop everything); the button's default "PRESS" is not
                "command_topic": stop,
                "payload_press": "{}",
                "retain": False,
                "icon": "mdi:stop",
            },
        ),
    ]
    if cfg.schedules:
        out += schedule_entities(cfg, version, url)
    if cfg.pair is not None:
        out.append(
            _entity(
                cfg,
                version,
                url,
                "sensor",
                "leader",
                "Leader",
                {
                    "state_topic": t.status,
                    "value_template": "{{ value_json.pair.leader if value_json.pair is defined else '' }}",
                    "icon": "mdi:account-switch",
                    "entity_category": "diagnostic",
                },
            )
        )
    return out


def schedule_entities(cfg: Config, version: str, url: str | None = None) -> list[Entity]:
    """The next firing (a timestamp sensor) and one switch per schedule (off: paused)."""
    t = topics_of(cfg)
    out = [
        _entity(
            cfg,
            version,
            url,
            "sensor",
            "next_schedule",
            "Next scheduled announcement",
            {
                "state_topic": t.state_schedules,
                "value_template": "{{ value_json.next or 'None' }}",
                "json_attributes_topic": t.state_schedules,
                "json_attributes_template": "{{ {'schedule': value_json.next_schedule, "
                "'id': value_json.next_id} | tojson }}",
                "device_class": "timestamp",
                "icon": "mdi:calendar-clock",
            },
        )
    ]
    for name in cfg.schedules:
        out.append(
            _entity(
                cfg,
                version,
                url,
                "switch",
                f"schedule_{name}",
                f"Schedule {name}",
                {
                    "command_topic": t.set_schedule(name),
                    "state_topic": t.state_schedule(name),
                    "payload_on": "ON",
                    "payload_off": "OFF",
                    "json_attributes_topic": t.state_schedules,
                    "json_attributes_template": f"{{{{ value_json.schedules['{name}'] | tojson }}}}",
                    "retain": False,
                    "entity_category": "config",
                    "icon": "mdi:calendar-clock",
                },
            )
        )
    return out


def schedules_state(upcoming: Iterable[Upcoming]) -> dict[str, Any]:
    """The retained ``P/state/schedules``: the next firing of a running schedule, and each schedule's."""
    items = list(upcoming)
    running = [u.firing for u in items if u.firing is not None and not u.paused]
    first = min(running, default=None)
    return {
        "next": _iso(first.at) if first else None,
        "next_schedule": first.schedule if first else None,
        "next_id": first.id if first else None,
        "schedules": {
            u.schedule: {
                "next": _iso(u.firing.at) if u.firing else None,
                "next_id": u.firing.id if u.firing else None,
                "paused": u.paused,
            }
            for u in items
        },
    }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


def parse_switch_command(payload: bytes) -> bool:
    """A ``P/set/schedule/<name>`` payload: ``ON`` runs the schedule (True), ``OFF`` pauses it."""
    text = payload.decode("utf-8", "replace").strip().upper()
    if text not in ("ON", "OFF"):
        raise ValueError(f"{text[:20]!r} is not ON or OFF")
    return text == "ON"


def removed_topics(previous: Iterable[str], current: Iterable[str]) -> list[str]:
    """Config topics published last time that no longer exist: each gets an empty retained payload."""
    now = set(current)
    return sorted(t for t in set(previous) if t not in now)


def volume_percent(volume: float) -> int | float:
    """0..1 to the number entity's percent (an int when whole)."""
    pct = round(volume * 100.0, 2)
    return int(pct) if float(pct).is_integer() else pct


def parse_volume_command(payload: bytes) -> float:
    """A ``P/set/volume`` payload (percent, e.g. ``55`` or ``55.0``) to 0..1; ValueError otherwise."""
    text = payload.decode("utf-8", "replace").strip()
    try:
        pct = float(text)
    except ValueError:
        raise ValueError(f"volume: {text!r} is not a number (send percent 0 .. 100)") from None
    if not 0.0 <= pct <= 100.0:
        raise ValueError(f"volume: {text} is out of range (allowed: 0 .. 100 percent)")
    return pct / 100.0


def last_state(event: Event, ann: Any) -> dict[str, Any]:
    """The retained ``P/state/last`` JSON for the newest event of the most recent announcement."""
    out = {
        "id": event.id,
        "state": event.state,
        "ts": event.ts,
        "text": getattr(ann, "summary", ""),  # a clip alone: "[clip bell]"
        "targets": list(getattr(ann, "targets", ())),
        "emotion": getattr(ann, "emotion", None),
        "priority": getattr(ann, "priority", None),
    }
    wire = event.to_wire()
    for key in ("speaker", "error", "reason"):
        if wire.get(key) is not None:
            out[key] = wire[key]
    return out
