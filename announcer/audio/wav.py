"""WAV files: PCM-16 out (atomically), anything soundfile reads in (mixed to mono)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from ..core.files import atomic_write
from .samples import Audio, to_pcm16


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
