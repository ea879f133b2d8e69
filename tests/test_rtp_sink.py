"""The ``rtp`` speaker against real receivers: GStreamer and ffmpeg on loopback and on multicast groups
inside network namespaces (IPv4 and IPv6), plus a packet capture for the headers, timing and DSCP.

What is sent is decoded by the receiver exactly as the codec round trip of what was written
(G.711 and L16 are exact: ``tests/rtp_receivers.py`` has the reference). An emergency
interrupts an rtp speaker as fast as a sound device (the bound of ``test_emergency_fade``).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from rtp_receivers import (
    FfmpegReceiver,
    GstReceiver,
    Lan,
    PacketCapture,
    align,
    codec_roundtrip,
    free_udp_port,
    in_netns,
    lan,  # noqa: F401  (fixture)
)

from announcer.audio import to_pcm16
from announcer.config import parse_config
from announcer.sinks.base import Sink, create_sink

pytestmark = pytest.mark.timeout(120)


def signal(seconds: float, rate: int, seed: int = 1) -> np.ndarray:
    """Speech-like test audio: a gliding harmonic tone under a syllable envelope, plus a little noise."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 180 + 60 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    tone = sum(np.sin(k * phase) / k for k in range(1, 6))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    noise = np.random.default_rng(seed).normal(0, 0.01, len(t))
    return (0.25 * tone * env + noise).astype(np.float32)


def speaker(yaml: str) -> Sink:
    cfg = parse_config(f"speakers: {{s: {yaml}}}\ndefaults: {{targets: [s]}}\n")
    return create_sink("s", cfg.speakers["s"])


def play(sink: Sink, x: np.ndarray, rate: int, ann_id: str = "a1") -> dict:
    """One announcement through ``sink`` as the player writes it: 20 ms slices, then close and play-out."""
    stream = sink.open(ann_id, rate)
    n = int(0.02 * rate)
    for i in range(0, len(x), n):
        stream.write(x[i : i + n])
    details = stream.close()
    if stream.playing_until is not None:
        time.sleep(max(0.0, stream.playing_until - time.monotonic()))
    stream.played()
    return details


def assert_exact(sent: np.ndarray, got: np.ndarray, codec: str) -> None:
    ref = codec_roundtrip(to_pcm16(sent), codec)
    lag = align(ref, got)
    assert lag >= 0, f"received audio starts {-lag} samples into what was sent"
    part = got[lag : lag + len(ref)]
    assert len(part) == len(ref), f"{len(ref) - len(part)} samples missing"
    np.testing.assert_array_equal(part, ref)


