"""Throughput: four speakers, announcements arriving faster than they can be spoken.

The daemon (engine ``zh``, embedded-zh 2 threads, 2 synthesis workers) drives four
``file`` speakers (WAV files; for synthesis they cost what a device costs, and they take
audio as fast as it is synthesized, so the queue drains at synthesis speed: the worst
case for synthesis). Corpus texts (with a fresh number in front: uncached) are published
round robin over the speakers, ``--throughput-rate`` per second in all (default 20: 40 announcements,
~200 s of speech, arrive within 2 s). The paced (real-time) ALSA devices of
``_stack.py`` were tried first: with four of them the players stalled in PortAudio's write
(not diagnosed; one paced device works, see ``e2e``). Measured:

* synthesis cost per second of audio: the daemon's CPU time (user + system, all threads,
  from ``/proc``) over the run / seconds of audio the four speakers finished — an upper
  bound for synthesis (it includes MQTT, the spool, the players); must stay well below 1;
* wall time of the run / seconds of audio per speaker (< 1: synthesis outruns four real-time
  speakers; a real-time speaker needs 1.0);
* the queue (``P/status`` ``queue``) over time: its maximum and its course;
* loss: every published id must reach ``finished`` on its speaker;
* the daemon's peak RSS (VmHWM) at the end (under this load).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import BenchError, OtherLoad, figure, find_corpus, load_corpus, progress

BENCH = "throughput"
SPEAKERS = ("s1", "s2", "s3", "s4")


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--throughput-per-speaker", type=int, default=10, metavar="N", help="announcements per speaker (default: 10)"
    )
    group.add_argument(
        "--throughput-rate",
        type=float,
        default=20.0,
        metavar="PER_S",
        help="arrivals per second over all speakers (default: 20: a burst)",
    )


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from ._stack import EventLog, unique_text
    from .e2e import Stack

    corpus = load_corpus(find_corpus(args.corpus))
    workdir = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    body = (
        f"engines:\n  zh: {{type: embedded-zh, threads: 2}}\n"
        f"defaults: {{engine: zh, targets: [s1]}}\n"
        f"cache: {{directory: {json.dumps(str(workdir / 'cache'))}}}\n"
        "speakers:\n" + "".join(f"  {s}: {{type: file, directory: {json.dumps(str(workdir / s))}}}\n" for s in SPEAKERS)
    )
    stack = Stack(workdir, body, captures={}, paced={}, with_speakers=False)
    try:
        status = EventLog(stack.client, stack.daemon.topic("status"))
        # warm-up: one announcement per speaker (opens each device once)
        warm = []
        for s in SPEAKERS:
            warm.append(f"warm-{s}")
            stack.say({"id": warm[-1], "text": "预热。", "targets": [s], "chime": False})
        for i, s in zip(warm, SPEAKERS):
            stack.events.wait(i, "finished", s)
        other = OtherLoad(pids=[stack.daemon.pid, stack.broker._proc.pid])
        other.start()
        cpu0 = stack.daemon.cpu_seconds()
        t_start = time.monotonic()
        ids: list[tuple[str, str]] = []
        n = 0
        progress(
            f"throughput: {args.throughput_per_speaker * len(SPEAKERS)} announcements at "
            f"{args.throughput_rate}/s onto {len(SPEAKERS)} file speakers"
        )
        for _ in range(args.throughput_per_speaker):
            for s in SPEAKERS:
                line = corpus[n % len(corpus)]
                ann_id = f"tp-{n}"
                due = t_start + n / args.throughput_rate
                time.sleep(max(0.0, due - time.monotonic()))
                stack.say(
                    {"id": ann_id, "text": unique_text(line.text, 1000 + n), "targets": [s], "emotion": line.emotion}
                )
                ids.append((ann_id, s))
                n += 1
        finished = [stack.events.wait(i, "finished", s, timeout=300.0) for i, s in ids]
        wall = time.monotonic() - t_start
        cpu = stack.daemon.cpu_seconds() - cpu0
        other_share = other.stop()
        hwm = stack.daemon.status_kib("VmHWM") / 1024.0
        depth = [(it.t - t_start, int(it.event.get("queue", 0))) for it in status.items if it.t >= t_start]
    except BaseException:
        if stack.daemon is not None:
            progress(stack.daemon.log_tail())
        raise
    finally:
        stack.close()
        shutil.rmtree(workdir, ignore_errors=True)

    audio = sum(float(it.event.get("duration_s", 0.0)) for it in finished)
    lost = len(ids) - len(finished)
    if not audio:
        raise BenchError("throughput: no audio finished")
    course = _course(depth, wall)
    figs = [
        figure(
            BENCH,
            "daemon CPU per second of audio",
            cpu / audio,
            "s/s",
            target=0.5,
            met=cpu / audio <= 0.5,
            note=f"{cpu:.1f} CPU s for {audio:.1f} s of audio on {len(SPEAKERS)} speakers (upper bound for "
            f"synthesis); target 'well below 1' taken as 0.5",
        ),
        figure(
            BENCH,
            "announcements finished",
            float(len(finished)),
            "",
            note=f"of {len(ids)} published; lost: {lost}",
            target=None,
        ),
        figure(BENCH, "lost announcements", float(lost), "", target=0.0, met=lost == 0),
        figure(
            BENCH,
            "queue depth, maximum",
            float(max((d for _, d in depth), default=0)),
            "",
            note=f"P/status queue over time (s: depth): {course}",
        ),
        figure(
            BENCH,
            "wall time / audio per speaker",
            wall / (audio / len(SPEAKERS)),
            "x",
            note=f"{wall:.1f} s from the first publish to the last finished for {audio / len(SPEAKERS):.1f} s "
            f"of audio per speaker (< 1: synthesis keeps ahead of four real-time speakers)",
        ),
        figure(
            BENCH,
            "daemon peak RSS under load",
            hwm,
            "MiB",
            target=350.0,
            met=hwm <= 350.0,
            note="VmHWM at the end of the run",
        ),
    ]
    if other_share is not None:
        figs.append(
            figure(
                BENCH,
                "CPU used by other processes",
                100.0 * other_share,
                "%",
                note="during the run, share of all CPUs (this process, the daemon, mosquitto excluded)",
            )
        )
    return figs


def _course(depth: list[tuple[float, int]], wall: float, step: float = 5.0) -> str:
    """The last depth reported at or before every ``step`` seconds."""
    out = []
    t = 0.0
    while t <= wall + step:
        last = [d for ts, d in depth if ts <= t]
        out.append(f"{t:.0f}: {last[-1] if last else 0}")
        t += step
    return ", ".join(out)
