"""A fleet of ten sites, 150 announcements each, links cut and healed (issue 19, item 5; slow lane).

Ten site brokers bridged to a central one (``fleet_net``: the repository's example configs), one
real daemon per site (espeak, a ``file`` speaker: cheap enough for ten on two cores). From the
centre: 50 announcements for every site (``F/say``) interleaved with 50 for each site on its own
(``F/say/<site>``): 100 per site, 1000 in all, every link up. Then three sites' links are cut (no
FIN) and 20 more go to every site; the other seven play them at once, the three when their links
heal. Last, 30 more while one link flaps (cut for 2 s in the middle of the burst, too short for
either end to notice: the connection is closed at the heal and the centre sends again what it
had in flight). Per site, from its daemon's log (the reliability ledger): every one finished once, nothing
lost, nothing played twice (a copy a bridge delivers twice after a flap is the site's
``duplicate``, counted). Printed for docs/fleet.md: the bytes on each site's link per
announcement (both ways, TCP payload, counted by the proxy), the central broker's memory, the
time the healed sites took to catch up. Runs about two minutes.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from broker import find_mosquitto
from fleet_net import FLEET, Fleet, SiteDaemon
from ledger import Ledger, parse_log, proc_mib

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SITES = [f"s{i:02d}" for i in range(10)]
CUT = SITES[-3:]
KEEPALIVE = 10
BROADCASTS, OWN, AFTER_CUT, FLAP = 50, 50, 20, 30
PACE_S = 0.05


def wait_done(ledgers: dict[str, Ledger], daemons: dict[str, SiteDaemon], timeout: float) -> float:
    t0 = time.monotonic()
    while True:
        missing = {s: led.figures(daemons[s].log()).lost for s, led in ledgers.items()}
        if not any(missing.values()):
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError({s: m[:5] for s, m in missing.items() if m})
        time.sleep(1.0)


def test_ten_sites_hundreds_of_announcements_cuts_and_heals(tmp_path: Path, announcer_cache: Path) -> None:
    fleet = Fleet(tmp_path / "fleet", find_mosquitto() or "mosquitto", SITES, keepalive=KEEPALIVE)
    daemons: dict[str, SiteDaemon] = {}
    try:
        fleet.start(timeout=60.0)
        assert fleet.central.pid is not None
        rss_idle = proc_mib(fleet.central.pid)
        for site in SITES:
            daemons[site] = SiteDaemon(fleet.sites[site], tmp_path / f"d-{site}", announcer_cache, site).start()
        rss_bridged = proc_mib(fleet.central.pid)
        ledgers = {s: Ledger(f"fleet {s}") for s in SITES}
        central = fleet.central.client()

        def send(topic: str, ann_id: str, sites: list[str]) -> None:
            central.publish_json(topic, {"id": ann_id, "text": f"Announcement {ann_id}.", "sent_at": time.time()})
            for s in sites:
                ledgers[s].sent_one(ann_id, speakers=("a",))

        before = {s: (p.bytes_up, p.bytes_down) for s, p in fleet.proxies.items()}
        t_live = time.monotonic()
        for n in range(max(BROADCASTS, OWN)):
            if n < BROADCASTS:
                send(f"{FLEET}/say", f"all-{n:03d}", SITES)
            for s in SITES if n < OWN else ():
                send(f"{FLEET}/say/{s}", f"{s}-{n:03d}", [s])
            time.sleep(PACE_S)
        live_s = wait_done(ledgers, daemons, 300.0) + (time.monotonic() - t_live)
        rss_live = proc_mib(fleet.central.pid)
        per_site = BROADCASTS + OWN
        traffic = {
            s: ((p.bytes_up - before[s][0]) / per_site, (p.bytes_down - before[s][1]) / per_site)
            for s, p in fleet.proxies.items()
        }

        for s in CUT:
            fleet.cut(s)
        for n in range(AFTER_CUT):
            send(f"{FLEET}/say", f"cut-{n:03d}", SITES)
            time.sleep(PACE_S)
        up = [s for s in SITES if s not in CUT]
        for s in up:
            wait_done({s: ledgers[s]}, daemons, 120.0)
        for s in CUT:  # nothing reached them
            assert not any(e.id.startswith("cut-") for e in parse_log(daemons[s].log())), s
            fleet.wait_bridge(s, False, KEEPALIVE * 1.5 + 10.0)
        rss_queued = proc_mib(fleet.central.pid)
        for s in CUT:
            fleet.heal(s)
        catch_up = wait_done({s: ledgers[s] for s in CUT}, daemons, 180.0)

        flapping = SITES[0]
        for n in range(FLAP):
            if n == FLAP // 3:
                fleet.cut(flapping)
            if n == FLAP // 3 + int(2.0 / PACE_S) // 4:
                fleet.heal(flapping)
            send(f"{FLEET}/say", f"flap-{n:03d}", SITES)
            time.sleep(PACE_S * 4)
        fleet.heal(flapping)
        wait_done(ledgers, daemons, 180.0)
        rss_peak = proc_mib(fleet.central.pid, "VmHWM")

        total = lost = played = duplicated = 0
        duplicates_absorbed = 0
        for s in SITES:
            fig = ledgers[s].figures(daemons[s].log())
            total += fig.sent
            played += fig.played
            lost += len(fig.lost)
            duplicated += sum(n - 1 for n in fig.duplicated.values())
            duplicates_absorbed += sum(
                1
                for e in parse_log(daemons[s].log())
                if e.state == "rejected" and e.fields.get("reason") == "duplicate"
            )
            assert fig.lost == [] and fig.duplicated == {}, fig.line()
            assert fig.played == fig.sent == per_site + AFTER_CUT + FLAP, fig.line()
        up_b = sorted(t[0] for t in traffic.values())
        down_b = sorted(t[1] for t in traffic.values())
        print(
            f"[fleet] {len(SITES)} sites x {per_site + AFTER_CUT + FLAP} announcements: sent={total} played={played} "
            f"lost={lost} duplicated={duplicated} bridge_duplicates_rejected={duplicates_absorbed}",
            flush=True,
        )
        print(
            f"[fleet] per site link and announcement (TCP payload, with its events and status): "
            f"down {down_b[len(down_b) // 2]:.0f} B (min {down_b[0]:.0f}, max {down_b[-1]:.0f}), "
            f"up {up_b[len(up_b) // 2]:.0f} B (min {up_b[0]:.0f}, max {up_b[-1]:.0f}); "
            f"{per_site * len(SITES)} announcements live in {live_s:.1f}s",
            flush=True,
        )
        print(
            f"[fleet] central mosquitto RSS: idle {rss_idle:.1f} MiB, {len(SITES)} bridges + daemons "
            f"{rss_bridged:.1f}, after the live run {rss_live:.1f}, {len(CUT)} sites x {AFTER_CUT} queued "
            f"{rss_queued:.1f}, peak {rss_peak:.1f}; the healed sites played what waited for them within "
            f"{catch_up:.1f}s of the heal (keepalive_interval {KEEPALIVE})",
            flush=True,
        )
    finally:
        for d in daemons.values():
            d.close()
        fleet.close()