@pytest.mark.parametrize(("codec", "rate", "pt"), [("pcmu", 8000, 0), ("pcma", 8000, 8), ("l16", 16000, 96)])
def test_gstreamer_decodes_exactly_what_was_sent(tmp_path: Path, codec: str, rate: int, pt: int) -> None:
    port = free_udp_port()
    sink = speaker(f"{{type: rtp, address: 127.0.0.1, port: {port}, codec: {codec}, sample_rate: {rate}}}")
    assert sink.preferred_rate(24000) == rate
    x = signal(1.5, rate)
    gst = GstReceiver(tmp_path / "got.wav", codec, rate, pt, port)
    try:
        details = play(sink, x, rate)
        got, got_rate = gst.stop()
    finally:
        gst.close()
        sink.close()
    assert got_rate == rate
    assert details["packets"] == -(-len(x) // (rate // 50))
    assert_exact(x, got, codec)


def test_packets_are_paced_marked_continuous_and_carry_the_dscp() -> None:
    port = free_udp_port()
    sink = speaker(f"{{type: rtp, address: 127.0.0.1, port: {port}, codec: pcmu, dscp: 46, latency_ms: 0}}")
    cap = PacketCapture(port)
    try:
        play(sink, signal(2.0, 8000), 8000, "first")
        time.sleep(0.3)
        play(sink, signal(1.0, 8000, seed=2), 8000, "second")
        cap.wait_quiet()
    finally:
        cap.close()
        sink.close()
    first, second = cap.talkspurts()
    assert (len(first), len(second)) == (100, 50)
    headers = [p.header for p in cap.packets]
    assert {h["ssrc"] for h in headers} == {headers[0]["ssrc"]}, "one SSRC for the speaker"
    assert {h["payload_type"] for h in headers} == {0} and {h["version"] for h in headers} == {2}
    assert [h["marker"] for h in headers] == [1] + [0] * 99 + [1] + [0] * 49, "marker on each announcement's first"
    seqs = [h["seq"] for h in headers]
    assert all((b - a) % 65536 == 1 for a, b in zip(seqs, seqs[1:])), "sequence numbers go on across announcements"
    ts = [h["timestamp"] for h in headers]
    assert all((b - a) % 2**32 == 160 for a, b in zip(ts[:99], ts[1:100])) and all(
        (b - a) % 2**32 == 160 for a, b in zip(ts[100:], ts[101:])
    )
    idle = second[0].arrived - first[-1].arrived  # the gap between the talkspurts, in the timestamps too
    gap_ts = (ts[100] - ts[99]) % 2**32
    assert abs(gap_ts / 8000 - idle) < 0.06, f"timestamp gap {gap_ts / 8000:.3f} s, arrival gap {idle:.3f} s"
    assert {p.dscp for p in cap.packets} == {46}
    for spurt in (first, second):
        arrivals = np.array([p.arrived for p in spurt])
        span = arrivals[-1] - arrivals[0]
        nominal = (len(spurt) - 1) * 0.02
        assert span >= 0.9 * nominal, f"{len(spurt)} packets in {span:.3f} s: sent in a burst"
        gaps = np.diff(arrivals) * 1000
        print(
            f"{len(spurt)} packets over {span:.3f} s (nominal {nominal:.3f}); inter-arrival ms: mean "
            f"{gaps.mean():.2f} std {gaps.std():.2f} p99 {np.percentile(gaps, 99):.1f} max {gaps.max():.1f}; "
            f"gap between announcements {idle * 1000:.0f} ms"
        )


@pytest.mark.parametrize(("codec", "rate"), [("l16", 24000), ("pcma", 8000)])
def test_ffmpeg_plays_the_stream_from_its_sdp(tmp_path: Path, codec: str, rate: int) -> None:
    """The SDP ``announcer speakers --sdp NAME`` prints is all ffmpeg needs."""
    port = free_udp_port()
    spec = f"{{type: rtp, address: 127.0.0.1, port: {port}, codec: {codec}, sample_rate: {rate}}}"
    (tmp_path / "announcer.yaml").write_text(f"speakers: {{paging: {spec}}}\n", encoding="utf-8")
    cli = [sys.executable, "-m", "announcer", "speakers", "-c", str(tmp_path / "announcer.yaml"), "--sdp", "paging"]
    sdp = subprocess.run(cli, capture_output=True, text=True, check=True).stdout
    assert f"m=audio {port} RTP/AVP" in sdp
    sink = speaker(spec)
    ff = FfmpegReceiver(sdp, tmp_path, port)
    x = signal(1.5, rate)
    try:
        play(sink, x, rate)
        got, got_rate = ff.wait()
    finally:
        ff.close()
        sink.close()
    assert got_rate == rate
    assert_exact(x, got, codec)


def test_g722_reaches_ffmpeg(tmp_path: Path) -> None:
    port = free_udp_port()
    sink = speaker(f"{{type: rtp, address: 127.0.0.1, port: {port}, codec: g722}}")
    sdp = sink.session_description()
    assert sdp is not None and "a=rtpmap:9 G722/8000" in sdp
    ff = FfmpegReceiver(sdp, tmp_path, port)
    x = signal(1.5, 16000)
    try:
        play(sink, x, 16000)
        got, got_rate = ff.wait()
    finally:
        ff.close()
        sink.close()
    assert got_rate == 16000
    ref = to_pcm16(x).astype(np.float64)
    lag = align(ref, got)
    part = got[lag : lag + len(ref)].astype(np.float64)
    corr = float(np.corrcoef(ref[: len(part)], part)[0, 1])
    assert corr > 0.98, f"G.722 round trip correlates {corr:.4f}"


@pytest.mark.parametrize(
    ("group", "codec", "rate", "pt"), [("239.1.1.10", "pcmu", 8000, 0), ("ff15::1:10", "l16", 16000, 96)]
)
def test_multicast_reaches_a_speaker_on_the_lan(
    lan: Lan,  # noqa: F811
    request: pytest.FixtureRequest,
    tmp_path: Path,
    group: str,
    codec: str,
    rate: int,
    pt: int,
) -> None:
    """IPv4 and IPv6 multicast across a veth pair: sent from namespace A with TTL 1, received in B."""
    port = 5004
    cfg = (
        f"{{type: rtp, address: '{group}', port: {port}, codec: {codec}, sample_rate: {rate}, "
        f"interface: {lan.va}, ttl: 1}}"
    )
    sink = in_netns(lan.a, lambda: speaker(cfg))
    gst = GstReceiver(tmp_path / "got.wav", codec, rate, pt, port, address=group, iface=lan.vb, netns=lan.b)
    request.addfinalizer(gst.close)  # also when what follows fails
    cap = in_netns(lan.b, lambda: PacketCapture(port, group=group, iface=lan.vb))
    x = signal(1.5, rate)
    try:
        assert in_netns(lan.a, sink.probe).reachable
        in_netns(lan.a, lambda: play(sink, x, rate))
        got, got_rate = gst.stop()
        cap.wait_quiet()
    finally:
        cap.close()
        gst.close()
        sink.close()
    assert got_rate == rate
    assert_exact(x, got, codec)
    assert len(cap.packets) == -(-len(x) // (rate // 50)) and {p.dscp for p in cap.packets} == {46}
    assert {p.ttl for p in cap.packets} == {1}, "TTL 1 / hop limit 1: it stays on this LAN"


def test_an_emergency_preempts_an_rtp_speaker(tmp_path: Path) -> None:
    """The playing announcement fades out and stops within the sound device's bound; the emergency follows."""
    from test_emergency_fade import TONE_AMP, write_tone
    from test_scheduler import EventLog

    from announcer.audio.chimes import ChimeLibrary
    from announcer.audio.g711 import ulaw_decode
    from announcer.core.events import EventBus
    from announcer.intake.parse import build
    from announcer.playback.runtime import Runtime
    from announcer.playback.scheduler import Scheduler
    from announcer.playback.synthesizer import make_synthesizer
    from announcer.spool.store import Spool

    port = free_udp_port()
    write_tone(tmp_path / "tone.wav", 8.0)
    cfg = parse_config(f"""
engines: {{zh: {{type: embedded-zh}}}}
speakers:
  paging: {{type: rtp, address: 127.0.0.1, port: {port}, codec: pcmu, lead_in_ms: 0}}
chimes: {{tone: {tmp_path}/tone.wav}}
defaults: {{targets: [paging]}}
audio: {{end_chime: null, target_lufs: null}}
spool: {{path: {tmp_path}/spool.sqlite3}}
cache: {{directory: {tmp_path}/cache}}
""")
    log = EventLog()
    events = EventBus()
    events.subscribe(log)
    spool = Spool(cfg.spool.path)
    sinks = {"paging": create_sink("paging", cfg.speakers["paging"])}
    sched = Scheduler(Runtime(cfg, make_synthesizer(cfg), sinks, ChimeLibrary.from_config(cfg)), spool, events)
    cap = PacketCapture(port)
    sched.start()
    try:

        def say(**raw: object) -> None:
            ann = build(raw, cfg)
            assert spool.add(ann)
            sched.submit(ann)

        say(text="各位旅客请注意，开往北京的列车即将进站。", id="long", chime="tone")
        log.wait("started", "long", "paging")
        time.sleep(1.0)
        at_alarm = time.monotonic()
        say(text="着火了，请立即撤离。", id="fire", priority="emergency")
        log.wait("interrupted", "long", "paging")
        log.wait("finished", "fire", "paging", timeout=30)
        sched.stop()
        assert sched.wait_idle(30)
        cap.wait_quiet()
    finally:
        sched.shutdown(10)
        spool.close()
        cap.close()
        sinks["paging"].close()
    spurts = cap.talkspurts()
    assert len(spurts) == 2, f"{len(spurts)} talkspurts"
    long, fire = spurts
    stopped = long[-1].arrived - at_alarm
    assert stopped < 0.35, f"the interrupted announcement went on for {stopped * 1000:.0f} ms"
    audio = ulaw_decode(np.frombuffer(b"".join(p.payload for p in long), np.uint8)).astype(np.float64) / 32768
    assert np.max(np.abs(audio[int(0.2 * 8000) : int(0.8 * 8000)])) > 0.8 * TONE_AMP, "the tone played at full level"
    tail = audio[-int(0.1 * 8000) :]
    assert np.max(np.abs(tail[-80:])) < 0.05 * TONE_AMP, "it ends in silence: faded out, not cut"
    started_fire = fire[0].arrived - long[-1].arrived
    print(
        f"interrupted {stopped * 1000:.0f} ms after the emergency came; the emergency's first packet "
        f"{started_fire * 1000:.0f} ms after its last"
    )
    states = [(e["state"], e["id"]) for e in log.events if e.get("speaker") == "paging"]
    assert states[:4] == [("started", "long"), ("interrupted", "long"), ("started", "fire"), ("finished", "fire")]
