"""One zone, one speaker of each type: a sound card, an rtp group, a Snapcast group and a Home Assistant player.

The daemon runs as a process. The sound card is an ALSA FIFO device played in real time
(``tests/alsa.py``), the rtp speaker sends to a packet capture on loopback, the Snapcast
speaker to a real snapserver with a snapclient (``tests/snapcast_harness.py``), the Home
Assistant player is the stand-in of Home Assistant's API (``tests/ha_standin.py``) in the
fast lane and a real Home Assistant in the slow lane. One announcement to the zone: each
speaker says ``started`` and ``finished`` with its own fields, and each really got the audio.
``announcer speakers`` lists all four with their type, reachable.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from alsa import FifoSpeakers
from broker import Broker, TestClient
from daemon_proc import DaemonProc, Events, new_id
from ha_real import home_assistant  # noqa: F401  (fixture, slow lane)
from ha_standin import TOKEN, HaStandIn
from rtp_receivers import PacketCapture, free_udp_port
from snapcast_harness import MUSIC_AMP, MUSIC_HZ, RATE, Snapcast
from test_snapcast_sink import tone_level

pytestmark = pytest.mark.timeout(900)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[FifoSpeakers]:
    f = FifoSpeakers(tmp_path / "alsa", count=1)
    f.readers[1].pace(1.0)
    yield f
    f.close()


@pytest.mark.parametrize("home_assistant_kind", ["stand-in", pytest.param("real", marks=pytest.mark.slow)])
def test_one_announcement_finishes_on_a_speaker_of_each_type(
    home_assistant_kind: str,
    request: pytest.FixtureRequest,
    shared_broker: Broker,
    tmp_path: Path,
    announcer_cache: Path,
    client: TestClient,
    fifo: FifoSpeakers,
) -> None:
    if home_assistant_kind == "real":
        from ha_real import TEST_SPEAKER

        real = request.getfixturevalue("home_assistant")
        ha_url, ha_token, entity, standin = real.url, real.token, TEST_SPEAKER, None
    else:
        standin = HaStandIn()
        request.addfinalizer(standin.close)
        ha_url, ha_token, entity = standin.url, TOKEN, "media_player.kitchen"
    snap = Snapcast(tmp_path / "snapcast")
    request.addfinalizer(snap.close)
    snap_client = snap.add_client("lobby")
    rtp_port = free_udp_port()
    capture = PacketCapture(rtp_port)
    request.addfinalizer(capture.close)
    http_port = free_port()
    speakers = {
        "card": fifo.speaker_yaml(1),
        "paging": f"{{type: rtp, address: 127.0.0.1, port: {rtp_port}, codec: pcmu}}",
        "multiroom": snap.speaker_yaml(),
        "player": f"{{type: homeassistant, entity_id: {entity}, end_margin_ms: 300}}",
    }
    d = DaemonProc(
        shared_broker, tmp_path / "daemon", announcer_cache, env={**fifo.env, "HA_TOKEN": ha_token}, speakers=speakers
    )
    d.patch_config(
        {
            "homeassistant": {"enabled": False, "url": ha_url, "token": "${HA_TOKEN}"},
            "http": {"enabled": True, "port": http_port},
            "zones": {"everywhere": list(speakers)},
        }
    )
    listing = subprocess.run(
        [sys.executable, "-m", "announcer", "speakers", "-c", str(d.config_path)],
        capture_output=True,
        text=True,
        env={**os.environ, **fifo.env, "HA_TOKEN": ha_token},
        timeout=60,
    )
    assert listing.returncode == 0, listing.stdout + listing.stderr
    lines = {line.split()[0]: line.split()[1:3] for line in listing.stdout.splitlines()}
    assert lines["card"] == ["sounddevice", "reachable"]
    assert lines["paging"] == ["rtp", "reachable"]
    assert lines["multiroom"] == ["snapcast", "reachable"]
    assert lines["player"] == ["homeassistant", "reachable"]

    events = Events(client.collect(d.topic("events")))
    fed_before = fifo.readers[1].bytes
    snap_before = snap_client.frames
    try:
        d.start()
        ann = new_id("zone")
        client.publish(
            d.topic("say"), f'{{"id": "{ann}", "text": "各位请注意，会议马上开始。", "targets": ["everywhere"]}}'
        )
        done = events.wait_done([ann], list(speakers), timeout=120)
        sdp = httpx.get(f"http://127.0.0.1:{http_port}/speakers/paging/sdp", timeout=10)
        not_rtp = httpx.get(f"http://127.0.0.1:{http_port}/speakers/card/sdp", timeout=10)
    finally:
        d.close()
    assert {s: e["state"] for (_, s), e in done.items()} == dict.fromkeys(speakers, "finished"), events.dump()
    assert sdp.status_code == 200 and sdp.headers["content-type"] == "application/sdp"
    assert f"m=audio {rtp_port} RTP/AVP 0\r\n" in sdp.text and "c=IN IP4 127.0.0.1\r\n" in sdp.text
    assert not_rtp.status_code == 404 and "rtp speakers: paging" in not_rtp.json()["error"]
    for name in speakers:
        started = events.all(ann, "started", name)
        assert len(started) == 1 and started[0]["latency_ms"] >= 0
    duration = done[(ann, "card")]["duration_s"]
    # every 20 ms of the audio in a packet (plus silence packets where synthesis fell behind on a busy machine)
    assert done[(ann, "paging")]["packets"] >= done[(ann, "paging")]["duration_s"] / 0.02
    assert done[(ann, "multiroom")]["stream"] == "announcer"
    assert done[(ann, "player")]["entity_id"] == entity
    # each one got the audio
    assert fifo.readers[1].bytes - fed_before >= 0.9 * duration * 32000, "the sound card played it"
    capture.wait_quiet()
    assert len(capture.talkspurts()) == 1 and len(capture.packets) == done[(ann, "paging")]["packets"]
    heard = snap_client.samples()[snap_before:, 0]
    half = RATE // 2
    speech = [  # half seconds without the music's tone but with sound: the announcer stream
        w
        for w in (heard[i : i + half] for i in range(0, len(heard) - half, half))
        if tone_level(w, MUSIC_HZ[0]) < 0.01 * MUSIC_AMP and float(np.sqrt(np.mean(w**2))) > 0.01
    ]
    assert len(speech) >= 2, "the Snapcast group did not play the announcement"
    assert snap.group_of("lobby")["stream_id"] == "default"
    if standin is not None:  # the real player's download: tests/test_homeassistant_real.py
        assert [f.status for f in standin.fetches] == [200]
