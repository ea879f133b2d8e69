"""``python -m bench parts``: speed targets of single parts, measured here rather than asserted in tests.

* loudness meter: 10 s of audio at 48 kHz measured whole (BS.1770, numpy only); target ≤ 50 ms,
  peer: the same audio fed in 100 ms chunks (the streaming normaliser's use).
* spool ``add``: one committed announcement (WAL, ``synchronous=FULL``: one fsync each), on the
  MQTT thread before the broker is acknowledged; target ≤ 50 ms per add, in a temporary
  directory on the benchmark's file system.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from announcer.audio.loudness import LoudnessMeter, integrated_loudness
from announcer.core.announcement import Announcement
from announcer.spool.store import Spool

from .common import figure, progress

NAME = "parts"


def _loudness() -> list[dict[str, Any]]:
    x = np.random.default_rng(0).standard_normal(10 * 48000).astype(np.float32)
    integrated_loudness(x[:48000], 48000)  # the first call designs and caches the filter for the rate
    whole, chunked = [], []
    for _ in range(7):
        t0 = time.perf_counter()
        integrated_loudness(x, 48000)
        whole.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        meter = LoudnessMeter(48000)
        for i in range(0, len(x), 4800):
            meter.add(x[i : i + 4800])
        meter.integrated()
        chunked.append((time.perf_counter() - t0) * 1000)
    best = min(whole)
    return [
        figure(
            NAME,
            "loudness: 10 s at 48 kHz, whole",
            best,
            "ms",
            whole,
            target=50.0,
            met=best <= 50.0,
            note="value = best of 7",
        ),
        figure(
            NAME,
            "loudness: 10 s at 48 kHz, 100 ms chunks",
            min(chunked),
            "ms",
            chunked,
            peer="loudness: 10 s at 48 kHz, whole",
            ratio=min(chunked) / best,
            note="value = best of 7",
        ),
    ]


def _spool(n: int = 200) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-spool-", dir=Path.cwd()) as tmp:
        spool = Spool(Path(tmp) / "spool.sqlite3")
        try:
            now = time.time()
            times = []
            for i in range(n):
                ann = Announcement(
                    id=f"b{i}",
                    text="请注意。",
                    targets=("a",),
                    speakers=("a",),
                    received=now + i,
                    expires=now + i + 600,
                )
                t0 = time.perf_counter()
                spool.add(ann)
                times.append((time.perf_counter() - t0) * 1000)
        finally:
            spool.close()
    mean = sum(times) / len(times)
    return [
        figure(
            NAME,
            "spool add (committed, fsync)",
            mean,
            "ms",
            times,
            target=50.0,
            met=mean <= 50.0,
            note=f"value = mean of {n}; synchronous=FULL, a temporary directory under the current one",
        )
    ]


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    progress("parts: loudness meter")
    figures = _loudness()
    progress("parts: spool add")
    return figures + _spool()
