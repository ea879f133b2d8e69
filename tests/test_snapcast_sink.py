"""The ``snapcast`` speaker against a real snapserver and snapclient (``tests/snapcast_harness.py``).

The client plays music (the ``default`` stream) in real time (its file player); an announcement
switches its group to the announcer stream, is heard there at the announcement's volume, and
the group gets its music and its volume back after ``finished``, ``interrupted`` and
``cancelled``. Snapcast resyncs by a chunk now and then under load, so the capture is compared
window by window with a small re-alignment, not sample for sample over the whole announcement.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from snapcast_harness import MUSIC_AMP, MUSIC_HZ, RATE, Snapcast, windows_matching
from test_rtp_sink import signal
from test_scheduler import EventLog, wait_until

from announcer.config import parse_config
from announcer.sinks.base import create_sink

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def snap(tmp_path: Path) -> Iterator[Snapcast]:
    s = Snapcast(tmp_path / "snapcast")
    try:
        yield s
    finally:
        s.close()


def tone_level(x: np.ndarray, hz: float) -> float:
    """Amplitude of the ``hz`` component of ``x`` (mono)."""
    t = np.arange(len(x)) / RATE
    return float(2 * abs(np.mean(x * np.exp(-2j * np.pi * hz * t))))


def music_playing(device, seconds: float = 0.5) -> bool:  # type: ignore[no-untyped-def]
    x = device.samples()[-int(seconds * RATE) :, 0]
    return len(x) == int(seconds * RATE) and all(tone_level(x, hz) > 0.02 * MUSIC_AMP for hz in MUSIC_HZ)


def test_an_announcement_plays_on_the_group_at_its_volume_and_the_music_comes_back(snap: Snapcast) -> None:
    device = snap.add_client("kitchen")
    group = snap.group_of("kitchen")
    snap.rpc.call("Client.SetVolume", {"id": "kitchen", "volume": {"muted": False, "percent": 40}})
    wait_until(lambda: music_playing(device), timeout=15)
    cfg = parse_config(f"speakers: {{snap: {snap.speaker_yaml('[kitchen]')}}}\ndefaults: {{targets: [snap]}}\n")
    sink = create_sink("snap", cfg.speakers["snap"])
    assert sink.remote_volume and sink.preferred_rate(24000) == RATE
    reach = sink.probe()
    assert reach.reachable, reach.detail
    x = np.concatenate([np.zeros(int(0.15 * RATE), np.float32), signal(3.0, RATE)])
    stream = sink.open("a1", RATE)
    try:
        assert snap.group_of("kitchen")["stream_id"] == "announcer", "the group listens before the audio is written"
        stream.set_volume(1.0)
        assert snap.client("kitchen")["config"]["volume"]["percent"] == 100
        first = device.frames
        for i in range(0, len(x), RATE // 50):
            stream.write(x[i : i + RATE // 50])
        details = stream.close()
        assert stream.playing_until is not None
        time.sleep(max(0.0, stream.playing_until - time.monotonic()))
        stream.played()
    finally:
        sink.close()
    assert details == {"stream": "announcer", "groups": [group["id"]]}
    assert snap.group_of("kitchen")["stream_id"] == "default"
    assert snap.client("kitchen")["config"]["volume"] == {"muted": False, "percent": 40}
    got = np.round(device.samples()[first:, 0] * 32768).astype(np.int16)
    start, share = windows_matching(x, got)
    print(f"announcement found {start / RATE:.3f} s into the capture; {share:.0%} of its windows exact")
    assert share >= 0.9, f"only {share:.0%} of the announcement's 250 ms windows were heard as sent"
    wait_until(lambda: music_playing(device), timeout=10)


def test_the_groups_get_their_music_back_after_interrupted_and_cancelled(snap: Snapcast, tmp_path: Path) -> None:
    from announcer.audio.chimes import ChimeLibrary
    from announcer.core.events import EventBus
    from announcer.intake.parse import build
    from announcer.playback.runtime import Runtime
    from announcer.playback.scheduler import Scheduler
    from announcer.playback.synthesizer import make_synthesizer
    from announcer.spool.store import Spool

    device = snap.add_client("hall")
    wait_until(lambda: music_playing(device), timeout=15)
    cfg = parse_config(f"""
engines: {{zh: {{type: embedded-zh}}}}
speakers: {{snap: {snap.speaker_yaml()}}}
defaults: {{targets: [snap]}}
spool: {{path: {tmp_path}/spool.sqlite3}}
cache: {{directory: {tmp_path}/cache}}
""")
    log = EventLog()
    events = EventBus()
    events.subscribe(log)
    spool = Spool(cfg.spool.path)
    sinks = {"snap": create_sink("snap", cfg.speakers["snap"])}
    sched = Scheduler(Runtime(cfg, make_synthesizer(cfg), sinks, ChimeLibrary.from_config(cfg)), spool, events)
    sched.start()
    on = lambda: snap.group_of("hall")["stream_id"]  # noqa: E731
    try:

        def say(**raw: object) -> None:
            ann = build(raw, cfg)
            assert spool.add(ann)
            sched.submit(ann)

        say(text="短通知。", id="short", volume=0.5)
        log.wait("started", "short", "snap")
        assert on() == "announcer"
        log.wait("finished", "short", "snap", timeout=30)
        assert on() == "default", "finished: the music is back"
        assert snap.client("hall")["config"]["volume"]["percent"] == 100

        say(text="各位旅客请注意，开往北京的列车即将进站，请站在安全线以内，注意安全。", id="long")
        log.wait("started", "long", "snap")
        time.sleep(1.0)
        say(text="着火了，请立即撤离。", id="fire", priority="emergency")
        log.wait("interrupted", "long", "snap")
        assert on() == "announcer", "the emergency goes on in the same stream"
        log.wait("finished", "fire", "snap", timeout=30)
        replay = log.wait("started", "long", "snap")  # the first one; wait for the replay
        wait_until(lambda: len(log.of("started", "long", "snap")) == 2, timeout=30)
        assert replay and on() == "announcer"
        time.sleep(0.5)
        sched.stop()
        log.wait("cancelled", "long", "snap", timeout=30)
        wait_until(lambda: on() == "default", timeout=5)
        assert sched.wait_idle(30)
    finally:
        sched.shutdown(10)
        spool.close()
        sinks["snap"].close()
    wait_until(lambda: music_playing(device), timeout=10)
    states = [(e["state"], e["id"]) for e in log.events if e.get("speaker") == "snap"]
    assert states == [
        ("started", "short"),
        ("finished", "short"),
        ("started", "long"),
        ("interrupted", "long"),
        ("started", "fire"),
        ("finished", "fire"),
        ("started", "long"),
        ("cancelled", "long"),
    ]


def test_a_missing_stream_or_group_fails_with_what_to_fix(snap: Snapcast) -> None:
    from announcer.sinks.base import SinkError

    snap.add_client("attic")
    bad_stream = snap.speaker_yaml().replace("stream: announcer", "stream: paging")
    for yaml, words in (
        (bad_stream, ["no stream 'paging'", "source = tcp://"]),
        (snap.speaker_yaml("[cellar]"), ["no group or client 'cellar'"]),
    ):
        cfg = parse_config(f"speakers: {{snap: {yaml}}}\ndefaults: {{targets: [snap]}}\n")
        sink = create_sink("snap", cfg.speakers["snap"])
        with pytest.raises(SinkError) as err:
            sink.open("x", RATE)
        assert all(w in str(err.value) for w in words), str(err.value)
        assert sink.probe().reachable is False
    assert snap.group_of("attic")["stream_id"] == "default"
