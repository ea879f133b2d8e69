"""The audio value type and the operations every engine and sink share.

Audio is mono float32 in [-1, 1] at a known sample rate. Engines produce it a clause
at a time; sinks consume it. WAV reading and writing is in ``announcer.audio.wav``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # float32, mono, shape (n,)
    sample_rate: int
    # integrated loudness (LUFS) known beforehand: a recorded clip, measured once when it was loaded.
    # The speaker chain normalises such a chunk as a whole instead of by the running speech estimate.
    loudness: float | None = None

    @property
    def duration(self) -> float:
        return len(self.samples) / float(self.sample_rate)

    @staticmethod
    def silence(seconds: float, sample_rate: int) -> Audio:
        return Audio(np.zeros(max(0, int(round(seconds * sample_rate))), np.float32), sample_rate)

    @staticmethod
    def concat(parts: list[Audio], sample_rate: int) -> Audio:
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
    pcm: np.ndarray = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    return pcm
