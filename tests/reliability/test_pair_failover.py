"""An active/standby pair under faults (issue 19, items 4 and 5): every announcement plays once across
the pair, at most the one a failover cut off is replayed, and the other member carries on.

Two real daemons (members ``b1-a`` and ``b1-b`` of site ``b1``: the same config but
``mqtt.client_id``, ``pair.peer``), each playing into its own real-time speaker (an ALSA device
drained at the sample rate, ``alsa.FifoSpeakers``: the stand-in for the network speaker both
drive), each linked to a persistent mosquitto through its own ``CutProxy``. A publisher sends
numbered announcements at a steady pace while, at random moments (seeded, printed;
``RELIABILITY_SEED`` replays one):

* the leader is SIGKILLed (twice) and the standby once, each started again a few seconds later;
* the leader's link is blackholed (no FIN) for longer than the broker takes to give up on it;
* the broker is restarted (SIGTERM: it saves its state; it sends every will on the way down).

Checked from both daemons' logs (``pair_ledger``): nothing lost, each announcement finished on
the speaker by one member, an announcement started twice only when it is the one a takeover cut
off, the members' playing overlaps only for such a one, the standby takes over within its bound
after each fault of the leader (a kill: its will at once + ``CLAIM_GRACE_S``; a cut: the broker's
1.5 x keepalive + mosquitto 2.0's sweep of up to ~6 s + the grace), a broker restart changes no
leader, and in the end neither member's spool holds anything. Runs about two minutes.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alsa import FifoSpeakers
from broker import Broker, Received
from daemon_proc import EventLog
from fleet_net import FLEET, SiteDaemon, console
from netproxy import CutProxy
from pair_ledger import PairLedger
from publisher import Publisher

from announcer.integrations.pair.lease import CLAIM_GRACE_S
from announcer.spool.store import Spool

pytestmark = pytest.mark.timeout(420)

SITE = "b1"
MEMBERS = ("b1-a", "b1-b")  # b1-a sorts first: it leads when both start (pair.role auto)
KEEPALIVE = 5
PEER_TIMEOUT = 3.0
COUNT = 90
PACE_S = 1.0  # each announcement is about 0.75 s of audio: the queue drains between the faults
ENGINE = "{type: espeak, rate_wpm: 400}"
TAKEOVER_AFTER_KILL_S = CLAIM_GRACE_S + 2.0  # the will is at once; + the grace; + the claim's round trip
# the broker gives up 1.5 x keepalive after the last packet and sweeps for that every ~5 s (2.0.11)
TAKEOVER_AFTER_CUT_S = KEEPALIVE * 1.5 + 6.0 + CLAIM_GRACE_S + 2.0
CUT_S = TAKEOVER_AFTER_CUT_S + 3.0


class PairWatch:
    """The lease as a subscriber at the broker sees it: who leads since when."""

    def __init__(self, broker: Broker, prefix: str) -> None:
        self._lock = threading.Lock()
        self.leases: list[tuple[float, str]] = []
        broker.client().on(f"{prefix}/pair/leader", self._on)

    def _on(self, m: Received) -> None:
        with self._lock:
            self.leases.append((time.time(), json.loads(m.payload)["member"]))

    def leader(self) -> str | None:
        with self._lock:
            return self.leases[-1][1] if self.leases else None

    def wait_leader(self, member: str, after: float, timeout: float) -> float:
        """When ``member`` took the lease (after ``after``, epoch s)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for t, m in self.leases:
                    if t >= after and m == member:
                        return t
            time.sleep(0.05)
        raise AssertionError(f"{member} did not take the lead within {timeout}s (leases: {self.leases[-4:]})")


