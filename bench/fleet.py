"""``python -m bench fleet``: what a fleet's central broker holds, with N sites bridged to it.

N site mosquittos, each bridged to one central mosquitto through a byte-counting proxy, with the
repository's example configs (``config/mosquitto-central.conf.example``,
``config/mosquitto-site.conf.example``, rendered by ``tests/reliability/fleet_net.py``). At each
site a *stand-in for the daemon* (one paho client per site, all in this process: fifty real
daemons do not fit on two cores; ten real ones measure the same link bytes in
``tests/reliability/test_fleet_scale.py``) answers every announcement as the daemon does: three
events (``queued``, ``started``, ``finished``) and three retained statuses, of the daemon's sizes.

Figures: the central broker's RSS with N bridges idle, after ``--fleet-live`` announcements per
site (half to every site, half to each site alone), with ``--fleet-queued`` per site waiting
while every link is cut, and its peak; the bytes on one site's link per announcement; how long
the queued ones take to reach every site after the links heal. Peer, in the same run: the same
stand-ins connected straight to the central broker (no site brokers, no bridges), their
sessions holding what waits while they are away.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from .common import REPO_ROOT, BenchError, figure, progress

sys.path[:0] = [str(REPO_ROOT / "tests"), str(REPO_ROOT / "tests" / "reliability")]
from broker import Broker, find_mosquitto  # noqa: E402
from fleet_net import FLEET, central_conf, site_conf  # noqa: E402
from ledger import proc_mib  # noqa: E402
from netproxy import CutProxy  # noqa: E402

NAME = "fleet"
KEEPALIVE = 10
TEXT = "请3号病房的李医生到护士站，请各位旅客注意安全。"


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--fleet-sites", type=int, default=50, metavar="N", help="sites (default: 50)")
    group.add_argument("--fleet-live", type=int, default=20, metavar="M", help="announcements per site (default 20)")
    group.add_argument("--fleet-queued", type=int, default=20, metavar="Q", help="per site during a cut (default 20)")


class StandIn:
    """Answers each announcement for ``site`` with the daemon's three events and three statuses."""

    def __init__(self, site: str, host: str, port: int) -> None:
        self.site = site
        self.prefix = f"{FLEET}/sites/{site}"
        self.seen: set[str] = set()
        self.done = threading.Condition()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{site}-standin", protocol=mqtt.MQTTv5)
        c.on_connect = lambda cl, *_: cl.subscribe(
            [(f"{FLEET}/say", 1), (f"{FLEET}/say/{site}", 1), (f"{FLEET}/say/{site}/+", 1)]
        )
        c.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        c.reconnect_delay_set(0.2, 2.0)
        c.connect(host, port, keepalive=KEEPALIVE, clean_start=False, properties=props)
        c.loop_start()
        self.client = c

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        ann = json.loads(msg.payload)
        ann_id = ann["id"]
        ts = "2026-12-03T10:00:00.123Z"
        base = {"id": ann_id, "ts": ts, "site": self.site}
        events = [
            dict(base, state="queued", targets=["lobby"], priority="normal", warnings=[], speakers=["lobby"]),
            dict(base, state="started", speaker="lobby", latency_ms=63),
            dict(base, state="finished", speaker="lobby", duration_s=3.42, device="USB Audio Device: - (hw:1,0)"),
        ]
        status = {"state": "online", "version": "0.1.0", "site": self.site, "display": "三号楼"}
        last = {"id": ann_id, "ts": ts, "text": ann["text"][:80]}
        statuses = [
            dict(status, queue=1, speaking=[], last=dict(last, state="queued")),
            dict(status, queue=0, speaking=["lobby"], last=dict(last, state="queued")),
            dict(status, queue=0, speaking=[], last=dict(last, state="finished")),
        ]
        for event, st in zip(events, statuses):
            client.publish(f"{self.prefix}/events", json.dumps(event, ensure_ascii=False), qos=1)
            client.publish(f"{self.prefix}/status", json.dumps(st, ensure_ascii=False), qos=1, retain=True)
        with self.done:
            self.seen.add(ann_id)
            self.done.notify_all()

    def wait(self, ids: set[str], deadline: float) -> bool:
        with self.done:
            while not ids <= self.seen:
                if time.monotonic() > deadline:
                    return False
                self.done.wait(0.2)
        return True

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _run_layout(workdir: Path, n: int, live: int, queued: int, bridged: bool) -> dict[str, float]:
    binary = find_mosquitto()
    if binary is None:
        raise BenchError("mosquitto is not installed: run scripts/install-system-deps.sh")
    central = Broker(workdir / "central", binary, extra_conf=central_conf(100000)).start()
    sites = [f"s{i:03d}" for i in range(n)]
    proxies: dict[str, CutProxy] = {}
    brokers: list[Broker] = []
    standins: list[StandIn] = []
    pub = central.client()
    try:
        assert central.pid is not None
        rss_empty = proc_mib(central.pid)
        for s in sites:
            proxies[s] = CutProxy((central.host, central.port))
            if bridged:
                b = Broker(workdir / s, binary, extra_conf=site_conf(s, proxies[s].port, KEEPALIVE)).start()
                brokers.append(b)
                standins.append(StandIn(s, b.host, b.port))
            else:
                standins.append(StandIn(s, "127.0.0.1", proxies[s].port))
        time.sleep(2.0 + n * 0.02)
        rss_idle = proc_mib(central.pid)
        before = {s: (p.bytes_up, p.bytes_down) for s, p in proxies.items()}
        ids: dict[str, set[str]] = {s: set() for s in sites}
        for k in range(live // 2):
            pub.publish_json(f"{FLEET}/say", {"id": f"all-{k}", "text": TEXT, "sent_at": time.time()})
            for s in sites:
                ids[s].add(f"all-{k}")
                pub.publish_json(f"{FLEET}/say/{s}", {"id": f"{s}-{k}", "text": TEXT, "sent_at": time.time()})
                ids[s].add(f"{s}-{k}")
        deadline = time.monotonic() + 120.0 + n
        if not all(si.wait(ids[si.site], deadline) for si in standins):
            raise BenchError("the live announcements did not all arrive")
        time.sleep(1.0)  # the last events and statuses reach the centre
        per = max(1, 2 * (live // 2))
        up = sorted((p.bytes_up - before[s][0]) / per for s, p in proxies.items())
        down = sorted((p.bytes_down - before[s][1]) / per for s, p in proxies.items())
        rss_live = proc_mib(central.pid)
        for p in proxies.values():
            p.blackhole()
        time.sleep(KEEPALIVE * 1.5 + 7.0)  # the centre gives up on every link: what follows is queued there
        for k in range(queued):
            pub.publish_json(f"{FLEET}/say", {"id": f"q-{k}", "text": TEXT, "sent_at": time.time()})
            for s in sites:
                ids[s].add(f"q-{k}")
        rss_queued = proc_mib(central.pid)
        t_heal = time.monotonic()
        for p in proxies.values():
            p.restore()
        deadline = time.monotonic() + 120.0 + n
        if not all(si.wait(ids[si.site], deadline) for si in standins):
            raise BenchError("the queued announcements did not all arrive after the heal")
        drained = time.monotonic() - t_heal
        return {
            "empty": rss_empty,
            "idle": rss_idle,
            "live": rss_live,
            "queued": rss_queued,
            "peak": proc_mib(central.pid, "VmHWM"),
            "up": up[len(up) // 2],
            "down": down[len(down) // 2],
            "drained": drained,
        }
    finally:
        for si in standins:
            si.close()
        for p in proxies.values():
            p.close()
        for b in brokers:
            b.close()
        central.close()


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    n, live, queued = args.fleet_sites, args.fleet_live, args.fleet_queued
    root = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    progress(f"fleet: {n} sites bridged to a central mosquitto")
    bridged = _run_layout(root / "bridged", n, live, queued, bridged=True)
    progress(f"fleet: the same {n} stand-ins connected to the central mosquitto directly (the peer)")
    direct = _run_layout(root / "direct", n, live, queued, bridged=False)
    note = f"{n} sites, {live} live + {queued} queued announcements each"
    out = []
    for key, label in (
        ("idle", f"central RSS, {n} sites connected"),
        ("live", f"central RSS after {live} announcements per site"),
        ("queued", f"central RSS, {queued} per site queued while every link is cut"),
        ("peak", "central peak RSS (VmHWM)"),
    ):
        out.append(
            figure(
                NAME,
                label,
                round(bridged[key], 1),
                "MiB",
                peer=round(direct[key], 1),
                ratio=round(bridged[key] / direct[key], 2),
                note=note,
            )  # fmt: skip
        )
    out += [
        figure(
            NAME,
            "bytes per announcement, centre -> site",
            round(bridged["down"]),
            "B",
            peer=round(direct["down"]),
            ratio=round(bridged["down"] / max(1.0, direct["down"]), 2),
            note="TCP payload on one site's link, its events' PUBACKs included",
        ),  # fmt: skip
        figure(
            NAME,
            "bytes per announcement, site -> centre",
            round(bridged["up"]),
            "B",
            peer=round(direct["up"]),
            ratio=round(bridged["up"] / max(1.0, direct["up"]), 2),
            note="3 events + 3 retained statuses, and the announcement's PUBACK",
        ),  # fmt: skip
        figure(
            NAME,
            "queued announcements at every site after the heal",
            round(bridged["drained"], 1),
            "s",
            peer=round(direct["drained"], 1),
            note=f"{n} x {queued} announcements",
        ),  # fmt: skip
        figure(
            NAME,
            "central RSS per site, connected",
            round((bridged["idle"] - bridged["empty"]) / n * 1024, 1),
            "KiB",
            note="(RSS with N sites - empty) / N",
        ),  # fmt: skip
    ]
    return out
