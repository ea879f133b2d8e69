"""The fleet as the centre sees it: every site's retained state under ``F/sites/<site>/``, and ``announcer fleet``.

A site's daemons publish under ``F/sites/<site>`` (their prefix, or their bridge remaps it there),
so the central broker holds, per site, retained:

* ``bridge``: ``1`` / ``0`` from the site broker's bridge (``notification_topic``; ``0`` is the
  bridge's last will on the centre: the link is down). Absent when the site has no bridge (its
  daemons connect to the central broker themselves).
* ``availability``: ``online`` / ``offline`` (the daemon's last will), or for a pair
  ``pair/<member>/availability`` per member.
* ``status``: ``P/status`` (``queue``, ``speaking``, ``version``, ``site``, ``display``, ``last``,
  and ``pair`` for a pair, published by the member that leads).
* ``pair/leader``: a pair's lease (who leads).

``collect`` subscribes to these, takes what the broker hands over (retained messages come right
after the subscription is acknowledged) until nothing new came for ``SETTLE_S``, and returns a
``SiteState`` per site. A site whose link to the centre is down shows what it last said, marked
``unreachable``. ``fleet_command`` prints the table (or JSON) of ``announcer fleet``.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from ..config import Config
from .link import MqttLink
from .paho_adapter import IncomingMessage
from .topics import FleetTopics

SETTLE_S = 0.5  # no new retained message for this long after the SUBACK: the broker sent them all
CONNECT_TIMEOUT = 10.0

ONLINE, OFFLINE, UNREACHABLE = "online", "offline", "unreachable"


@dataclass
class SiteState:
    """What the centre holds about one site."""

    site: str
    bridge: str | None = None  # "1" up, "0" down, None: no bridge
    availability: str | None = None  # a daemon of its own: online | offline
    members: dict[str, str] = field(default_factory=dict)  # a pair: member -> online | offline
    status: dict[str, Any] | None = None
    lease: dict[str, Any] | None = None

    @property
    def state(self) -> str:
        """``online`` (its link is up and a daemon is online), ``offline``, or ``unreachable`` (link down)."""
        if self.bridge == "0":
            return UNREACHABLE
        if self.availability == ONLINE or ONLINE in self.members.values():
            return ONLINE
        return OFFLINE

    @property
    def link(self) -> str:
        return {"1": "up", "0": "down"}.get(self.bridge or "", "direct")

    @property
    def leader(self) -> str | None:
        pair = (self.status or {}).get("pair")
        if isinstance(pair, dict) and isinstance(pair.get("leader"), str):
            return str(pair["leader"])
        if isinstance(self.lease, dict) and isinstance(self.lease.get("member"), str):
            return str(self.lease["member"])
        return None

    def as_json(self) -> dict[str, Any]:
        st = self.status or {}
        return {
            "site": self.site,
            "display": st.get("display") or self.site,
            "state": self.state,
            "link": self.link,
            "queue": st.get("queue"),
            "speaking": st.get("speaking") or [],
            "version": st.get("version"),
            "members": dict(self.members),
            "leader": self.leader,
            "last": st.get("last"),
        }


class _Collector:
    """Keeps the latest message of each site topic; notes when the last one came."""

    def __init__(self, topics: FleetTopics) -> None:
        self.topics = topics
        self.sites: dict[str, SiteState] = {}
        self.last_message = time.monotonic()
        self._lock = threading.Lock()

    def __call__(self, msg: IncomingMessage) -> None:
        found = self.topics.site_of(msg.topic)
        if found is None:
            return
        site, rest = found
        text = msg.payload.decode("utf-8", "replace").strip()
        with self._lock:
            self.last_message = time.monotonic()
            st = self.sites.setdefault(site, SiteState(site))
            if rest == "bridge":
                st.bridge = text or None
            elif rest == "availability":
                st.availability = text or None
            elif rest == "status":
                st.status = _json_object(text)
            elif rest == "pair/leader":
                st.lease = _json_object(text)
            elif rest.startswith("pair/") and rest.endswith("/availability"):
                member = rest[len("pair/") : -len("/availability")]
                if member and "/" not in member and text:
                    st.members[member] = text

    def snapshot(self) -> dict[str, SiteState]:
        with self._lock:
            return {k: v for k, v in sorted(self.sites.items()) if v.status or v.availability or v.members}


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def site_filters(topics: FleetTopics) -> list[str]:
    """What the centre reads about every site."""
    return [
        topics.every_site("bridge"),
        topics.every_site("availability"),
        topics.every_site("status"),
        topics.every_site("pair", "#"),
    ]


class FleetWatch:
    """A short-lived client at the central broker that follows every site's state (and, for
    ``announcer send``, their events); ``sites()`` once the retained state has arrived."""

    def __init__(
        self, cfg: Config, extra: list[str] | None = None, on_other: Callable[[IncomingMessage], None] | None = None
    ) -> None:
        self.topics = FleetTopics.under(cfg.fleet.prefix)
        self.collector = _Collector(self.topics)
        self._on_other = on_other
        token = secrets.token_hex(6)
        self.link = MqttLink(
            cfg.mqtt,
            self._handle,
            site_filters(self.topics) + list(extra or []),
            client_id=f"announcer-fleet-{token}",
            persistent=False,
            availability=False,
        )

    def _handle(self, msg: IncomingMessage) -> None:
        self.collector(msg)
        if self._on_other is not None:
            self._on_other(msg)

    def open(self, timeout: float, err: TextIO) -> bool:
        """Connect and subscribe; False (with one line on ``err``) when the broker cannot be reached."""
        self.link.start()
        limit = min(timeout, CONNECT_TIMEOUT)
        if not self.link.wait_connect_attempt(limit) or not self.link.wait_connected(0):
            why = self.link.last_error or f"no answer within {limit:g}s"
            print(f"announcer: cannot connect to {self.link.broker}: {why}", file=err)
            return False
        if not self.link.wait_subscribed(limit):
            print(f"announcer: {self.link.broker} did not confirm the subscriptions", file=err)
            return False
        return True

    def settle(self, timeout: float) -> dict[str, SiteState]:
        """Wait until no site message came for ``SETTLE_S`` (at most ``timeout``); every site known."""
        deadline = time.monotonic() + timeout
        self.collector.last_message = max(self.collector.last_message, time.monotonic())
        while time.monotonic() < deadline and time.monotonic() - self.collector.last_message < SETTLE_S:
            time.sleep(0.05)
        return self.collector.snapshot()

    def close(self) -> None:
        self.link.close()


# ---- announcer fleet ----------------------------------------------------------------------------
COLUMNS = ("site", "name", "state", "link", "queue", "speaking", "version", "leader", "last")


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def _last(last: Any) -> str:
    if not isinstance(last, dict):
        return "-"
    text = str(last.get("text") or "")
    shown = f' "{text[:30]}{"…" if len(text) > 30 else ""}"' if text else ""
    return f"{last.get('id')} {last.get('state')} {last.get('ts')}{shown}"


def table(states: dict[str, SiteState]) -> list[str]:
    """The rows of ``announcer fleet``, aligned (display names may be Chinese: two columns a character)."""
    rows = [list(COLUMNS)]
    for st in states.values():
        j = st.as_json()
        queue = "-" if j["queue"] is None else str(j["queue"])
        rows.append(
            [
                st.site,
                str(j["display"]),
                st.state,
                st.link,
                queue,
                ",".join(j["speaking"]) or "-",
                str(j["version"] or "-"),
                st.leader or "-",
                _last(j["last"]),
            ]
        )
    widths = [max(_width(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return ["  ".join(_pad(c, widths[i]) for i, c in enumerate(r)).rstrip() for r in rows]


def fleet_command(cfg: Config, as_json: bool, timeout: float, out: TextIO, err: TextIO) -> int:
    """``announcer fleet``: 0 every site online, 1 some site is not (or none is known), 2 no broker."""
    watch = FleetWatch(cfg)
    try:
        if not watch.open(timeout, err):
            return 2
        states = watch.settle(timeout)
    finally:
        watch.close()
    if as_json:
        print(json.dumps({"sites": [s.as_json() for s in states.values()]}, ensure_ascii=False), file=out)
    elif states:
        for line in table(states):
            print(line, file=out)
    if not states:
        print(f"announcer fleet: no site publishes under {watch.topics.every_site('status')}", file=err)
        return 1
    return 0 if all(s.state == ONLINE for s in states.values()) else 1
