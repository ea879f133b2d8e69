"""A fleet over bridged brokers (issue 19, items 1-3 and 5): three sites, each with its own mosquitto
bridged to a central one (the repository's example configs, ``fleet_net``), one daemon per site.

From the centre, with the real command line (``announcer fleet``, ``announcer send --site/--all-sites
--wait``): an announcement for every site plays at every site and each site's events come back to
the centre; a site whose link is cut (no FIN) keeps playing its local announcements, shows as
``unreachable``, gets the fleet's announcements when the link heals (in order, once each) and lets
the one whose ``ttl`` ran out since it was *sent* expire; ``send --wait`` names the site that did not
finish and why. One site keeps its plain local prefix ``announcer`` behind a remapping bridge (the
alternative layout of docs/fleet.md). Runs about a minute.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from broker import Collected, find_mosquitto
from daemon_proc import new_id
from fleet_net import FLEET, Fleet, SiteDaemon, console
from ledger import parse_log

pytestmark = pytest.mark.timeout(240)

SITES = ["b1", "b2", "b3"]
REMAPPED = ("b2",)
KEEPALIVE = 5  # the bridges' keepalive_interval: the centre notices a dead link within 1.5 x this + ~6 s
CUT_NOTICED_S = KEEPALIVE * 1.5 + 6.0 + 3.0  # + mosquitto 2.0's 5 s sweep, + margin


@pytest.fixture
def fleet(tmp_path: Path, announcer_cache: Path) -> Iterator[tuple[Fleet, dict[str, SiteDaemon]]]:
    f = Fleet(tmp_path / "fleet", find_mosquitto() or "mosquitto", SITES, remapped=REMAPPED, keepalive=KEEPALIVE)
    daemons: dict[str, SiteDaemon] = {}
    try:
        f.start()
        for site in SITES:
            daemons[site] = SiteDaemon(
                f.sites[site], tmp_path / f"daemon-{site}", announcer_cache, site, prefix=f.prefix(site)
            ).start()
        yield f, daemons
    finally:
        for d in daemons.values():
            d.close()
        f.close()


def events_of(collected: Collected, ann_id: str) -> list[dict[str, Any]]:
    return [e for e in (m.json() for m in collected) if e.get("id") == ann_id]


def m_site(collected: Collected, error_part: str) -> set[str]:
    """The sites whose rejection's error contains ``error_part``."""
    return {e["site"] for e in (m.json() for m in collected) if error_part in e.get("error", "")}


def wait_state(collected: Collected, ann_id: str, site: str, state: str, timeout: float) -> dict[str, Any]:
    return collected.wait_for(
        lambda m: m.json().get("id") == ann_id and m.json().get("state") == state and m.json().get("site") == site,
        timeout,
    ).json()


