"""``python -m bench rtp``: how evenly the ``rtp`` speaker paces its packets, and whether it drifts.

An announcement of ``--rtp-seconds`` (default 60; the issue's 10 minutes: ``--rtp-seconds 600``)
of PCMU is written to an ``rtp`` speaker as the player writes it (20 ms slices), sent to a UDP
socket on loopback that timestamps each packet on arrival. Figures: the inter-arrival time's
standard deviation, p99 and maximum, the RFC 3550 interarrival jitter (its mean), the drift
(arrival span minus RTP timestamp span, per hour: what a receiver's clock sees), and how often
the machine stalled the sender past ``RESYNC_SECONDS`` or the writer fell behind (silence filled).

Peer, in the same run (``--rtp-peer-seconds``, default 60: drift is a rate): the usual naive
sender, ``sleep(ptime)`` between packets, whose per-packet overhead accumulates into drift
(the reason the speaker paces from ``t0 + i * ptime`` on the monotonic clock).
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from typing import Any

import numpy as np

from announcer.config import parse_config
from announcer.sinks.base import create_sink
from announcer.sinks.rtp_codecs import RtpState

from .common import add_peer_ratios, figure, progress

NAME = "rtp"
PTIME = 0.02


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--rtp-seconds", type=float, default=60.0, help="length of the paced stream (default 60)")
    group.add_argument("--rtp-peer-seconds", type=float, default=60.0, help="length of the naive peer's (default 60)")


class _Arrivals:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.times: list[float] = []
        self.timestamps: list[int] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(2048)
            except (TimeoutError, OSError):
                continue
            self.times.append(time.monotonic())
            self.timestamps.append(int.from_bytes(data[4:8], "big"))

    def close(self) -> None:
        time.sleep(0.3)
        self._stop = True
        self._thread.join(2)
        self.sock.close()


def _stats(name: str, arrivals: _Arrivals, media_seconds: float) -> list[dict[str, Any]]:
    t = np.array(arrivals.times)
    gaps = np.diff(t) * 1000
    ts = np.array(arrivals.timestamps, dtype=np.float64)
    transit = t - (ts - ts[0]) / 8000  # RFC 3550 6.4.1: D = difference of relative transit times
    d = np.abs(np.diff(transit)) * 1000
    jitter = np.zeros(len(d))
    j = 0.0
    for i, x in enumerate(d):
        j += (x - j) / 16
        jitter[i] = j
    span = t[-1] - t[0]
    drift = (span - (ts[-1] - ts[0]) / 8000) / max(span, 1e-9) * 3600 * 1000
    return [
        figure(NAME, f"{name}: inter-arrival std", float(np.std(gaps)), "ms", list(gaps), note=f"{len(t)} packets"),
        figure(NAME, f"{name}: inter-arrival p99", float(np.percentile(gaps, 99)), "ms"),
        figure(NAME, f"{name}: inter-arrival max", float(np.max(gaps)), "ms"),
        figure(NAME, f"{name}: RFC 3550 jitter (mean)", float(np.mean(jitter)), "ms"),
        figure(NAME, f"{name}: drift", float(drift), "ms/h", note="arrival span minus timestamp span, per hour"),
    ]


def _speaker(seconds: float) -> list[dict[str, Any]]:
    rx = _Arrivals()
    cfg = parse_config(f"speakers: {{p: {{type: rtp, address: 127.0.0.1, port: {rx.port}, codec: pcmu}}}}\n")
    sink = create_sink("p", cfg.speakers["p"])
    x = (0.2 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * 8000)) / 8000)).astype(np.float32)
    stream = sink.open("bench", 8000)
    for i in range(0, len(x), 160):
        stream.write(x[i : i + 160])
    stream.close()
    sink.close()
    rx.close()
    name = "speaker (t0 + i*ptime)"
    return [
        *_stats(name, rx, seconds),
        figure(NAME, f"{name}: silence packets (writer behind)", float(getattr(stream, "filled", 0)), "packets"),
        figure(NAME, f"{name}: stalls over 0.5 s (clock restarted)", float(getattr(stream, "stalls", 0)), "times"),
    ]


def _naive(seconds: float) -> list[dict[str, Any]]:
    rx = _Arrivals()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    state = RtpState(0, 8000)
    payload = bytes(160)
    for i in range(int(seconds / PTIME)):
        sock.sendto(state.packet(payload, 160, marker=i == 0), ("127.0.0.1", rx.port))
        time.sleep(PTIME)
    sock.close()
    rx.close()
    return _stats("peer: sleep(ptime) per packet", rx, seconds)


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    seconds = float(getattr(args, "rtp_seconds", 60.0))
    peer_seconds = float(getattr(args, "rtp_peer_seconds", 60.0))
    progress(f"rtp: {seconds:g} s through the speaker, then {peer_seconds:g} s through the naive peer")
    figures = _speaker(seconds) + _naive(peer_seconds)
    peer_of = {}
    for f in figures:
        if f["name"].startswith("speaker") and "packets" not in f["unit"] and f["unit"] != "times":
            peer_of[f["name"]] = "peer: sleep(ptime) per packet" + f["name"].split(")", 1)[1]
    add_peer_ratios(figures, peer_of)
    return figures
