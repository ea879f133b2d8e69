"""Chimes: the built-in ones (synthesized) and WAV files named in the config, per priority."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from .dsp import resample
from .wav import read_wav

BUILTIN_CHIMES: tuple[str, ...] = ("ding-dong", "alarm", "none")


@functools.lru_cache(maxsize=32)
def _builtin_chime(name: str, rate: int) -> np.ndarray:
    """Synthesized chimes: 'ding-dong' (two soft bell tones), 'alarm' (urgent two-tone)."""

    def bell(freq: float, seconds: float, decay: float) -> np.ndarray:
        t = np.arange(int(seconds * rate)) / rate
        env = np.exp(-t * decay) * np.minimum(1.0, t / 0.005)
        tone = (
            np.sin(2 * np.pi * freq * t)
            + 0.35 * np.sin(2 * np.pi * 2 * freq * t)
            + 0.12 * np.sin(2 * np.pi * 3 * freq * t)
        )
        samples: np.ndarray = (tone * env).astype(np.float32)
        return samples

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


class ChimeLibrary:
    """Built-in chimes plus WAV files named in the config (``chimes: {fire: /path/alarm.wav}``).

    ``by_priority`` picks the chime when an announcement just says ``chime: true``
    (default: ``alarm`` for emergency, ``ding-dong`` otherwise); ``end`` is an optional
    chime played after the speech.
    """

    def __init__(
        self, files: dict[str, Path] | None = None, by_priority: dict[str, str] | None = None, end: str | None = None
    ) -> None:
        self.files = dict(files or {})
        self.by_priority = {"emergency": "alarm", **(by_priority or {})}
        self.end = end
        self._loaded: dict[tuple[str, int], np.ndarray] = {}

    @classmethod
    def from_config(cls, cfg: Any) -> ChimeLibrary:
        return cls(dict(cfg.chimes), dict(cfg.audio.priority_chimes), cfg.audio.end_chime)

    def names(self) -> list[str]:
        return sorted({"ding-dong", "alarm", *self.files})

    def pick(self, chime: bool | str, priority: str) -> str | None:
        """The chime to play: an explicit name, or per priority when ``chime`` is true."""
        if chime is False:
            return None
        if isinstance(chime, str):
            return chime
        return self.by_priority.get(priority, self.by_priority.get("default", "ding-dong"))

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
    """The chime with the built-in defaults (see ``ChimeLibrary.pick``)."""
    return ChimeLibrary().pick(chime, priority)
