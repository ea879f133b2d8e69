"""Slow lane: the ``homeassistant`` speaker against a real Home Assistant 2025.4.4 (``tests/ha_real.py``).

The daemon runs as a process with its HTTP server; Home Assistant's test player
(``media_player.announcer_test_speaker``) downloads the URL it is told to play. The test
watches Home Assistant's own event stream: the services called (``announce: true`` included),
the download, the volume; and that a missing entity fails with the reason.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import soundfile as sf
from broker import Broker, TestClient
from daemon_proc import DaemonProc, Events, new_id
from ha_real import TEST_SPEAKER, HomeAssistantProc, home_assistant  # noqa: F401  (fixture)

from announcer.sinks.ha_websocket import HomeAssistant, HomeAssistantError

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


class HaEvents:
    """Home Assistant's events of some types, collected on a connection of the test's own."""

    def __init__(self, ha: HomeAssistantProc, *types: str) -> None:
        self.client = HomeAssistant(ha.url, ha.token)
        for t in types:
            self.client.call({"type": "subscribe_events", "event_type": t})
        self.events: list[dict[str, Any]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                msg = self.client.ws.recv_json(0.5)
            except TimeoutError:
                continue
            except (OSError, HomeAssistantError, ValueError):
                return
            if msg.get("type") == "event":
                self.events.append(msg["event"])

    def of(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event_type"] == event_type]

    def services(self, entity_id: str) -> list[tuple[str, dict[str, Any]]]:
        """The media_player services called on ``entity_id`` (not the ones it forwards to its child)."""
        return [
            (e["data"]["service"], dict(e["data"]["service_data"]))
            for e in self.of("call_service")
            if e["data"]["domain"] == "media_player" and e["data"]["service_data"].get("entity_id") == entity_id
        ]

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def ha_events(home_assistant: HomeAssistantProc) -> Iterator[HaEvents]:  # noqa: F811
    ev = HaEvents(home_assistant, "call_service", "downloader_download_completed")
    yield ev
    ev.close()


def test_a_real_home_assistant_player_fetches_and_plays_the_announcement(
    shared_broker: Broker,
    tmp_path: Path,
    announcer_cache: Path,
    client: TestClient,
    home_assistant: HomeAssistantProc,  # noqa: F811
    ha_events: HaEvents,
) -> None:
    ha = HomeAssistant(home_assistant.url, home_assistant.token)
    volume_before = (ha.state(TEST_SPEAKER) or {})["attributes"]["volume_level"]
    port = free_port()
    d = DaemonProc(
        shared_broker,
        tmp_path / "daemon",
        announcer_cache,
        env={"HA_TOKEN": home_assistant.token},
        speakers={
            "kitchen": f"{{type: homeassistant, entity_id: {TEST_SPEAKER}}}",
            "ghost": "{type: homeassistant, entity_id: media_player.not_there}",
        },
    )
    d.patch_config(
        {
            "homeassistant": {"enabled": False, "url": home_assistant.url, "token": "${HA_TOKEN}"},
            "http": {"enabled": True, "port": port},
        }
    )
    events = Events(client.collect(d.topic("events")))
    try:
        d.start()
        ann = new_id("ha")
        client.publish(
            d.topic("say"), f'{{"id": "{ann}", "text": "厨房的各位请注意。", "volume": 0.4, "targets": ["kitchen"]}}'
        )
        events.wait(ann, "started", "kitchen")
        finished = events.wait(ann, "finished", "kitchen", timeout=60)
        ghost_id = new_id("ha")
        client.publish(d.topic("say"), f'{{"id": "{ghost_id}", "text": "测试。", "targets": ["ghost"]}}')
        ghost = events.wait(ghost_id, "failed", "ghost")
        services = ha_events.services(TEST_SPEAKER)
        play = dict(next(data for name, data in services if name == "play_media"))
        gone = httpx.get(play["media_content_id"], timeout=10).status_code
    finally:
        d.close()
    assert finished["entity_id"] == TEST_SPEAKER
    url = play.pop("media_content_id")
    assert play == {"entity_id": TEST_SPEAKER, "media_content_type": "music", "announce": True}
    assert ("volume_set", {"entity_id": TEST_SPEAKER, "volume_level": 0.4}) in services
    assert services[-1] == ("volume_set", {"entity_id": TEST_SPEAKER, "volume_level": volume_before})
    assert services.index(("volume_set", {"entity_id": TEST_SPEAKER, "volume_level": 0.4})) < services.index(
        ("play_media", {**play, "media_content_id": url})
    )
    (download,) = [e["data"] for e in ha_events.of("downloader_download_completed")]
    assert download["url"] == url
    fetched = (home_assistant.config_dir / "downloads" / download["filename"]).read_bytes()
    audio, rate = sf.read(io.BytesIO(fetched), dtype="float32")
    assert len(audio) / rate == pytest.approx(finished["duration_s"], abs=0.01)
    assert gone == 404, "the URL stops working once the announcement is over"
    deadline = time.monotonic() + 10
    while (ha.state(TEST_SPEAKER) or {})["attributes"].get("volume_level") != volume_before:
        assert time.monotonic() < deadline, "the player's volume was not set back"
        time.sleep(0.2)
    ha.close()
    assert "Home Assistant has no entity media_player.not_there" in ghost["error"]
