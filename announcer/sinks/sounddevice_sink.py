"""``sounddevice`` speaker: a PortAudio output device chosen by name substring or index.

The device is looked up again at every announcement, so a speaker whose USB device
was unplugged reports ``failed`` (naming the device) and recovers by itself when the
device returns. Audio is resampled to a rate the device supports and mono is spread
to the device's channels. Writes block at real time, which is what paces the player; a
device that stops taking samples blocks a write for good, which the player's sink guard
turns into a ``failed`` announcement after ``stall_timeout`` (``announcer.playback.sink_guard``).

PortAudio is process-global: re-initialising it (the only way to see a hot-plugged
device) closes every open stream, so a failed lookup re-scans only while no speaker
is playing; otherwise the device is looked for again at the next announcement.
Opening, closing and re-scanning hold one lock; writes do not, so speakers play in
parallel.

A stream interrupted by an emergency is resumable: the emergency is written into it
right behind the interrupted one's fade-out (same rate), so the device neither drops
its buffer (the click ``abort`` guards against) nor waits for it to play out, and
nothing is re-opened.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Literal

import numpy as np
from pydantic import Field

from .base import Reachability, Sink, SinkError, SpeakerBase, Stream

_LOGGER = logging.getLogger(__name__)
_PA_LOCK = threading.RLock()  # PortAudio's device list, (re)initialisation and stream set are process-global
_open_streams = 0  # streams opened and not yet closed (guarded by _PA_LOCK)


class Config(SpeakerBase):
    type: Literal["sounddevice"]
    device: str | int | None = None  # None: PortAudio's default output
    latency: Literal["low", "high"] | float = "low"
    channels: int | None = Field(None, ge=1, le=32)  # None: the device's channels, at most 2
    samplerate: int | None = Field(None, ge=8000, le=192000)  # None: the engine's rate if supported


def _sd() -> Any:
    try:
        import sounddevice as sd
    except OSError as exc:  # the wheel does not bundle PortAudio on Linux
        raise SinkError(
            f"PortAudio is not available ({exc}); install libportaudio2 (scripts/install-system-deps.sh)"
        ) from None
    return sd


def list_output_devices() -> list[dict[str, Any]]:
    try:
        sd = _sd()
    except SinkError as exc:
        _LOGGER.error("%s", exc)
        return []
    with _PA_LOCK:
        devices = sd.query_devices()
        try:
            default_out = sd.default.device[1]
        except Exception:
            default_out = -1
    out = []
    for i, d in enumerate(devices):
        if d["max_output_channels"] > 0:
            out.append(
                {
                    "index": i,
                    "name": d["name"],
                    "channels": d["max_output_channels"],
                    "default_samplerate": d["default_samplerate"],
                    "default": i == default_out,
                }
            )
    return out


def find_device(spec: str | int | None, rescan: bool = False) -> tuple[int, dict[str, Any]]:
    """Resolve a device spec to (index, info); raises SinkError naming the device."""
    sd = _sd()
    with _PA_LOCK:
        if rescan and _open_streams:
            _LOGGER.debug("not re-scanning audio devices: %d stream(s) playing", _open_streams)
        elif rescan:
            try:  # PortAudio caches the device list; re-initialise to see hot-plugged devices
                sd._terminate()
                sd._initialize()
            except Exception as exc:  # pragma: no cover - depends on the host
                _LOGGER.debug("PortAudio re-initialisation failed: %s", exc)
        devices = list(sd.query_devices())
        if spec is None:
            idx = sd.default.device[1]
            if idx is None or idx < 0 or idx >= len(devices):
                raise SinkError("no default audio output device")
            return int(idx), devices[int(idx)]
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        idx = int(spec)
        if 0 <= idx < len(devices) and devices[idx]["max_output_channels"] > 0:
            return idx, devices[idx]
        raise SinkError(f"audio device #{idx} not found or has no outputs")
    wanted = spec.lower()
    matches = [(i, d) for i, d in enumerate(devices) if d["max_output_channels"] > 0 and wanted in d["name"].lower()]
    if not matches:
        raise SinkError(f"audio device {spec!r} not found")
    exact = [m for m in matches if m[1]["name"].lower() == wanted]
    return (exact or matches)[0]


class _DeviceStream(Stream):
    resumable = True

    def __init__(self, stream: Any, channels: int, device_name: str, sample_rate: int) -> None:
        self._stream = stream
        self._channels = channels
        self._rate = sample_rate
        self._device = device_name
        self._aborted = threading.Event()
        self._closed = False

    def write(self, samples: np.ndarray) -> None:
        if self._aborted.is_set() or len(samples) == 0:
            return
        data = np.asarray(samples, np.float32).reshape(-1, 1)
        if self._channels > 1:
            data = np.repeat(data, self._channels, axis=1)
        try:
            self._stream.write(np.ascontiguousarray(data))
        except Exception as exc:
            if self._aborted.is_set():
                return
            raise SinkError(f"audio device {self._device!r} failed: {exc}") from None

    def close(self) -> dict[str, Any]:
        try:
            if not self._aborted.is_set():
                self._stream.stop()  # drains what was written
        except Exception as exc:
            raise SinkError(f"audio device {self._device!r} failed: {exc}") from None
        finally:
            self._release()
        return {"device": self._device}

    def resume(self, announcement_id: str, sample_rate: int) -> bool:
        return sample_rate == self._rate and not self._aborted.is_set() and not self._closed

    def abort(self) -> None:
        if not self._aborted.is_set():
            # Whatever was written last (the player's 50 ms fade-out) still sits in the device's
            # buffer, and aborting discards that buffer: push one buffer of silence after it so
            # the fade is heard to its end instead of being cut into a click.
            try:
                frames = int(round(float(self._stream.latency) * float(self._stream.samplerate))) + 1
                self._stream.write(np.zeros((frames, self._channels), np.float32))
            except Exception:
                pass
        self._aborted.set()
        try:
            self._stream.abort(ignore_errors=True)
        except Exception:  # pragma: no cover
            pass
        self._release()

    def _release(self) -> None:
        global _open_streams
        with _PA_LOCK:
            if self._closed:
                return
            self._closed = True
            try:
                self._stream.close(ignore_errors=True)
            except Exception:  # pragma: no cover
                pass
            _open_streams -= 1


class SoundDeviceSink(Sink):
    config: Config

    def __init__(self, name: str, config: Config, context: Any = None) -> None:
        super().__init__(name, config, context)
        self._rate_cache: dict[int, int] = {}

    def _resolve(self) -> tuple[int, dict[str, Any]]:
        try:
            return find_device(self.config.device)
        except SinkError:
            return find_device(self.config.device, rescan=True)

    def preferred_rate(self, source_rate: int) -> int:
        if self.config.samplerate:
            return self.config.samplerate
        if source_rate in self._rate_cache:
            return self._rate_cache[source_rate]
        try:
            idx, info = self._resolve()
            sd = _sd()
            try:
                with _PA_LOCK:
                    sd.check_output_settings(device=idx, samplerate=source_rate, channels=1, dtype="float32")
                rate = source_rate
            except Exception:
                rate = int(info["default_samplerate"])
        except SinkError:
            return source_rate  # open() will report the missing device
        self._rate_cache[source_rate] = rate
        return rate

    def probe(self) -> Reachability:
        """PortAudio has the device (with outputs)."""
        try:
            idx, info = self._resolve()
        except SinkError as exc:
            return Reachability(False, str(exc))
        return Reachability(True, f"audio device #{idx} {info['name']!r} ({info['max_output_channels']} ch)")

    def open(self, announcement_id: str, sample_rate: int) -> Stream:
        global _open_streams
        sd = _sd()
        with _PA_LOCK:  # no re-scan between finding the device and opening it (indices would move)
            idx, info = self._resolve()
            channels = self.config.channels or min(2, int(info["max_output_channels"]))
            try:
                stream = sd.OutputStream(
                    device=idx, samplerate=sample_rate, channels=channels, dtype="float32", latency=self.config.latency
                )
            except Exception as exc:
                self._rate_cache.clear()
                raise SinkError(f"audio device {info['name']!r} cannot be opened: {exc}") from None
            _open_streams += 1
            device = _DeviceStream(stream, channels, info["name"], sample_rate)
            try:
                stream.start()
            except Exception as exc:
                device._release()
                self._rate_cache.clear()
                raise SinkError(f"audio device {info['name']!r} cannot be opened: {exc}") from None
        return device


SINK = SoundDeviceSink
