"""The audio value type and the operations every engine and sink share.

Audio is mono float32 in [-1, 1] at a known sample rate. Engines produce it a clause
at a time; sinks consume it. WAV files written by announcer are PCM-16.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .fsutil import atomic_write


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # float32, mono, shape (n,)
    sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / float(self.sample_rate)

    @staticmethod
    def silence(seconds: float, sample_rate: int) -> "Audio":
        return Audio(np.zeros(max(0, int(round(seconds * sample_rate))), np.float32), sample_rate)

    @staticmethod
    def concat(parts: list["Audio"], sample_rate: int) -> "Audio":
        for p in parts:
            if p.sample_rate != sample_rate:
                raise ValueError(f"cannot join {p.sample_rate} Hz audio into {sample_rate} Hz")
        if not parts:
            return Audio(np.zeros(0, np.float32), sample_rate)
        return Audio(np.concatenate([p.samples for p in parts]).astype(np.float32, copy=False), sample_rate)


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Float [-1, 1] to int16, clipping anything outside (callers limit before this)."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")


def wav_bytes(audio: Audio) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, to_pcm16(audio.samples), audio.sample_rate, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def write_wav_atomic(path: str | os.PathLike[str], audio: Audio) -> Path:
    """Write a PCM-16 WAV atomically and durably (temp file, fsync, rename)."""
    atomic_write(path, wav_bytes(audio), prefix=".", suffix=".wav.tmp")
    return Path(path)


def read_wav(path: str | os.PathLike[str]) -> Audio:
    import soundfile as sf

    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return Audio(data.mean(axis=1).astype(np.float32), int(rate))
