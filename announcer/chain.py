"""The audio chain every speaker shares: chime, lead-in, volume, limiter, fades.

One ``SpeakerChain`` per speaker. The player asks it for the prelude (lead-in silence
then the chime), passes each synthesized chunk through ``process`` (volume and a peak
limiter, so nothing ever clips) and finally asks for the postlude (end chime, if any).
All functions work on mono float32 at the rate the player asks for.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import numpy as np

from .audio import read_wav

_LOGGER = logging.getLogger(__name__)

PEAK_CEILING = 0.97  # linear; the limiter keeps every sample at or below this
FADE_SECONDS = 0.01


@functools.lru_cache(maxsize=32)
def _builtin_chime(name: str, rate: int) -> np.ndarray:
    """Synthesized chimes: 'ding-dong' (two soft bell tones), 'alarm' (urgent two-tone)."""
    def bell(freq: float, seconds: float, decay: float) -> np.ndarray:
        t = np.arange(int(seconds * rate)) / rate
        env = np.exp(-t * decay) * np.minimum(1.0, t / 0.005)
        tone = np.sin(2 * np.pi * freq * t) + 0.35 * np.sin(2 * np.pi * 2 * freq * t) \
            + 0.12 * np.sin(2 * np.pi * 3 * freq * t)
        return (tone * env).astype(np.float32)

    if name == "ding-dong":
        out = np.concatenate([bell(659.25, 0.45, 5.0), bell(523.25, 0.8, 4.0)])  # E5 then C5
        out = out / np.max(np.abs(out)) * 0.5
    elif name == "alarm":
        seg = []
        for _ in range(3):
            for f in (880.0, 660.0):
                t = np.arange(int(0.18 * rate)) / rate
                s = np.sign(np.sin(2 * np.pi * f * t)) * 0.3 + np.sin(2 * np.pi * f * t) * 0.4
                s *= np.minimum(1.0, np.minimum(t, t[::-1]) / 0.005)
                seg.append(s.astype(np.float32))
        out = np.concatenate(seg)
        out = out / np.max(np.abs(out)) * 0.6
    else:
        raise KeyError(name)
    tail = np.zeros(int(0.15 * rate), np.float32)  # a breath between chime and speech
    return np.concatenate([out.astype(np.float32), tail])


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Band-limited resampling (soxr when installed, else windowed-sinc via FFT)."""
    if src_rate == dst_rate or len(samples) == 0:
        return samples.astype(np.float32, copy=False)
    try:
        import soxr  # type: ignore[import-not-found]

        return soxr.resample(samples.astype(np.float32), src_rate, dst_rate, quality="HQ").astype(np.float32)
    except ImportError:
        n_out = int(round(len(samples) * dst_rate / src_rate))
        spec = np.fft.rfft(samples.astype(np.float64))
        n_bins = n_out // 2 + 1
        if n_bins <= len(spec):
            spec = spec[:n_bins]
        else:
            spec = np.concatenate([spec, np.zeros(n_bins - len(spec), spec.dtype)])
        return (np.fft.irfft(spec, n_out) * (n_out / len(samples))).astype(np.float32)


class ChimeLibrary:
    """Built-in chimes plus WAV files named in the config (``chimes: {fire: /path/alarm.wav}``)."""

    def __init__(self, files: dict[str, Path] | None = None) -> None:
        self.files = dict(files or {})
        self._loaded: dict[tuple[str, int], np.ndarray] = {}

    def names(self) -> list[str]:
        return sorted({"ding-dong", "alarm", *self.files})

    def get(self, name: str, rate: int) -> np.ndarray:
        if name in ("none", ""):
            return np.zeros(0, np.float32)
        key = (name, rate)
        if key not in self._loaded:
            if name in self.files:
                audio = read_wav(self.files[name])
                self._loaded[key] = resample(audio.samples, audio.sample_rate, rate)
            else:
                self._loaded[key] = _builtin_chime(name, rate)
        return self._loaded[key]


def chime_name(chime: bool | str, priority: str) -> str | None:
    """The chime to play: an explicit name, or per priority when ``chime`` is true."""
    if chime is False:
        return None
    if isinstance(chime, str):
        return chime
    return "alarm" if priority == "emergency" else "ding-dong"


def fade(samples: np.ndarray, rate: int, fade_in: bool = False, fade_out: bool = False,
         seconds: float = FADE_SECONDS) -> np.ndarray:
    n = min(len(samples), int(seconds * rate))
    if n == 0:
        return samples
    out = samples.copy()
    ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
    if fade_in:
        out[:n] *= ramp
    if fade_out:
        out[-n:] *= ramp[::-1]
    return out


def limit(samples: np.ndarray, ceiling: float = PEAK_CEILING) -> np.ndarray:
    """A simple peak limiter: scale the chunk down if its peak passes the ceiling."""
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    if peak > ceiling:
        return (samples * (ceiling / peak)).astype(np.float32)
    return samples


class SpeakerChain:
    def __init__(self, speaker_config: Any, chimes: ChimeLibrary) -> None:
        self.config = speaker_config
        self.chimes = chimes

    def gain(self, volume: float | None, cap: float | None = None) -> float:
        """Announcement volume (or the speaker's), capped by quiet hours."""
        g = self.config.volume if volume is None else volume * self.config.volume
        if cap is not None:
            g = min(g, cap)
        return float(g)

    def prelude(self, chime: bool | str, priority: str, rate: int, gain: float) -> np.ndarray:
        parts = [np.zeros(int(self.config.lead_in_ms * rate / 1000), np.float32)]
        name = chime_name(chime, priority)
        if name:
            parts.append(self.chimes.get(name, rate) * gain)
        return np.concatenate(parts).astype(np.float32)

    def process(self, samples: np.ndarray, gain: float) -> np.ndarray:
        return limit(np.asarray(samples, np.float32) * gain)
