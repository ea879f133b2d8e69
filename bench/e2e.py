"""End-to-end latency: MQTT publish → the daemon's ``started`` event → the first sound on an ALSA device.

A real mosquitto, the daemon as a subprocess (``announcer run``, engines ``zh``
(embedded-zh, 2 threads) and ``espeak`` (voice cmn)), its speakers ``sounddevice`` on
ALSA devices defined by ``bench/_stack.py``; the corpus texts are published one at a
time (QoS 1; the clock starts before the publish call) and each is waited for
(``finished``) before the next.

* ``bare`` (capture device, ``lead_in_ms: 0``, announcements with ``chime: false``): the
  first sample handed to the device is the first sample of speech, so ``started`` measures
  what synthesis and the daemon cost. **The targets are checked here**: uncached (a fresh
  cache directory, each text's first time) and cached (the same texts again).
* ``chimed`` (capture device, the default 150 ms lead-in, the default chime): the
  installation's default. ``started`` fires when the lead-in silence is handed over,
  before any synthesis (the chime and the lead-in cover it); "first sound" is the chime's
  first sample.
* First sound: the capture file is polled every 2 ms for the first sample above -60 dBFS.
  The ALSA ``null`` slave is not real time, so this is when PortAudio and the ``file``
  plugin flushed it, not when a loudspeaker would sound.
* The engine in this process (the same texts, ``clauses`` → first piece of
  ``synthesize_clause_stream``, as ``bench engine``), interleaved text by text with the
  uncached publishes, and per text the daemon's overhead: started − engine first audio.
* ``espeak`` through the same path (``bare``, each text's first time): a floor for synthesis.
* Emergency preemption on ``live``, a **paced** device (real time, see ``_stack.py``,
  ``lead_in_ms: 0``): an uncached normal announcement of three corpus sentences plays; 1 s
  after its ``started`` an uncached emergency arrives (default chime: the alarm). Measured
  from its publish to its ``started`` event (the target) and to its first sample played by
  the paced device (the alarm chime; includes the ≤ 85 ms pipe, the stand-in for a sound
  card's buffer). The emergency goes on in the interrupted stream behind a 50 ms fade-out
  (no new open), so the alarm's first sample is found by its shape in what the device
  played after the publish (``find_chime``), and timed with the device's per-sample play
  times; the fade-out began playing 50 ms of samples before it.
* ``--e2e-broker-defaults``: mosquitto with its defaults (Nagle on) instead of the
  recommended ``set_tcp_nodelay true``; run both to see what Nagle's algorithm costs.

Targets (issue 9, p50): started ≤ 150 ms uncached, ≤ 30 ms cached; started ≤ 1.5 × engine
first audio + 30 ms; emergency started ≤ 150 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from .common import (
    BenchError,
    OtherLoad,
    figure,
    find_corpus,
    load_corpus,
    progress,
)

BENCH = "e2e"
TARGET_UNCACHED_MS = 150.0
TARGET_CACHED_MS = 30.0
TARGET_EMERGENCY_MS = 150.0
OVERHEAD_FACTOR, OVERHEAD_MS = 1.5, 30.0


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--e2e-emergencies",
        type=int,
        default=6,
        metavar="N",
        help="emergency preemptions to measure (default: 6; each takes ~6 s of real time)",
    )
    group.add_argument(
        "--e2e-broker-defaults",
        action="store_true",
        help="run mosquitto with its defaults (Nagle on) instead of the recommended "
        "set_tcp_nodelay true (config/mosquitto.conf.example)",
    )
    group.add_argument("--e2e-keep", action="store_true", help="keep the work directory (daemon log, captures)")


def _ms(a: float, b: float) -> float:
    return (b - a) * 1000.0


class Stack:
    """Broker, devices, daemon, event log: started together, closed together."""

    def __init__(
        self,
        workdir: Path,
        body: str,
        captures: dict[str, int | None],
        paced: dict[str, int | None],
        nodelay: bool = False,
        with_speakers: bool = True,
    ) -> None:
        from ._stack import CaptureWatch, Daemon, Devices, EventLog, start_broker

        self.workdir = workdir
        self.broker = start_broker(workdir, nodelay)
        self.devices = Devices(workdir / "alsa")
        self.watch = CaptureWatch()
        self.daemon = None
        try:
            speakers = []
            for name, lead in captures.items():
                self.devices.add_capture(name)
                speakers.append(f"  {name}: {self.devices.speaker_config(name, lead)}")
            for name, lead in paced.items():
                self.devices.add_paced(name)
                speakers.append(f"  {name}: {self.devices.speaker_config(name, lead)}")
            if with_speakers:
                body += "speakers:\n" + "\n".join(speakers) + "\n"
            self.daemon = Daemon(workdir / "daemon", self.broker, body, env=self.devices.env)
            self.daemon.spawn()
            self.ready_at = self.daemon.wait_ready()
            self.client = self.broker.client()
            # the instrument must not add Nagle's delay to its own publishes (a PUBACK it just sent
            # would hold the next PUBLISH until the broker's delayed ACK, up to 40 ms)
            self.client.paho.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.events = EventLog(self.client, self.daemon.topic("events"))
        except BaseException:
            self.close()
            raise

    def say(self, payload: dict[str, Any]) -> float:
        """Publish (QoS 1, wait for the PUBACK); returns the time just before the publish call."""
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        t = time.monotonic()
        self.client.publish(self.daemon.topic("say"), data, qos=1)
        return t

    def close(self) -> None:
        if self.daemon is not None:
            self.daemon.close()
        self.watch.close()
        self.devices.close()
        self.broker.close()


def _new_id(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}"


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from announcer.audio.chimes import ChimeLibrary
    from announcer.core.errors import EngineUnavailable
    from announcer.engines.base import create_engine, engine_module

    from .engine import _jobs, render

    corpus = load_corpus(find_corpus(args.corpus))
    texts = [line.text for line in corpus]
    jobs = _jobs(corpus)
    workdir = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    cache = workdir / "cache"
    rng = random.Random(9)
    progress(f"e2e: work directory {workdir}")

    engine = create_engine("bench-e2e-zh", engine_module("embedded-zh").Config(type="embedded-zh", threads=2), None)
    try:
        engine.load()
    except EngineUnavailable as exc:
        raise BenchError(str(exc)) from None
    for job in jobs:  # warm-up, as the daemon's own warm-up at load
        render(engine, job)

    body = (
        f"engines:\n  zh: {{type: embedded-zh, threads: 2}}\n  espeak: {{type: espeak, voice: cmn}}\n"
        f"defaults: {{engine: zh, targets: [bare]}}\n"
        f"cache: {{directory: {json.dumps(str(cache))}}}\n"
    )
    stack = Stack(
        workdir, body, captures={"bare": 0, "chimed": None}, paced={"live": 0}, nodelay=not args.e2e_broker_defaults
    )
    other = OtherLoad(pids=[stack.daemon.pid, stack.broker._proc.pid])
    try:
        ev, watch = stack.events, stack.watch
        bare, chimed = stack.devices.captures["bare"], stack.devices.captures["chimed"]

        def one(payload: dict[str, Any], capture: Path | None) -> tuple[float, float | None, dict[str, Any]]:
            """(publish→started ms, publish→first sound ms or None, started event); waits for finished."""
            ann_id = payload.setdefault("id", _new_id("e2e"))
            if capture is not None:
                watch.arm(capture)
            t0 = stack.say(payload)
            started = ev.wait(ann_id, "started")
            sound = watch.wait(capture, 30.0) if capture is not None else None
            ev.wait(ann_id, "finished", timeout=120.0)
            return _ms(t0, started.t), (None if sound is None else _ms(t0, sound)), started.event

        progress("e2e: warming up the daemon's path")
        for eng in ("zh", "espeak", "zh"):
            one({"text": f"预热第{rng.randint(100, 999)}次。", "engine": eng, "chime": False}, bare)

        other.start()
        progress(f"e2e: {len(texts)} texts uncached (zh), the in-process engine interleaved")
        r: dict[str, list[float]] = {
            k: []
            for k in (
                "engine",
                "uncached",
                "uncached sound",
                "uncached internal",
                "overhead",
                "cached",
                "cached sound",
                "chimed",
                "chimed sound",
                "espeak",
                "espeak sound",
            )
        }
        for job, text in zip(jobs, texts):
            r["engine"].append(render(engine, job)[0] * 1000.0)
            started, sound, event = one({"text": text, "chime": False}, bare)
            r["uncached"].append(started)
            r["uncached internal"].append(float(event.get("latency_ms", 0)))
            r["overhead"].append(started - r["engine"][-1])
            if sound is not None:
                r["uncached sound"].append(sound)
        progress("e2e: the same texts cached")
        for text in texts:
            started, sound, _ = one({"text": text, "chime": False}, bare)
            r["cached"].append(started)
            if sound is not None:
                r["cached sound"].append(sound)
        progress("e2e: chimed speaker (default lead-in and chime)")
        for text in texts:
            started, sound, _ = one({"text": text, "targets": ["chimed"]}, chimed)
            r["chimed"].append(started)
            if sound is not None:
                r["chimed sound"].append(sound)
        progress("e2e: espeak through the daemon")
        for text in texts:
            started, sound, _ = one({"text": text, "chime": False, "engine": "espeak"}, bare)
            r["espeak"].append(started)
            if sound is not None:
                r["espeak sound"].append(sound)

        progress(f"e2e: {args.e2e_emergencies} emergency preemptions on the paced device (real time)")
        emergency_texts = [line.text for line in corpus if line.priority == "emergency"] or texts[:1]
        live = stack.devices.paced["live"]
        pre_started: list[float] = []
        pre_sound: list[float] = []
        pre_interrupted: list[float] = []
        pre_fade: list[float] = []
        match_lsb: list[float] = []
        alarm = ChimeLibrary().get("alarm", live.rate)
        for n in range(args.e2e_emergencies):
            long_id, em_id = _new_id("long"), _new_id("emergency")
            long_text = "".join(unique_text_of(rng, t) for t in rng.sample(texts, 3))
            stack.say({"id": long_id, "text": long_text, "targets": ["live"], "chime": False})
            ev.wait(long_id, "started")
            time.sleep(1.0 + rng.random() * 0.1)
            t0 = stack.say(
                {
                    "id": em_id,
                    "text": unique_text_of(rng, emergency_texts[n % len(emergency_texts)]),
                    "targets": ["live"],
                    "priority": "emergency",
                }
            )
            inter = ev.wait(long_id, ("interrupted", "finished"))
            started = ev.wait(em_id, "started")
            if inter.event["state"] != "interrupted":
                raise BenchError(f"the emergency did not interrupt {long_id}: {inter.event}")
            stack.client.publish(stack.daemon.topic("stop", "live"), b'{"priority_below": "emergency"}', qos=1)
            pre_started.append(_ms(t0, started.t))
            pre_interrupted.append(_ms(t0, inter.t))
            ev.wait(em_id, "finished", timeout=120.0)
            found = find_chime(live, alarm, t0)
            if found is None:
                progress(f"e2e: emergency {n + 1}: the alarm chime was not found in what the device played")
            else:
                t_alarm, t_fade, error = found
                pre_sound.append(_ms(t0, t_alarm))
                if t_fade is not None:
                    pre_fade.append(_ms(t0, t_fade))
                match_lsb.append(error)
        other_share = other.stop()
    except BaseException:
        if stack.daemon is not None:
            progress(stack.daemon.log_tail())
        raise
    finally:
        stack.close()
        engine.close()
        if args.e2e_keep:
            progress(f"e2e: kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    return _figures(
        r,
        pre_started,
        pre_sound,
        pre_interrupted,
        pre_fade,
        match_lsb,
        other_share,
        nodelay=not args.e2e_broker_defaults,
    )


MATCH_SECONDS = 0.1  # the part of the chime matched: its first 100 ms
MATCH_CORRELATION = 0.999  # normalised correlation that counts as "the chime starts here"


def find_chime(device: Any, chime: Any, t0: float) -> tuple[float, float | None, float] | None:
    """Where ``chime`` begins in what ``device`` (a paced device) played after ``t0``.

    The emergency continues in the interrupted stream (no new open marks it), so its chime is
    found by its shape: the first offset after ``t0`` where the played samples correlate with
    the chime's first ``MATCH_SECONDS`` (normalised, so the speaker's gain does not matter) at
    ≥ ``MATCH_CORRELATION``, refined to the best offset nearby. The alarm repeats its two-tone
    pair, so the *first* such offset is its beginning. Returns (when the chime's first sample
    was played, when the fade-out before it began playing (``FADE_OUT_SECONDS`` earlier, None
    if the stream has no such lead), the largest difference from the gain-scaled chime in LSB
    over the matched part).
    """
    import numpy as np

    from announcer.playback.player import FADE_OUT_SECONDS

    played = device.samples()[:, 0].astype(np.float64)
    start = device.frame_at(t0)
    x = played[start:]
    m = int(MATCH_SECONDS * device.rate)
    template = np.asarray(chime[:m], np.float64)
    if len(x) < m or not np.any(template):
        return None
    n_fft = 1 << (len(x) + m).bit_length()
    dot = np.fft.irfft(np.fft.rfft(x, n_fft) * np.conj(np.fft.rfft(template, n_fft)), n_fft)[: len(x) - m + 1]
    energy = np.convolve(x * x, np.ones(m), "valid")
    corr = dot / np.sqrt(np.maximum(energy, 1e-12) * float(template @ template))
    hits = np.flatnonzero(corr >= MATCH_CORRELATION)
    if not hits.size:
        return None
    first = int(hits[0])
    near = corr[first : first + int(0.01 * device.rate)]
    k = first + int(np.argmax(near))
    window = x[k : k + m]
    gain = float(window @ template) / float(template @ template)
    error = float(np.max(np.abs(window - gain * template))) * 32768.0
    frame = start + k
    t_chime = device.played_at(frame)
    if t_chime is None:
        return None
    fade_frames = int(FADE_OUT_SECONDS * device.rate)
    t_fade = device.played_at(frame - fade_frames) if frame - fade_frames >= start else None
    return t_chime, t_fade, error


def unique_text_of(rng: random.Random, text: str) -> str:
    from ._stack import unique_text

    return unique_text(text, rng.randint(100, 9999))


def _p50(values: list[float]) -> float:
    from .common import percentile

    return percentile(values, 50)


def _figures(
    r: dict[str, list[float]],
    pre_started: list[float],
    pre_sound: list[float],
    pre_interrupted: list[float],
    pre_fade: list[float],
    match_lsb: list[float],
    other_share: float | None,
    nodelay: bool = True,
) -> list[dict[str, Any]]:
    figs: list[dict[str, Any]] = []
    broker = "mosquitto set_tcp_nodelay true" if nodelay else "mosquitto defaults (Nagle on)"

    def add(
        name: str, samples: list[float], note: str, target: float | None = None, peer: str | None = None
    ) -> dict[str, Any] | None:
        if not samples:
            return None
        f = figure(BENCH, name, _p50(samples), "ms", samples, note=f"value = p50; {note}; {broker}")
        if target is not None:
            f.update(target=target, met=f["p50"] <= target)
        figs.append(f)
        return f

    add(
        "zh uncached: publish → started",
        r["uncached"],
        "speaker without lead-in or chime: started = first speech sample handed to the device",
        TARGET_UNCACHED_MS,
    )
    add(
        "zh uncached: publish → first sound",
        r["uncached sound"],
        "first sample above -60 dBFS in the ALSA capture (polled every 2 ms; not real time)",
    )
    add(
        "zh uncached: started latency_ms (daemon)",
        r["uncached internal"],
        "the event's own figure: MQTT message received → first samples handed to the sink",
    )
    eng = add(
        "engine first audio (in process)",
        r["engine"],
        "embedded-zh 2 threads, same texts, interleaved with the publishes; no cache",
    )
    if eng is not None and r["uncached"]:
        e2e, engine_p50 = _p50(r["uncached"]), eng["p50"]
        limit = OVERHEAD_FACTOR * engine_p50 + OVERHEAD_MS
        figs.append(
            figure(
                BENCH,
                "zh uncached started / engine first audio",
                e2e / engine_p50,
                "x",
                note=f"p50 / p50; target: started p50 ≤ {OVERHEAD_FACTOR} × engine p50 + "
                f"{OVERHEAD_MS:.0f} ms = {limit:.0f} ms: {'met' if e2e <= limit else 'NOT met'} "
                f"({e2e:.0f} ms)",
            )
        )
        figs[-1].update(met=e2e <= limit)
    add(
        "daemon overhead: started − engine first audio",
        r["overhead"],
        "per text: the daemon path (MQTT, parse, spool, queue, render hand-over, sink open) plus "
        "synthesis in another process",
    )
    add("zh cached: publish → started", r["cached"], "same texts again: every clause from the cache", TARGET_CACHED_MS)
    add("zh cached: publish → first sound", r["cached sound"], "capture, as above")
    add(
        "chimed (defaults): publish → started",
        r["chimed"],
        "150 ms lead-in + chime: started fires when the lead-in silence is handed over, before synthesis",
    )
    add(
        "chimed (defaults): publish → first sound (chime)",
        r["chimed sound"],
        "the chime's first sample; the ALSA null device writes the lead-in at once (not real time)",
    )
    add("espeak uncached: publish → started", r["espeak"], "the same daemon path with espeak (cmn): a floor")
    add("espeak uncached: publish → first sound", r["espeak sound"], "capture, as above")
    add(
        "emergency preemption: publish → started",
        pre_started,
        "paced (real-time) device; an uncached emergency interrupting a playing announcement",
        TARGET_EMERGENCY_MS,
    )
    add(
        "emergency preemption: publish → fade-out begins playing",
        pre_fade,
        "the interrupted announcement's 50 ms fade-out, its first sample consumed by the paced device "
        "(the alarm's start − 50 ms, same stream)",
    )
    add(
        "emergency preemption: publish → first sound played",
        pre_sound,
        "the alarm chime's first sample consumed by the paced device, found by its shape inside the "
        "continuing stream (includes ≤ 85 ms of pipe)"
        + (f"; match ≤ {max(match_lsb):.1f} LSB from the gain-scaled chime" if match_lsb else ""),
    )
    add(
        "emergency preemption: publish → interrupted event",
        pre_interrupted,
        "the interrupted announcement's event (after its fade-out is written; the stream goes on)",
    )
    if other_share is not None:
        figs.append(
            figure(
                BENCH,
                "CPU used by other processes",
                100.0 * other_share,
                "%",
                note="during the measurements, share of all CPUs (this process, the daemon and mosquitto excluded)",
            )
        )
    by = {f["name"]: f for f in figs}
    for a, b in (
        ("espeak uncached: publish → started", "zh uncached: publish → started"),
        ("zh cached: publish → started", "zh uncached: publish → started"),
    ):
        if a in by and b in by and by[b]["value"]:
            by[a].update(peer=b, ratio=by[a]["value"] / by[b]["value"])
    from .common import _ordered

    return [_ordered(f) for f in figs]
