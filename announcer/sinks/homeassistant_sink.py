"""``homeassistant`` speaker: a Home Assistant media player (Sonos, Cast, ESPHome, ...) plays the announcement.

Home Assistant is reached at ``homeassistant.url`` with ``homeassistant.token`` (a long-lived
access token) over its WebSocket API (``announcer.sinks.ha_websocket``). Per announcement:

1. ``open``: the entity must exist (Home Assistant answers ``success`` to a call on an
   unknown entity, so this is checked here, with ``get_states``), be available and support
   ``play_media``; otherwise the announcement ``failed`` with why;
2. the rendered audio is collected and, at ``close``, offered as a WAV at a short-lived,
   unguessable URL on announcer's HTTP server (``SinkContext.offer``: ``http.public_url``
   says how the player reaches it); the URL stops working when the announcement is over,
   or after ``url_ttl`` seconds;
3. ``media_player.volume_set`` to the announcement's volume where the player supports it
   (``remote_volume``; otherwise the volume scales the samples), then
   ``media_player.play_media`` with ``announce: true`` (players that support announcements
   duck or pause their music and resume it afterwards);
4. ``finished`` when the audio's duration plus ``end_margin_ms`` (the player fetching and
   starting it) has passed (``playing_until``); then the player's volume is set back.

Interrupted or stopped while it plays, the player gets ``media_player.media_stop`` where it
supports it, and its volume back. Errors from Home Assistant (a refused token, a service the
player does not support) fail the announcement with Home Assistant's message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from pydantic import Field

from ..audio import Audio, wav_bytes
from .base import Reachability, Sink, SinkError, SpeakerBase, Stream
from .ha_websocket import HomeAssistant, HomeAssistantError

_LOGGER = logging.getLogger(__name__)

VOLUME_SET = 4  # media_player features (MediaPlayerEntityFeature)
PLAY_MEDIA = 512
STOP = 4096
MEDIA_ANNOUNCE = 1048576


class Config(SpeakerBase):
    type: Literal["homeassistant"]
    entity_id: str = Field(pattern=r"^media_player\.[a-z0-9_]+$")
    announce: bool = True  # play_media's announce: players that can, resume their music afterwards
    media_content_type: str = "music"  # what play_media is told the URL holds
    end_margin_ms: int = Field(1000, ge=0, le=30000)  # the player's fetch and start-up, added to the duration
    url_ttl: float = Field(300.0, ge=10, le=3600)  # seconds the audio's URL works at most
    restore_volume: bool = True  # set the player's volume back after the announcement
    timeout: float = Field(10.0, gt=0, le=60)  # seconds for Home Assistant to answer


class _HaStream(Stream):
    def __init__(self, sink: HomeAssistantSink, rate: int, features: int) -> None:
        self._sink = sink
        self._rate = rate
        self._features = features
        self._parts: list[np.ndarray] = []
        self._gain = 1.0
        self._volume_before: float | None = None
        self._revoke: Callable[[], None] | None = None
        self._playing = False
        self._done = False

    def set_volume(self, gain: float) -> None:
        self._gain = gain

    def write(self, samples: np.ndarray) -> None:
        self._parts.append(np.asarray(samples, np.float32))

    def close(self) -> dict[str, Any]:
        sink, cfg = self._sink, self._sink.config
        parts, self._parts = self._parts, []
        audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        remote = bool(self._features & VOLUME_SET)
        if not remote:
            audio = audio * np.float32(self._gain)
        offer = sink.context.offer
        if offer is None:
            raise SinkError(
                f"homeassistant speaker {sink.name}: media players fetch the audio from announcer's HTTP server; "
                "set http.enabled: true and http.public_url"
            )
        url, self._revoke = offer(wav_bytes(Audio(audio, self._rate)), "audio/wav", cfg.url_ttl)
        ha = sink.connect()
        try:
            if remote:
                state = ha.state(cfg.entity_id) or {}
                before = state.get("attributes", {}).get("volume_level")
                ha.service(
                    "media_player", "volume_set", {"entity_id": cfg.entity_id, "volume_level": round(self._gain, 3)}
                )
                self._volume_before = before if isinstance(before, (int, float)) else None
            data: dict[str, Any] = {
                "entity_id": cfg.entity_id,
                "media_content_id": url,
                "media_content_type": cfg.media_content_type,
            }
            if cfg.announce:
                data["announce"] = True
            ha.service("media_player", "play_media", data)
        except HomeAssistantError as exc:
            self._finish(ha)
            raise SinkError(f"homeassistant speaker {sink.name}: {cfg.entity_id}: {exc}") from None
        ha.close()
        self._playing = True
        self.playing_until = time.monotonic() + len(audio) / self._rate + cfg.end_margin_ms / 1000
        return {"entity_id": cfg.entity_id}

    def played(self) -> None:
        self._finish()

    def abort(self) -> None:
        self._parts.clear()
        stop = self._playing and bool(self._features & STOP)
        self._finish(stop=stop)

    def _finish(self, ha: HomeAssistant | None = None, stop: bool = False) -> None:
        """Revoke the URL; stop the player if asked; give it its volume back."""
        if self._done:
            return
        self._done = True
        if self._revoke is not None:
            self._revoke()
        cfg = self._sink.config
        restore = cfg.restore_volume and self._volume_before is not None
        if not (stop or restore):
            if ha is not None:
                ha.close()
            return
        try:
            ha = ha or self._sink.connect()
        except SinkError as exc:
            _LOGGER.warning("%s", exc)
            return
        try:
            if stop:
                ha.service("media_player", "media_stop", {"entity_id": cfg.entity_id})
            if restore:
                ha.service(
                    "media_player", "volume_set", {"entity_id": cfg.entity_id, "volume_level": self._volume_before}
                )
        except HomeAssistantError as exc:
            _LOGGER.warning(
                "speaker %s: cannot %s %s: %s",
                self._sink.name,
                "stop" if stop else "restore the volume of",
                cfg.entity_id,
                exc,
            )
        finally:
            ha.close()


class HomeAssistantSink(Sink):
    config: Config
    remote_volume = True

    def connect(self) -> HomeAssistant:
        url, token = self.context.homeassistant_url, self.context.homeassistant_token
        if not url or not token:
            raise SinkError(f"homeassistant speaker {self.name}: set homeassistant.url and homeassistant.token")
        try:
            return HomeAssistant(url, token, self.config.timeout)
        except HomeAssistantError as exc:
            raise SinkError(f"homeassistant speaker {self.name}: {exc}") from None

    def _entity(self, ha: HomeAssistant) -> tuple[dict[str, Any], int]:
        entity = self.config.entity_id
        state = ha.state(entity)
        if state is None:
            raise SinkError(f"homeassistant speaker {self.name}: Home Assistant has no entity {entity}")
        if state.get("state") in ("unavailable", "unknown"):
            raise SinkError(f"homeassistant speaker {self.name}: {entity} is {state.get('state')}")
        features = int(state.get("attributes", {}).get("supported_features") or 0)
        if not features & PLAY_MEDIA:
            raise SinkError(f"homeassistant speaker {self.name}: {entity} does not support play_media")
        return state, features

    def open(self, announcement_id: str, sample_rate: int) -> Stream:
        ha = self.connect()
        try:
            _state, features = self._entity(ha)
        except HomeAssistantError as exc:
            raise SinkError(f"homeassistant speaker {self.name}: {exc}") from None
        finally:
            ha.close()
        return _HaStream(self, sample_rate, features)

    def probe(self) -> Reachability:
        """Home Assistant accepts the token and has the entity, available, with play_media."""
        try:
            ha = self.connect()
        except SinkError as exc:
            return Reachability(False, str(exc))
        try:
            state, features = self._entity(ha)
        except (SinkError, HomeAssistantError) as exc:
            return Reachability(False, str(exc))
        finally:
            ha.close()
        can = [w for bit, w in ((VOLUME_SET, "volume"), (MEDIA_ANNOUNCE, "announce")) if features & bit]
        return Reachability(
            True,
            f"Home Assistant {ha.version}: {self.config.entity_id} is {state.get('state')}"
            + (f" ({', '.join(can)})" if can else ""),
        )


SINK = HomeAssistantSink
