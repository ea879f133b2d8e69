"""Reliability 2: the daemon is SIGKILLed ten times during a 200-announcement run.

A publisher sends 200 announcements (ids, corpus texts, both file speakers ``a`` and
``b``) at a steady pace; the daemon is killed with SIGKILL at ten random moments
(seeded, printed) - mid-synthesis, mid-write, while resuming its spool, even before it
came online - and started again at once on the same spool. Announcements published
while it is dead wait in its persistent broker session.

The promise (the contract's *Delivery*): nothing accepted is lost, and nothing is
played twice except the one cut off by a crash, replayed from its start. Checked per
speaker: an announcement started on a speaker in more than one run must be the last
one that run started on that speaker (the one the kill cut off: still playing, or
finished but not yet recorded in the spool), so each kill replays at most one
announcement per speaker. Ground truth is the daemon's log, which the kills do not
lose (one line per state change, unbuffered, written before the event goes out).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from broker import Broker
from corpus import corpus_rows
from daemon_proc import DaemonProc
from ledger import Ledger, parse_log, replays
from publisher import Publisher, warm_up

from announcer.spool.store import Spool

pytestmark = pytest.mark.timeout(400)

COUNT = 200
KILLS = 10
PACE_S = 0.1  # 20 s of sending
SPEAKERS = ("a", "b")


def test_daemon_sigkilled_ten_times_loses_nothing_and_replays_only_the_cut_off(
    durable_broker: Broker, tmp_path: Path, announcer_cache: Path, closing: Callable[[Any], Any]
) -> None:
    seed = int(os.environ.get("RELIABILITY_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    texts = [text for _e, _p, text in corpus_rows()]
    d = closing(
        DaemonProc(
            durable_broker,
            tmp_path / "d",
            announcer_cache,
            limits={"per_minute": 100000, "max_queue": COUNT},
            defaults={"targets": "files"},
        )
    )
    d.start()
    pub = closing(Publisher(durable_broker))
    warm_up(pub, d, texts, "files", SPEAKERS)  # kills then cut off playing, not only first syntheses
    ledger = Ledger("daemon SIGKILL x10")
    errors: list[BaseException] = []

    def send_all() -> None:
        try:
            for i in range(COUNT):
                ann_id = f"dk-{i:03d}-{rng.randrange(1 << 20):05x}"
                ledger.sent_one(ann_id, speakers=SPEAKERS)
                pub.send_json(d.topic("say"), {"id": ann_id, "text": texts[i % len(texts)]})
                time.sleep(PACE_S)
        except BaseException as exc:
            errors.append(exc)

    sender = threading.Thread(target=send_all, daemon=True)
    t0 = time.monotonic()
    sender.start()
    kill_at = sorted(rng.uniform(0.5, COUNT * PACE_S + 3.0) for _ in range(KILLS))
    for at in kill_at:
        time.sleep(max(0.0, t0 + at - time.monotonic()))
        assert d.kill() == -9
        d.spawn()  # at once; the next kill may come before it is even online
    sender.join(COUNT * PACE_S + 120)
    assert not sender.is_alive() and not errors, f"publishing failed: {errors}\n{d.log_tail()}"

    deadline = time.monotonic() + 180
    while ledger.figures(d.log()).lost and time.monotonic() < deadline:
        assert d.running, d.log_tail()
        time.sleep(0.5)
    time.sleep(1.0)
    text = d.log()
    fig = ledger.figures(text, seed=seed, kills=KILLS, runs=d.starts, run_s=round(time.monotonic() - t0, 1))
    Ledger.print(fig)

    assert fig.sent == COUNT and fig.lost == [], f"lost {fig.lost[:10]}\n{d.log_tail()}"
    assert fig.played == COUNT and fig.rejected == 0 and fig.failed == 0, fig.line()
    # replays: only the one each kill cut off, per speaker
    cut_off, broken = replays(parse_log(text), ledger.sent)
    assert broken == [], f"replayed but not the one a kill cut off (id, speaker, runs): {broken}"
    assert all(r < d.starts for r, _s in cut_off), cut_off
    assert all(len(v) == 1 for v in cut_off.values()), cut_off
    print(f"[reliability] daemon SIGKILL x10: replayed (run, speaker) -> id: {cut_off}")
    spool = Spool(d.spool_path)
    try:
        for ann_id in ledger.sent:
            assert spool.state(ann_id) == ("finished", {"a": "finished", "b": "finished"}), ann_id
    finally:
        spool.close()
    assert all(d.wav(s, i).is_file() for i in ledger.sent for s in SPEAKERS)
    assert d.stop() == 0, d.log_tail()
    assert "Traceback" not in text, d.log_tail(80)
