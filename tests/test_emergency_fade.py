"""An emergency interrupting a playing announcement on a real PortAudio device fades it out first.

The speaker is a ``sounddevice`` speaker on a *paced* ALSA device (tests/alsa.py): PortAudio
writes block at real time, so the first announcement really is playing when the emergency
arrives, and every sample PortAudio hands over is captured in order. The first
announcement opens with a steady 437 Hz tone (a configured chime file), so its level
before and during the fade-out is exact: speech has pauses in which a ramp cannot be seen.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from alsa import AlsaDevices  # noqa: F401
from test_scheduler import EventLog, wait_until

from announcer.audio.chimes import ChimeLibrary
from announcer.config import parse_config
from announcer.core.events import EventBus
from announcer.intake.parse import build
from announcer.playback.player import FADE_OUT_SECONDS
from announcer.playback.runtime import Runtime
from announcer.playback.scheduler import Scheduler
from announcer.playback.synthesizer import make_synthesizer
from announcer.sinks.base import create_sink
from announcer.spool.store import Spool

pytestmark = [pytest.mark.unit, pytest.mark.timeout(120)]

RATE = 24000
LSB = 1.0 / 32768
TONE_AMP = 0.5
TONE_HZ = 437.0  # not a multiple of 10 Hz: a 100 ms slice boundary is not a zero crossing


def write_tone(path: Path, seconds: float) -> None:
    t = np.arange(int(seconds * RATE)) / RATE
    tone = TONE_AMP * np.sin(2 * np.pi * TONE_HZ * t) * np.minimum(1.0, t / 0.01)
    sf.write(str(path), tone.astype(np.float32), RATE, subtype="FLOAT")


def find(x: np.ndarray, ref: np.ndarray, start: int, stop: int, atol: float) -> int:
    """First index in [start, stop) where ``x`` continues as ``ref`` (within ``atol``)."""
    head = ref[: int(0.1 * RATE)]
    for k in range(start, min(stop, len(x) - len(head))):
        if (
            abs(x[k + len(head) // 2] - head[len(head) // 2]) <= atol
            and np.max(np.abs(x[k : k + len(head)] - head)) <= atol
        ):
            return k
    raise AssertionError(f"reference not found in [{start}, {stop})")


def test_emergency_fades_the_playing_announcement_out_on_a_real_device(
    alsa_devices: AlsaDevices, tmp_path: Path
) -> None:  # noqa: F811
    device = alsa_devices.add_paced(rate=RATE, channels=1)
    write_tone(tmp_path / "tone.wav", 8.0)
    cfg = parse_config(f"""
engines: {{zh: {{type: embedded-zh}}}}
speakers:
  hall: {{type: sounddevice, device: {device.name}, samplerate: {RATE}, channels: 1, lead_in_ms: 0}}
