"""Recorded clips (``clips:`` in the config): a bell, a gong, a spoken jingle, played like speech.

A clip is an audio file soundfile reads (WAV, FLAC, OGG), decoded once, mixed to mono, and
measured (BS.1770 integrated loudness), so the speaker chain brings it to
``audio.target_lufs`` like speech and applies the same volume and limiter.

Rules:

* ``load_clip`` decodes a file the first time it is asked for and keeps the result, keyed by
  the file's path, size and modification time: the config check at load (a missing or
  undecodable file is a config error then, not a failure at play time), the runtime and a
  reload that keeps the file all share one decoded copy. A changed file is decoded again.
* A clip longer than ``MAX_CLIP_SECONDS`` or without a single sample is refused (``ClipError``).
* ``ClipLibrary`` holds a runtime's clips; ``audio(name, rate)`` is the clip at ``rate``
  (resampled once per rate and kept) with ``CLIP_GAP_SECONDS`` of silence after it, as an
  ``Audio`` chunk carrying its loudness.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .dsp import resample
from .samples import Audio

_LOGGER = logging.getLogger(__name__)

MAX_CLIP_SECONDS = 120.0
CLIP_GAP_SECONDS = 0.25  # silence after a clip, before the next piece (speech, another clip)
_MAX_CACHED_FILES = 64


class ClipError(ValueError):
    """A clip file cannot be used; the message names the file and why."""


@dataclass
class Clip:
    """One decoded clip: mono float32 at its own rate, and its integrated loudness (None: silent)."""

    path: Path
    samples: np.ndarray
    sample_rate: int
    loudness: float | None
    _by_rate: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def duration(self) -> float:
        return len(self.samples) / float(self.sample_rate)

    def at(self, rate: int) -> Audio:
        """The clip at ``rate`` followed by ``CLIP_GAP_SECONDS`` of silence, with its loudness."""
        with self._lock:
            samples = self._by_rate.get(rate)
            if samples is None:
                body = resample(self.samples, self.sample_rate, rate)
                samples = np.concatenate([body, np.zeros(int(CLIP_GAP_SECONDS * rate), np.float32)])
                samples.setflags(write=False)
                self._by_rate[rate] = samples
        return Audio(samples, rate, loudness=self.loudness)


_cache: dict[tuple[str, int, int], Clip] = {}
_cache_lock = threading.Lock()


def load_clip(path: str | os.PathLike[str]) -> Clip:
    """The decoded clip in ``path`` (kept while the file is unchanged); ``ClipError`` if it cannot be used."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise ClipError(f"cannot read {p}: {exc.strerror or exc}") from None
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    with _cache_lock:
        clip = _cache.get(key)
    if clip is not None:
        return clip
    clip = _decode(p)
    with _cache_lock:
        for old in [k for k in _cache if k[0] == key[0]]:  # an older version of the same file
            del _cache[old]
        while len(_cache) >= _MAX_CACHED_FILES:
            del _cache[next(iter(_cache))]
        _cache[key] = clip
    return clip


def _decode(p: Path) -> Clip:
    import soundfile as sf

    from .loudness import integrated_loudness

    try:
        info = sf.info(str(p))
        if info.frames / float(info.samplerate) > MAX_CLIP_SECONDS:
            raise ClipError(
                f"{p} is {info.frames / info.samplerate:.0f} s long; a clip may last at most {MAX_CLIP_SECONDS:.0f} s"
            )
        data, rate = sf.read(str(p), dtype="float32", always_2d=True)
    except ClipError:
        raise
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as exc:
        raise ClipError(f"cannot decode {p} as audio (WAV, FLAC or OGG): {exc}") from None
    if data.shape[0] == 0:
        raise ClipError(f"{p} holds no audio")
    samples = np.ascontiguousarray(data.mean(axis=1), dtype=np.float32)
    samples.setflags(write=False)
    lufs = integrated_loudness(samples, int(rate))
    loudness = float(lufs) if math.isfinite(lufs) else None
    _LOGGER.debug("clip %s: %.2f s at %d Hz, %s LUFS", p, len(samples) / rate, rate, loudness)
    return Clip(p, samples, int(rate), loudness)


class ClipLibrary:
    """The configured clips by name (``clips: {bell: /etc/announcer/clips/bell.wav}``), decoded.

    Built with the runtime, so a clip file removed or changed later does not touch what plays
    until the next reload.
    """

    def __init__(self, clips: dict[str, Clip] | None = None) -> None:
        self._clips = dict(clips or {})

    @classmethod
    def from_config(cls, cfg: Any) -> ClipLibrary:
        """Every clip of ``cfg.clips`` (already decoded by the config check: no second decode)."""
        return cls({name: load_clip(path) for name, path in cfg.clips.items()})

    def names(self) -> list[str]:
        return sorted(self._clips)

    def clip(self, name: str) -> Clip:
        """The clip called ``name``; KeyError when it is not configured."""
        return self._clips[name]

    def audio(self, name: str, rate: int) -> Audio:
        return self._clips[name].at(rate)
