"""Reliability 5: ten times more announcements than the speakers can play.

Two ``sounddevice`` speakers on real-time ALSA devices (``alsa.FifoSpeakers``: the file
plugin writes into a FIFO that the test drains at the sample rate, so a device takes
as long to play as a loudspeaker would) get about ten times what they can play in the
run: low/normal/high announcements for one speaker each (a third with a short ``ttl``),
plus a few emergencies for both, at random moments (seeded, printed). The limits are
small on purpose (``max_queue`` 6 per speaker, ``per_minute`` 150), so every overload
mechanism fires: rate limiting (``rejected``), queue shedding (``cancelled`` with
``reason: "queue full"``), expiry (``expired``).

Asserted:
* nothing silently dropped: every announcement ends as exactly one of played, expired,
  shed, rejected (sent = played + expired + shed + rejected);
* shedding takes the lowest priority, newest first: when the daemon sheds an
  announcement, nothing of lower priority (or of equal priority, newer) waited on that
  speaker - checked against the queue reconstructed from the daemon's log; an
  emergency is never shed;
* emergencies interrupt what plays on both speakers (each starts within 1.5 s of its
  publication, well before the announcement it interrupts could have ended; the speed
  target itself, p50 <= 150 ms, is the benchmark's: ``docs/performance.md``), spaced so
  that none waits behind another emergency;
* memory stays bounded: the daemon's peak RSS (VmHWM) stays under the benchmark's
  350 MiB target.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alsa import FifoSpeakers
from broker import Broker
from corpus import corpus_rows
from daemon_proc import DaemonProc
from ledger import Ledger, parse_log, proc_mib
from publisher import Publisher, warm_up

from announcer.core.schema import PRIORITY_RANK

pytestmark = pytest.mark.timeout(300)

RUN_S = 30.0
PACE_S = 0.15  # 200 announcements in 30 s; the two speakers play about 20
MAX_QUEUE = 6
PER_MINUTE = 150
EMERGENCIES = 4
# an announcement of the corpus plays for 3-6 s: an emergency queued behind the one playing would
# start seconds late; one that preempts starts within the benchmark's bound (150 ms p50,
# docs/performance.md), plus whatever the 2-core CI box adds under this load (up to ~0.5 s seen)
PREEMPTED_WITHIN_MS = 1500.0
RSS_BOUND_MIB = 350.0
SPEAKERS = ("p1", "p2")


def test_ten_times_overload_sheds_lowest_first_and_accounts_for_everything(
    durable_broker: Broker, tmp_path: Path, announcer_cache: Path, closing: Callable[[Any], Any]
) -> None:
    seed = int(os.environ.get("RELIABILITY_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    texts = sorted((text for _e, _p, text in corpus_rows()), key=len)[
        :MAX_QUEUE
    ]  # the short ones (all fit one queue for the warm-up)
    fifo = closing(FifoSpeakers(tmp_path / "fifo", count=2))
    for r in fifo.readers.values():
        r.pace(None)  # as fast as it comes while the cache warms
    d = closing(
        DaemonProc(
            durable_broker,
            tmp_path / "d",
            announcer_cache,
            env=fifo.env,
            speakers={"p1": fifo.speaker_yaml(1), "p2": fifo.speaker_yaml(2)},
            limits={"per_minute": PER_MINUTE, "max_queue": MAX_QUEUE},
            sections="",
        )
    )
    d.patch_config({"zones": {"both": ["p1", "p2"]}, "defaults": {"targets": ["p1"], "chime": True}})
    d.start()
    pub = closing(Publisher(durable_broker))
    ledger = Ledger("overload x10")
    pid = d.proc.pid if d.proc else 0
    rss: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            try:
                rss.append(proc_mib(pid, "VmRSS"))
            except (OSError, KeyError):
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        # warm the clause cache with the devices drained at full speed, then play in real time
        warm_up(pub, d, texts, "both", SPEAKERS)
        for r in fifo.readers.values():
            r.pace(1.0)

        count = int(RUN_S / PACE_S)
        # emergencies never interrupt emergencies: space them wider than one plays (~4 s)
        span = (count - count // 4) // EMERGENCIES
        emergency_at = {count // 4 + k * span + rng.randrange(span // 3) for k in range(EMERGENCIES)}
        sent_at: dict[str, float] = {}
        for i in range(count):
            if i in emergency_at:
                ann_id = f"ov-{i:03d}-emergency"
                body = {"id": ann_id, "text": "紧急通知，请立即撤离。", "priority": "emergency", "targets": "both"}
                ledger.sent_one(ann_id, priority="emergency", speakers=SPEAKERS)
            else:
                priority = rng.choice(("low", "low", "normal", "normal", "high"))
                speaker = rng.choice(SPEAKERS)
                ann_id = f"ov-{i:03d}-{priority}"
                body = {"id": ann_id, "text": rng.choice(texts), "priority": priority, "targets": speaker}
                if rng.random() < 0.33:
                    body["ttl"] = 8
                ledger.sent_one(ann_id, priority=priority, speakers=(speaker,))
            sent_at[ann_id] = time.time()
            pub.send_json(d.topic("say"), body)
            time.sleep(PACE_S)

        deadline = time.monotonic() + 120
        while ledger.figures(d.log()).lost and time.monotonic() < deadline:
            assert d.running, d.log_tail()
            time.sleep(0.5)
        peak = proc_mib(pid, "VmHWM")
    finally:
        stop.set()
        sampler.join(2)
    text = d.log()
    events = parse_log(text)
    emergency_ms = sorted(
        round((e.ts - sent_at[e.id]) * 1000.0)
        for e in events
        if e.state == "started" and e.id.endswith("-emergency") and "replay" not in e.fields
    )
    fig = ledger.figures(
        text,
        seed=seed,
        peak_rss_mib=round(peak, 1),
        rss_max_sampled_mib=round(max(rss), 1),
        emergency_start_ms=emergency_ms,
        interrupted=sum(1 for e in events if e.state == "interrupted" and e.id in ledger.sent),
    )
    Ledger.print(fig)
    assert d.running, d.log_tail()
    assert d.stop() == 0, d.log_tail()

    # nothing silently dropped
    assert fig.lost == [], f"no outcome for {fig.lost[:10]}\n{d.log_tail()}"
    assert fig.failed == 0 and fig.cancelled == 0, fig.line()
    assert fig.sent == fig.played + fig.expired + fig.shed + fig.rejected, fig.line()
    assert fig.duplicated == {} or all(i.endswith(("-low", "-normal", "-high")) for i, _s in fig.duplicated), (
        fig.duplicated
    )  # only interrupted ones start again (replay after the emergency)
    # every mechanism fired: this was an overload
    assert fig.shed > 0 and fig.rejected > 0 and fig.played < fig.sent / 5, fig.line()
    rejected = [e for e in events if e.state == "rejected" and e.id in ledger.sent]
    assert rejected and all(e.fields.get("reason") == "rate_limited" for e in rejected), rejected[:3]
    assert all(ledger.sent[e.id].priority != "emergency" for e in rejected)
    # emergencies: all played on both speakers, each started within the bound
    emergencies = [i for i, s in ledger.sent.items() if s.priority == "emergency"]
    finished = {(e.id, e.speaker) for e in events if e.state == "finished"}
    assert all((i, s) in finished for i in emergencies for s in SPEAKERS)
    assert len(emergency_ms) == EMERGENCIES * len(SPEAKERS), emergency_ms
    # preempted, not queued: each started long before what it interrupted could have ended (the
    # speed target itself, p50 <= 150 ms, is measured by bench/e2e.py on a quiet machine; the
    # figures printed above show it under this overload)
    assert max(emergency_ms) <= PREEMPTED_WITHIN_MS, emergency_ms
    # shedding: the lowest priority, newest first
    _assert_shed_lowest_first(events, ledger)
    assert peak <= RSS_BOUND_MIB, f"peak RSS {peak:.0f} MiB"
    assert "Traceback" not in text, d.log_tail(80)


def _assert_shed_lowest_first(events: list, ledger: Ledger, slack_s: float = 0.3) -> None:
    """Replay the log's queue per speaker; at each ``queue full`` shed nothing worse may wait.

    A job a player took just before the shed can be logged ``started`` just after it:
    jobs that start (or end) on that speaker within ``slack_s`` after the shed are not
    counted as waiting.
    """
    waiting: dict[str, dict[str, int]] = defaultdict(dict)  # speaker -> id -> arrival order
    ended_at: dict[tuple[str, str], float] = {}
    for e in events:
        if e.id in ledger.sent and e.speaker and e.state != "queued" and (e.id, e.speaker) not in ended_at:
            ended_at[(e.id, e.speaker)] = e.ts  # first start or end on that speaker
    order = 0
    shed = 0
    for e in events:
        s = ledger.sent.get(e.id)
        if s is None:
            continue
        if e.state == "queued":
            order += 1
            for spk in s.speakers:
                waiting[spk][e.id] = order
            continue
        if not e.speaker:
            continue
        if e.state == "cancelled" and e.fields.get("reason") == "queue full":
            shed += 1
            rank, arrival = PRIORITY_RANK[s.priority], waiting[e.speaker].get(e.id, order)
            assert s.priority != "emergency", e
            worse = [
                o
                for o, o_arrival in waiting[e.speaker].items()
                if o != e.id
                and ended_at.get((o, e.speaker), float("inf")) > e.ts + slack_s
                and (
                    PRIORITY_RANK[ledger.sent[o].priority] < rank
                    or (PRIORITY_RANK[ledger.sent[o].priority] == rank and o_arrival > arrival)
                )
            ]
            assert not worse, f"shed {e.id} on {e.speaker} while {worse} waited"
        waiting[e.speaker].pop(e.id, None)
    assert shed > 0