chimes: {{tone: {tmp_path}/tone.wav}}
defaults: {{targets: [hall]}}
audio: {{end_chime: null}}
spool: {{path: {tmp_path}/spool.sqlite3}}
cache: {{directory: {tmp_path}/cache}}
""")
    log = EventLog()
    events = EventBus()
    events.subscribe(log)
    spool = Spool(cfg.spool.path)
    sinks = {"hall": create_sink("hall", cfg.speakers["hall"])}
    sched = Scheduler(Runtime(cfg, make_synthesizer(cfg), sinks, ChimeLibrary.from_config(cfg)), spool, events)
    sched.start()
    try:

        def say(**raw: object) -> None:
            ann = build(raw, cfg)
            assert spool.add(ann)
            sched.submit(ann)

        say(text="各位旅客请注意，开往北京的列车即将进站，请站在安全线以内。", id="long", chime="tone")
        log.wait("started", "long", "hall")
        wait_until(lambda: device.frames >= 1.0 * RATE, timeout=10)  # a second of it has been heard
        f0, t0 = device.frames, time.monotonic()
        time.sleep(0.5)
        heard = (device.frames - f0) / RATE
        assert heard == pytest.approx(time.monotonic() - t0, abs=0.15), "the device does not play in real time"

        at_alarm = device.frames
        say(text="着火了，请立即撤离。", id="fire", priority="emergency")
        log.wait("interrupted", "long", "hall")
        fire = log.wait("finished", "fire", "hall", timeout=30)
        sched.stop()  # not the replay of "long": only the cut matters here
        assert sched.wait_idle(30)
        fire_frames = round(fire["duration_s"] * RATE)
        tone = ChimeLibrary({"tone": tmp_path / "tone.wav"}).get("tone", RATE)
        alarm = ChimeLibrary().get("alarm", RATE)  # emergency, chime: true, no lead-in
        wait_until(lambda: device.frames >= at_alarm + fire_frames, timeout=10)
    finally:
        sched.shutdown(10)
        spool.close()

    x = device.samples()[:, 0]
    # the tone, sample for sample, from the start until the fade begins
    off = np.flatnonzero(np.abs(x[: len(tone)] - tone[: len(x)]) > 0.01)
    assert len(off), "the tone was never cut"
    fade_start = int(off[0])
    assert fade_start > at_alarm - RATE // 10, "the tone changed before the emergency arrived"
    assert (fade_start - at_alarm) / RATE < 0.35, "the interruption took too long to be heard"
    onset = find(x, alarm, fade_start - RATE // 100, fade_start + RATE // 2, atol=3 * LSB)
    cut_ms = (onset - fade_start) / RATE * 1000

    # the ramp: from the tone's level to ~0 within <= 60 ms, then at most one device buffer of
    # silence (the sink plays the fade to its end before aborting), then the alarm
    audible = np.flatnonzero(np.abs(x[fade_start:onset]) > 2 * LSB)
    fade_ms = (int(audible[-1]) + 1) / RATE * 1000 if len(audible) else 0.0
    assert FADE_OUT_SECONDS * 1000 * 0.6 <= fade_ms <= 60, f"fade-out lasted {fade_ms:.1f} ms"
    assert cut_ms <= fade_ms + 40, f"{cut_ms - fade_ms:.1f} ms of silence between the fade and the emergency"
    seg = x[fade_start - RATE // 100 : onset]
    ref = tone[fade_start - RATE // 100 : onset]
    strong = np.abs(ref) > 0.6 * TONE_AMP
    gain = seg[strong] / ref[strong]  # the fade's gain curve, where the tone is strong enough to read it
    assert gain[0] > 0.95
    assert np.all(np.diff(gain) <= 0.02), "the level went up during the fade"
    assert np.max(np.abs(x[onset - RATE // 500 : onset])) <= 0.05 * TONE_AMP, "not ~0 when the emergency starts"
    assert abs(x[onset - 1]) <= 2 * LSB
    # no hard cut: no step anywhere around the cut larger than the tone's own steepest step
    natural = TONE_AMP * 2 * np.pi * TONE_HZ / RATE
    jumps = np.abs(np.diff(x[fade_start - RATE // 20 : onset + 1]))  # up to the first sample of the alarm
    assert np.max(jumps) <= natural + 3 * LSB, f"max step {np.max(jumps):.4f} vs the tone's {natural:.4f}"
    assert abs(x[onset] - x[onset - 1]) < 0.01
    print(
        f"fade {fade_ms:.1f} ms, emergency after {cut_ms:.1f} ms, "
        f"heard {(fade_start - at_alarm) / RATE * 1000:.0f} ms after the emergency came, "
        f"max step {np.max(jumps):.4f} (tone's own {natural:.4f}), step at the cut {abs(x[onset] - x[onset - 1]):.5f}"
    )

    # then the emergency: its alarm chime sample for sample, then speech
    np.testing.assert_allclose(x[onset : onset + len(alarm)], alarm, atol=3 * LSB)
    speech = x[onset + len(alarm) : onset + fire_frames]
    assert len(speech) > RATE // 2 and float(np.sqrt(np.mean(speech**2))) > 0.02
    states = [(e["state"], e["id"]) for e in log.events if e.get("speaker") == "hall"]
    assert states[:4] == [("started", "long"), ("interrupted", "long"), ("started", "fire"), ("finished", "fire")]
