"""WAV files: PCM-16 out (atomically, whole or as it is rendered), anything soundfile reads in (mixed to mono)."""

from __future__ import annotations

import io
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..core.files import atomic_write, current_umask, make_dirs
from .samples import Audio, to_pcm16


def wav_bytes(audio: Audio) -> bytes:
    return pcm16_wav_bytes(to_pcm16(audio.samples), audio.sample_rate)


def wav_header(rate: int, frames: int) -> bytes:
    """The 44-byte header of a PCM-16 mono WAV of ``frames`` samples (what soundfile writes)."""
    data = 2 * frames
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data, b"WAVE", b"fmt ", 16, 1, 1, rate, 2 * rate, 2, 16, b"data", data
    )


def pcm16_wav_bytes(pcm: np.ndarray, rate: int) -> bytes:
    """A WAV of int16 samples already converted (``to_pcm16``)."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, pcm, rate, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def write_wav_atomic(path: str | os.PathLike[str], audio: Audio) -> Path:
    """Write a PCM-16 WAV atomically and durably (temp file, fsync, rename)."""
    atomic_write(path, wav_bytes(audio), prefix=".", suffix=".wav.tmp")
    return Path(path)


WAV_HEADER_BYTES = 44
TMP_GLOB = ".*.wav.tmp"  # a WavWriter's file until it is committed
STALE_TMP_SECONDS = 3600.0  # older ones are left over from a crash: remove_stale_temp removes them


def remove_stale_temp(directory: str | os.PathLike[str], now: float) -> int:
    """Remove the temp files of writers that died (older than ``STALE_TMP_SECONDS``); how many went."""
    removed = 0
    for p in Path(directory).glob(TMP_GLOB):
        try:
            if now - p.stat().st_mtime > STALE_TMP_SECONDS:
                p.unlink()
                removed += 1
        except OSError:
            pass
    return removed


class WavTooLarge(ValueError):
    """A ``WavWriter`` was asked to write past its ``max_bytes`` (nothing was kept)."""


class WavWriter:
    """A PCM-16 mono WAV written as the samples come (memory does not grow with its length).

    It goes to a temp file beside ``path`` and is renamed into place by ``commit`` (fsynced
    with ``durable``), so a reader sees a whole file or none, as with ``write_wav_atomic``;
    ``discard`` removes it. Past ``max_bytes`` a ``write`` raises ``WavTooLarge`` (and
    discards). The samples are converted like ``wav_bytes`` does (``to_pcm16``).
    """

    def __init__(self, path: str | os.PathLike[str], rate: int, *, max_bytes: int | None = None, durable: bool = True):
        import soundfile as sf

        self.path = Path(path)
        self.rate = int(rate)
        self.max_bytes = max_bytes
        self.durable = durable
        self.frames = 0
        make_dirs(self.path.parent)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".wav.tmp", dir=self.path.parent)
        os.fchmod(fd, 0o666 & ~current_umask())
        self._tmp = Path(tmp)
        self._fh: Any = os.fdopen(fd, "w+b")
        self._sf: Any = sf.SoundFile(self._fh, "w", samplerate=self.rate, channels=1, subtype="PCM_16", format="WAV")

    @property
    def size(self) -> int:
        """Bytes of the file once committed."""
        return WAV_HEADER_BYTES + 2 * self.frames

    @property
    def seconds(self) -> float:
        return self.frames / float(self.rate)

    def write(self, samples: np.ndarray) -> None:
        n = len(samples)
        if self.max_bytes is not None and self.size + 2 * n > self.max_bytes:
            self.discard()
            raise WavTooLarge(f"the WAV would pass {self.max_bytes} bytes")
        if n:
            self._sf.write(to_pcm16(np.asarray(samples, np.float32)))
            self.frames += n

    def commit(self) -> Path:
        self._sf.close()
        self._fh.flush()
        if self.durable:
            os.fsync(self._fh.fileno())
        self._fh.close()
        os.replace(self._tmp, self.path)
        if self.durable:
            try:
                dfd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
            except OSError:
                pass
        return self.path

    def discard(self) -> None:
        for close in (self._sf.close, self._fh.close):
            try:
                close()
            except Exception:  # noqa: BLE001  # already closed, or the disk is gone: the temp file goes anyway
                pass
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass


def read_wav(path: str | os.PathLike[str]) -> Audio:
    import soundfile as sf

    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return Audio(data.mean(axis=1).astype(np.float32), int(rate))
