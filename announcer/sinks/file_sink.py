"""``file`` speaker: one PCM-16 WAV per announcement, ``<directory>/<id>.wav``, written atomically.

The WAV is written as the announcement plays (``WavWriter``: a temp file in the directory,
renamed into place at ``close``; ``abort`` removes it), so memory does not grow with the
announcement's length.

The directory is kept bounded: after each file, WAVs older than ``keep_days`` go, then
the oldest until the total is under ``max_total_mb``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from ..audio import WavWriter
from ..audio.wav import remove_stale_temp
from .base import Reachability, Sink, SinkError, SpeakerBase, Stream

_LOGGER = logging.getLogger(__name__)


class Config(SpeakerBase):
    type: Literal["file"]
    directory: Path
    keep_days: float = Field(30.0, gt=0)
    max_total_mb: float = Field(500.0, gt=0)
    lead_in_ms: int = Field(0, ge=0, le=5000)  # a file needs no amplifier warm-up


class _FileStream(Stream):
    def __init__(self, sink: FileSink, path: Path, sample_rate: int) -> None:
        self._sink = sink
        self._path = path
        self._rate = sample_rate
        self._writer: WavWriter | None = None

    def _open(self) -> WavWriter:
        if self._writer is None:
            try:
                self._writer = WavWriter(self._path, self._rate)
            except OSError as exc:
                raise SinkError(f"cannot write {self._path}: {exc.strerror or exc}") from None
        return self._writer

    def write(self, samples: np.ndarray) -> None:
        writer = self._open()
        try:
            writer.write(samples)
        except OSError as exc:
            self.abort()
            raise SinkError(f"cannot write {self._path}: {exc.strerror or exc}") from None

    def close(self) -> dict[str, Any]:
        writer = self._open()
        self._writer = None  # the sink thread keeps its last call (this close) until the next one: hold nothing
        try:
            writer.commit()
        except OSError as exc:
            writer.discard()
            raise SinkError(f"cannot write {self._path}: {exc.strerror or exc}") from None
        self._sink.enforce_retention()
        return {"path": str(self._path)}

    def abort(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.discard()


class FileSink(Sink):
    config: Config

    def open(self, announcement_id: str, sample_rate: int) -> Stream:
        return _FileStream(self, Path(self.config.directory) / f"{announcement_id}.wav", sample_rate)

    def probe(self) -> Reachability:
        """The directory exists (or can be made) and can be written to."""
        import os

        directory = Path(self.config.directory)
        existing = next((p for p in (directory, *directory.parents) if p.exists()), None)
        if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            return Reachability(False, f"cannot write to {directory}")
        return Reachability(True, f"writes WAVs to {directory}")

    def enforce_retention(self) -> None:
        directory = Path(self.config.directory)
        try:
            files = [(p.stat().st_mtime, p.stat().st_size, p) for p in directory.glob("*.wav")]
        except OSError:
            return
        now = time.time()
        remove_stale_temp(directory, now)  # a WAV being written when the daemon died
        cutoff = now - self.config.keep_days * 86400
        files.sort()
        total = sum(size for _, size, _ in files)
        cap = self.config.max_total_mb * 1024 * 1024
        for mtime, size, path in files:
            if mtime >= cutoff and total <= cap:
                break
            try:
                path.unlink()
                total -= size
            except OSError as exc:
                _LOGGER.warning("speaker %s: cannot remove old %s: %s", self.name, path, exc)


SINK = FileSink
