"""The fleet's topics, the site stamp on events and the centre's view of a site (no broker needed)."""

from __future__ import annotations

import pytest

from announcer.core.events import EventBus, Queued, Rejected, Started
from announcer.mqtt.fleet import SiteState, table
from announcer.mqtt.topics import SAY, STOP, FleetTopics, Route, Topics

pytestmark = pytest.mark.unit  # the fast lane (make check)


def test_a_site_subscribes_and_routes_the_fleet_topics() -> None:
    f = FleetTopics.under("announcer-fleet/", "b3")
    assert f.subscriptions() == [
        "announcer-fleet/say",
        "announcer-fleet/say/b3",
        "announcer-fleet/say/b3/+",
        "announcer-fleet/stop",
        "announcer-fleet/stop/b3",
    ]
    assert f.route("announcer-fleet/say") == Route(SAY, None)
    assert f.route("announcer-fleet/say/b3") == Route(SAY, None)
    assert f.route("announcer-fleet/say/b3/ward-3") == Route(SAY, "ward-3")
    assert f.route("announcer-fleet/say/b3/") == Route(SAY, None)  # an empty last level: no target
    assert f.route("announcer-fleet/stop") == Route(STOP, None)
    assert f.route("announcer-fleet/stop/b3") == Route(STOP, None)
    for other in ("announcer-fleet/say/b4", "announcer-fleet/say/b4/x", "announcer-fleet/say/b3/x/y",
                  "announcer-fleet/stop/b4", "announcer-fleet/sites/b3/say", "announcer/say"):  # fmt: skip
        assert f.route(other) is None, other
    assert FleetTopics.under("announcer-fleet").subscriptions() == []  # a tool at the centre: no site


def test_topics_at_the_centre() -> None:
    f = FleetTopics.under("announcer-fleet")
    assert f.say() == "announcer-fleet/say" and f.say("b3") == "announcer-fleet/say/b3"
    assert f.say("b3", "lobby") == "announcer-fleet/say/b3/lobby" and f.stop("b3") == "announcer-fleet/stop/b3"
    assert f.every_site("status") == "announcer-fleet/sites/+/status"
    assert f.site_topic("b3", "pair", "leader") == "announcer-fleet/sites/b3/pair/leader"
    assert f.site_of("announcer-fleet/sites/b3/pair/b3-a/availability") == ("b3", "pair/b3-a/availability")
    assert f.site_of("announcer-fleet/sites/b3") is None and f.site_of("announcer-fleet/say/b3") is None
    p = Topics.under("announcer-fleet/sites/b3")
    assert p.member_availability("b3-a") == "announcer-fleet/sites/b3/pair/b3-a/availability"
    assert p.pair_member_of("announcer-fleet/sites/b3/pair/b3-a/status") == ("b3-a", "status")
    assert p.pair_member_of("announcer-fleet/sites/b3/pair/leader") is None


def test_the_bus_stamps_site_and_member_on_every_event() -> None:
    seen: list[dict[str, object]] = []
    bus = EventBus(site="b3", member="b3-a")
    bus.subscribe(lambda e, _a: seen.append(e.to_wire()))
    bus.emit(Queued(id="x", targets=("a",), priority="normal"))
    bus.emit(Started(id="x", speaker="a", latency_ms=5))
    rejected = bus.emit(Rejected(id="y", reason="invalid", error="text: required"))
    assert isinstance(rejected, Rejected)  # the stamped copy keeps its type
    assert [(w["site"], w["member"]) for w in seen] == [("b3", "b3-a")] * 3
    assert list(seen[1])[:5] == ["id", "state", "ts", "site", "member"]
    plain: list[dict[str, object]] = []
    bus = EventBus()
    bus.subscribe(lambda e, _a: plain.append(e.to_wire()))
    bus.emit(Started(id="x", speaker="a", latency_ms=5))
    assert "site" not in plain[0] and "member" not in plain[0]


def test_a_site_is_online_unreachable_or_offline() -> None:
    status = {"state": "online", "version": "0.1.0", "queue": 2, "speaking": ["a"], "site": "b3", "display": "三号楼"}
    assert SiteState("b3", bridge="1", availability="online", status=status).state == "online"
    assert SiteState("b3", availability="online", status=status).link == "direct"
    assert SiteState("b3", bridge="0", availability="online", status=status).state == "unreachable"
    assert SiteState("b3", bridge="1", availability="offline", status=status).state == "offline"
    pair = SiteState("b3", bridge="1", members={"b3-a": "offline", "b3-b": "online"},
                     status=dict(status, pair={"leader": "b3-b"}), lease={"member": "b3-a"})  # fmt: skip
    assert pair.state == "online" and pair.leader == "b3-b"  # the leader's status wins over a stale lease
    assert SiteState("b3", lease={"member": "b3-a", "epoch": 2}).leader == "b3-a"
    rows = table({"b3": pair, "b4": SiteState("b4", bridge="0", availability="online")})
    assert rows[0].split() == ["site", "name", "state", "link", "queue", "speaking", "version", "leader", "last"]
    assert rows[1].split()[:8] == ["b3", "三号楼", "online", "up", "2", "a", "0.1.0", "b3-b"]
    assert rows[2].split()[:4] == ["b4", "b4", "unreachable", "down"]

    # a Chinese name is two columns a character wide: the next column still lines up
    def column(row: str, word: str) -> int:
        return sum(2 if "\u4e00" <= c <= "\u9fff" else 1 for c in row[: row.index(word)])

    assert column(rows[0], "state") == column(rows[1], "online") == column(rows[2], "unreachable")


def test_a_site_outcome_ignores_a_bridge_duplicate_of_what_it_queued() -> None:
    from announcer.mqtt.fleet_send import SiteOutcome

    o = SiteOutcome("b3")
    o.feed({"id": "x", "state": "queued", "speakers": ["a", "b"]})
    o.feed({"id": "x", "state": "rejected", "reason": "duplicate", "error": "id: 'x' was already received"})
    assert not o.done  # the copy a flapping bridge delivered twice: the first one plays
    o.feed({"id": "x", "state": "finished", "speaker": "a"})
    o.feed({"id": "x", "state": "failed", "speaker": "b", "error": "audio device 'b' failed"})
    assert o.done and o.deciding() == (
        False,
        {"id": "x", "state": "failed", "speaker": "b", "error": "audio device 'b' failed", "site": "b3",
         "results": {"a": "finished", "b": "failed"}},
    )  # fmt: skip
    assert o.problems() == ["b3/b: failed: audio device 'b' failed"]
    first = SiteOutcome("b4")  # an id the site had already: its own duplicate, nothing plays
    first.feed({"id": "x", "state": "rejected", "reason": "duplicate", "error": "id: ..."})
    assert first.done and first.deciding()[0] is False