def test_fleet_send_view_cut_and_heal(fleet: tuple[Fleet, dict[str, SiteDaemon]], tmp_path: Path) -> None:
    f, daemons = fleet
    central = f.central.client()
    at_centre = central.collect(f"{FLEET}/sites/+/events")

    # ---- the view: every site online, its name, its link ----
    view = console(f.central, tmp_path, "fleet")
    assert view.returncode == 0, view.stdout + view.stderr
    lines = view.stdout.splitlines()
    assert lines[0].split()[:4] == ["site", "name", "state", "link"], view.stdout
    assert [ln.split()[0] for ln in lines[1:]] == SITES
    assert all(" online " in ln and " up " in ln and "楼 " in ln for ln in lines[1:]), view.stdout

    # ---- every site, with --wait: one finished line per site, exit 0; the events reach the centre ----
    sent = console(f.central, tmp_path, "send", "Attention every building.", "--all-sites", "--id", "all-1", "--wait")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    outcomes = [json.loads(ln) for ln in sent.stdout.splitlines()]
    assert sorted((o["site"], o["state"], o["speaker"]) for o in outcomes) == [(s, "finished", "a") for s in SITES]
    for site in SITES:
        assert daemons[site].wav("a", "all-1").is_file()
        wait_state(at_centre, "all-1", site, "finished", 10)

    # ---- one id for several sites is one announcement per site; a second copy is that site's duplicate ----
    twice = {"text": "Hello building one.", "id": "dup-1"}
    central.publish_json(f"{FLEET}/say/b1", twice)
    central.publish_json(f"{FLEET}/say/b1/a", twice)
    wait_state(at_centre, "dup-1", "b1", "finished", 10)
    rejected = wait_state(at_centre, "dup-1", "b1", "rejected", 10)
    assert rejected["reason"] == "duplicate"
    assert [e["state"] for e in events_of(at_centre, "dup-1")].count("started") == 1
    # a stop for one site reaches that site only (an invalid one answers with its rejection)
    central.publish(f"{FLEET}/stop/b1", b"stop now")
    at_centre.wait_for(lambda m: m.json()["state"] == "rejected" and "a stop is" in m.json()["error"], 10)
    assert m_site(at_centre, "a stop is") == {"b1"}
    central.publish(f"{FLEET}/stop", b"")
    for site in SITES:
        daemons[site].wait_log("stop requested on all speakers", timeout=10)

    # ---- cut b3's link: the centre notices; b3 plays its own announcements meanwhile ----
    cut_at = time.monotonic()
    f.cut("b3")
    local = daemons["b3"]
    local_events = f.sites["b3"].client().collect(local.topic("events"))
    f.sites["b3"].client().publish_json(local.topic("say"), {"text": "Local announcement.", "id": "local-1"})
    local_events.wait_for(lambda m: m.json()["id"] == "local-1" and m.json()["state"] == "finished", 10)

    keep = new_id("keep")  # long ttl: plays after the heal
    short = new_id("short")  # ttl 3 s from when it was sent: expires at b3 before the heal
    central.publish_json(f"{FLEET}/say", {"text": "Fire drill at noon.", "id": keep, "sent_at": time.time()})
    central.publish_json(f"{FLEET}/say/b3", {"text": "Soon over.", "id": short, "ttl": 3, "sent_at": time.time()})
    for site in ("b1", "b2"):
        wait_state(at_centre, keep, site, "finished", 10)  # the sites whose link is up: at once

    f.wait_bridge("b3", False, CUT_NOTICED_S)
    noticed = time.monotonic() - cut_at
    view = console(f.central, tmp_path, "fleet", "--json")
    assert view.returncode == 1, view.stdout + view.stderr
    states = {s["site"]: s for s in json.loads(view.stdout)["sites"]}
    assert {s: states[s]["state"] for s in SITES} == {"b1": "online", "b2": "online", "b3": "unreachable"}
    assert states["b3"]["link"] == "down" and states["b3"]["last"]["id"] == "all-1"  # what it said last

    waited = console(f.central, tmp_path, "send", "Are you there?", "--site", "b1", "--site", "b3", "--wait",
                 "--timeout", "4")  # fmt: skip
    assert waited.returncode == 1, waited.stdout + waited.stderr
    assert [json.loads(ln)["site"] for ln in waited.stdout.splitlines()] == ["b1"]
    assert "b3: no outcome within 4s: its link to the centre is down" in waited.stderr, waited.stderr
    asked = json.loads(waited.stdout.splitlines()[0])["id"]
    assert not any(e["site"] == "b3" for e in events_of(at_centre, keep))

    time.sleep(3.5)  # the short one's ttl runs out while b3 is cut off
    # ---- heal: b3 gets what the centre kept, in order, once each; the short one expired there ----
    f.heal("b3")
    f.wait_bridge("b3", True, 30)
    wait_state(at_centre, keep, "b3", "finished", 20)
    wait_state(at_centre, asked, "b3", "finished", 20)
    assert wait_state(at_centre, short, "b3", "expired", 20)["speaker"] == "a"
    wait_state(at_centre, "local-1", "b3", "finished", 20)  # b3's own events, queued by its bridge
    order = [e.id for e in parse_log(local.log()) if e.state == "started"]
    assert order[-2:] == [keep, asked], order
    for ann_id in (keep, asked, "local-1", "all-1"):
        assert order.count(ann_id) == 1, (ann_id, order)
    assert not local.wav("a", short).exists()
    print(f"[fleet] bridge cut noticed at the centre after {noticed:.1f}s (keepalive_interval {KEEPALIVE})")