def test_pair_failover_plays_everything_once(
    durable_broker: Broker, tmp_path: Path, announcer_cache: Path, closing: Callable[[Any], Any]
) -> None:
    seed = int(os.environ.get("RELIABILITY_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    prefix = f"{FLEET}/sites/{SITE}"
    fifo = closing(FifoSpeakers(tmp_path / "alsa", count=2, pipe_bytes=4096))  # 0.13 s: a member plays in real time
    for reader in fifo.readers.values():
        reader.pace(1.0)  # real time: what a member plays takes as long as it sounds
    proxies = {m: closing(CutProxy((durable_broker.host, durable_broker.port))) for m in MEMBERS}
    daemons = {
        m: closing(
            SiteDaemon(
                durable_broker,
                tmp_path / m,
                announcer_cache,
                SITE,
                client_id=m,
                pair={"peer": peer, "peer_timeout": PEER_TIMEOUT},
                speaker_yaml=fifo.speaker_yaml(i + 1),
                engine_yaml=ENGINE,
                env=fifo.env,
                mqtt={"port": proxies[m].port, "keepalive": KEEPALIVE},
                log_level=os.environ.get("PAIR_LOG_LEVEL", "INFO"),
            )
        )
        for i, (m, peer) in enumerate(zip(MEMBERS, reversed(MEMBERS)))
    }
    watch = PairWatch(durable_broker, prefix)
    published = closing(EventLog(durable_broker, f"{prefix}/events"))
    for m in MEMBERS:
        daemons[m].start()
    watch.wait_leader(MEMBERS[0], 0.0, 20.0)
    pub = closing(Publisher(durable_broker))
    ledger = PairLedger()
    errors: list[BaseException] = []

    def send_all() -> None:
        try:
            for n in range(COUNT):
                ann_id = f"pf-{n:03d}"
                ledger.sent_one(ann_id)
                pub.send_json(f"{prefix}/say", {"id": ann_id, "text": f"Number {n}."})
                time.sleep(PACE_S)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def other(member: str) -> str:
        return MEMBERS[1] if member == MEMBERS[0] else MEMBERS[0]

    measured: list[str] = []
    sender = threading.Thread(target=send_all, daemon=True)
    t0 = time.monotonic()
    sender.start()
    plan = [("kill-leader", 6.0), ("kill-standby", 16.0), ("kill-leader", 26.0), ("cut-leader", 38.0),
            ("restart-broker", 70.0)]  # fmt: skip
    for what, base in plan:
        time.sleep(max(0.0, t0 + base + rng.uniform(0.0, 4.0) - time.monotonic()))
        leader = watch.leader()
        assert leader in MEMBERS, watch.leases
        at = time.time()
        if what == "kill-leader":
            daemons[leader].kill()
            took = watch.wait_leader(other(leader), at, TAKEOVER_AFTER_KILL_S + 5.0) - at
            measured.append(f"leader {leader} SIGKILLed: {other(leader)} leads after {took:.1f}s")
            assert took <= TAKEOVER_AFTER_KILL_S, measured[-1]
            time.sleep(rng.uniform(1.0, 4.0))
            daemons[leader].start()
        elif what == "kill-standby":
            daemons[other(leader)].kill()
            time.sleep(rng.uniform(1.0, 4.0))
            daemons[other(leader)].start()
            assert watch.leader() == leader, "killing the standby changed the leader"
        elif what == "cut-leader":
            proxies[leader].blackhole()
            took = watch.wait_leader(other(leader), at, CUT_S) - at
            measured.append(f"leader {leader}'s link cut: {other(leader)} leads after {took:.1f}s")
            assert took <= TAKEOVER_AFTER_CUT_S, measured[-1]
            time.sleep(max(0.0, at + CUT_S - time.time()))
            proxies[leader].restore()
            daemons[leader].wait_log("hands", timeout=30.0, after=0)  # it learns and steps back
        else:
            durable_broker.restart()
            time.sleep(PEER_TIMEOUT + 3.0)
            measured.append(f"broker restarted: leader {watch.leader()} (was {leader})")
            assert watch.leader() == leader, measured[-1]
    sender.join(COUNT * PACE_S + 120.0)
    assert not errors, errors

    deadline = time.monotonic() + 120.0
    while time.monotonic() < deadline:
        fig = ledger.figures({m: d.log() for m, d in daemons.items()})
        if not fig.lost:
            break
        time.sleep(1.0)
    view = console(durable_broker, tmp_path, "fleet", "--json")  # what an operator sees of the pair
    assert view.returncode == 0, view.stdout + view.stderr
    (site,) = json.loads(view.stdout)["sites"]
    assert (site["site"], site["state"], site["link"], site["leader"]) == (SITE, "online", "direct", watch.leader())
    assert site["members"] == {m: "online" for m in MEMBERS}
    for m in MEMBERS:
        assert daemons[m].stop() == 0, daemons[m].log_tail()
    fig = ledger.figures({m: d.log() for m, d in daemons.items()})
    fig.extra.update(seed=seed, keepalive_s=KEEPALIVE, runtime_s=round(time.monotonic() - t0))
    print(fig.line(), flush=True)
    for line in measured:
        print(f"[reliability] pair failover: {line}", flush=True)

    assert fig.lost == [], f"{fig.line()}\nlost: {fig.lost}"
    assert fig.broken == [], f"{fig.line()}\nstarted again without a takeover to explain it: {fig.broken}"
    assert sum(fig.replayed.values()) <= len(fig.takeovers), fig.line()
    assert all(i1 == i2 and i1 in fig.replayed for i1, i2 in fig.overlaps), fig.overlaps
    # every outcome reached MQTT (from the member that led at the time)
    done = {e["id"] for e in published.events(lambda e: e.get("state") == "finished")}
    assert set(ledger.sent) <= done, sorted(set(ledger.sent) - done)
    for m in MEMBERS:  # what one member played, the other retired: nothing left pending
        spool = Spool(daemons[m].spool_path)
        try:
            assert spool.pending() == [], (m, [a.id for a, _s in spool.pending()])
        finally:
            spool.close()
        assert "Traceback" not in daemons[m].log(), daemons[m].log_tail(80)
