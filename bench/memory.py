"""Memory and start-up of the daemon (a subprocess, engine ``zh``: embedded-zh 2 threads).

* start-up: from spawning ``announcer run`` to the sd_notify ``READY=1`` datagram (a real
  AF_UNIX datagram socket named by ``NOTIFY_SOCKET``; the daemon is READY once the engines
  are loaded and warmed up, the spool is open and the broker confirmed the subscriptions),
  and to the ``started`` event of a first announcement published right after READY
  (uncached; a speaker without lead-in, no chime: its first speech sample);
* peak RSS (``VmHWM`` from ``/proc/<pid>/status``): after READY (idle), after that first
  announcement, and after a load on four ``file`` speakers (every corpus text, uncached,
  to all four at once: both synthesis workers busy; file speakers cost what a device
  costs for synthesis, and memory does not depend on real time).

Repeated ``--memory-starts`` times (a fresh daemon each time, one cache directory: the
first start patches the acoustic model and renders the loudness reference sentence, later
ones find both in the cache, as a restart does; p50 is a warm start).
Targets (issue 9): peak RSS ≤ 350 MB, READY within 2 s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .common import figure, find_corpus, load_corpus, percentile, progress

BENCH = "memory"
FILES = ("f1", "f2", "f3", "f4")


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--memory-starts", type=int, default=3, metavar="N", help="daemon starts to time (default: 3)")


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from ._stack import Daemon, EventLog, start_broker, unique_text

    corpus = load_corpus(find_corpus(args.corpus))
    workdir = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    broker = start_broker(workdir)
    ready, first, idle, after_first, loaded = [], [], [], [], []
    try:
        client = broker.client()
        for k in range(args.memory_starts):
            wd = workdir / f"start{k}"
            speakers = "\n".join(f"  {s}: {{type: file, directory: {json.dumps(str(wd / s))}}}" for s in FILES)
            body = (
                f"engines:\n  zh: {{type: embedded-zh, threads: 2}}\n"
                f"defaults: {{engine: zh, targets: [f1]}}\n"
                f"cache: {{directory: {json.dumps(str(workdir / 'cache'))}}}\n"
                f"zones: {{all: [{', '.join(FILES)}]}}\nspeakers:\n{speakers}\n"
            )
            daemon = Daemon(wd, broker, body)
            try:
                events = EventLog(client, daemon.topic("events"))
                daemon.spawn()
                t_ready = daemon.wait_ready()
                ready.append(t_ready - daemon.spawned)
                idle.append(daemon.status_kib("VmHWM") / 1024.0)
                payload = {"id": f"first-{k}", "text": unique_text(corpus[0].text, 100 + k), "chime": False}
                client.publish(daemon.topic("say"), json.dumps(payload, ensure_ascii=False).encode(), qos=1)
                started = events.wait(f"first-{k}", "started")
                first.append(started.t - daemon.spawned)
                events.wait(f"first-{k}", "finished")
                after_first.append(daemon.status_kib("VmHWM") / 1024.0)
                if k == 0:
                    progress(f"memory: load: {len(corpus)} uncached texts to 4 file speakers")
                    for n, line in enumerate(corpus):
                        client.publish(
                            daemon.topic("say"),
                            json.dumps(
                                {
                                    "id": f"load-{n}",
                                    "text": unique_text(line.text, 5000 + n),
                                    "targets": ["all"],
                                    "emotion": line.emotion,
                                },
                                ensure_ascii=False,
                            ).encode(),
                            qos=1,
                        )
                    for n in range(len(corpus)):
                        for s in FILES:
                            events.wait(f"load-{n}", "finished", s, timeout=300.0)
                    loaded.append(daemon.status_kib("VmHWM") / 1024.0)
            except BaseException:
                progress(daemon.log_tail())
                raise
            finally:
                daemon.close()
    finally:
        broker.close()
        shutil.rmtree(workdir, ignore_errors=True)

    ready_ms = [t * 1000 for t in ready]
    first_ms = [t * 1000 for t in first]
    figs = [
        figure(
            BENCH,
            "start → READY=1",
            percentile(ready_ms, 50),
            "ms",
            ready_ms,
            target=2000.0,
            met=max(ready_ms) <= 2000.0,
            note="value = p50; met if every start was within the target; "
            "spawn of the process to the sd_notify datagram",
        ),
        figure(
            BENCH,
            "start → first announcement started",
            percentile(first_ms, 50),
            "ms",
            first_ms,
            note="value = p50; published right after READY, uncached, no lead-in or chime",
        ),
        figure(
            BENCH,
            "peak RSS idle (after READY)",
            max(idle),
            "MiB",
            idle,
            target=350.0,
            met=max(idle) <= 350.0,
            note="VmHWM; value = max over the starts",
        ),
        figure(
            BENCH,
            "peak RSS after the first announcement",
            max(after_first),
            "MiB",
            after_first,
            target=350.0,
            met=max(after_first) <= 350.0,
            note="VmHWM; value = max",
        ),
    ]
    if loaded:
        figs.append(
            figure(
                BENCH,
                "peak RSS under load (4 speakers, whole corpus)",
                loaded[0],
                "MiB",
                target=350.0,
                met=loaded[0] <= 350.0,
                note="VmHWM after every corpus text, uncached, played on four file speakers",
            )
        )
    return figs
