"""The ``homeassistant`` speaker's requests, against a stand-in of Home Assistant's WebSocket API.

The daemon runs as a process with its HTTP server; the stand-in (``tests/ha_standin.py``)
answers as Home Assistant 2025.4 does and its player fetches the URL it is told to play. The
same flow against a real Home Assistant is in ``tests/test_homeassistant_real.py`` (slow lane).
"""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import soundfile as sf
from broker import Broker, TestClient
from daemon_proc import DaemonProc, Events, new_id
from ha_standin import TOKEN, HaStandIn

from announcer.config import parse_config
from announcer.sinks.base import SinkContext, SinkError, create_sink

pytestmark = pytest.mark.timeout(120)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def ha() -> Iterator[HaStandIn]:
    h = HaStandIn()
    yield h
    h.close()


def test_the_player_is_told_to_play_a_short_lived_url_at_the_announcements_volume(
    shared_broker: Broker, tmp_path: Path, announcer_cache: Path, ha: HaStandIn, client: TestClient
) -> None:
    port = free_port()
    d = DaemonProc(
        shared_broker,
        tmp_path / "daemon",
        announcer_cache,
        env={"HA_TOKEN": TOKEN},
        speakers={
            "kitchen": "{type: homeassistant, entity_id: media_player.kitchen, end_margin_ms: 300}",
            "ghost": "{type: homeassistant, entity_id: media_player.nowhere}",
            "walkman": "{type: homeassistant, entity_id: media_player.walkman}",
            "broken": "{type: homeassistant, entity_id: media_player.broken}",
        },
    )
    d.patch_config(
        {
            "homeassistant": {"enabled": False, "url": ha.url, "token": "${HA_TOKEN}"},
            "http": {"enabled": True, "port": port},
        }
    )
    events = Events(client.collect(d.topic("events")))
    try:
        d.start()
        ann = new_id("ha")
        client.publish(
            d.topic("say"), f'{{"id": "{ann}", "text": "厨房请注意。", "volume": 0.5, "targets": ["kitchen"]}}'
        )
        started = events.wait(ann, "started", "kitchen")
        t_started = time.monotonic()
        finished = events.wait(ann, "finished", "kitchen")
        t_finished = time.monotonic()
        bad = new_id("ha")
        client.publish(
            d.topic("say"), f'{{"id": "{bad}", "text": "测试。", "targets": ["ghost", "walkman", "broken"]}}'
        )
        ghost = events.wait(bad, "failed", "ghost")
        walkman = events.wait(bad, "failed", "walkman")
        broken = events.wait(bad, "failed", "broken")
        (s2, play) = ha.services()[1]
        gone = httpx.get(play["media_content_id"], timeout=10).status_code  # the announcement is over
    finally:
        d.close()
    assert started["speaker"] == "kitchen"
    assert finished["entity_id"] == "media_player.kitchen"
    assert t_finished - t_started >= finished["duration_s"] * 0.9, "finished before the audio could have played"

    kitchen = [(name, data) for name, data in ha.services() if data["entity_id"] == "media_player.kitchen"]
    (s1, volume), (s2, play), (s3, restore) = kitchen
    assert (s1, volume) == ("volume_set", {"entity_id": "media_player.kitchen", "volume_level": 0.5})
    assert s2 == "play_media"
    url = play.pop("media_content_id")
    assert play == {"entity_id": "media_player.kitchen", "media_content_type": "music", "announce": True}
    assert (s3, restore) == ("volume_set", {"entity_id": "media_player.kitchen", "volume_level": 0.3})
    assert url.startswith(f"http://127.0.0.1:{port}/handout/") and url.endswith(".wav")
    assert len(url.rsplit("/", 1)[1]) >= 43 + 4, "an unguessable token"
    (fetch,) = ha.fetches
    assert (fetch.status, fetch.content_type) == (200, "audio/wav")
    audio, rate = sf.read(io.BytesIO(fetch.body), dtype="float32")
    assert len(audio) / rate == pytest.approx(finished["duration_s"], abs=0.01)
    assert 0.3 < float(abs(audio).max()) <= 1.0, "full scale: the player's volume does the rest"

    assert "Home Assistant has no entity media_player.nowhere" in ghost["error"]
    assert "media_player.walkman does not support play_media" in walkman["error"]
    assert broken["error"].endswith("media_player.broken: home_assistant_error: Speaker is offline"), broken["error"]
    assert gone == 404, "the URL stops working once the announcement is over"


def test_a_refused_token_or_no_http_server_fails_with_what_to_fix(ha: HaStandIn) -> None:
    cfg = parse_config(
        "speakers: {k: {type: homeassistant, entity_id: media_player.kitchen}}\n"
        f"homeassistant: {{url: '{ha.url}', token: x}}\nhttp: {{enabled: true}}\n"
    )
    wrong = create_sink("k", cfg.speakers["k"], SinkContext(homeassistant_url=ha.url, homeassistant_token="wrong"))
    with pytest.raises(SinkError, match="Home Assistant refused the token"):
        wrong.open("x", 24000)
    assert wrong.probe().reachable is False
    right = create_sink("k", cfg.speakers["k"], SinkContext(homeassistant_url=ha.url, homeassistant_token=TOKEN))
    reach = right.probe()
    assert reach.reachable and "media_player.kitchen is playing" in reach.detail
    stream = right.open("x", 24000)
    stream.write(__import__("numpy").zeros(2400, "float32"))
    with pytest.raises(SinkError, match="set http.enabled: true and http.public_url"):
        stream.close()
