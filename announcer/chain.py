"""The audio chain every speaker shares: chime, lead-in, loudness, volume, limiter, fades.

One ``SpeakerChain`` per speaker. The player asks it for the prelude (lead-in silence
then the chime) and passes each synthesized clause chunk through ``process``:

1. loudness normalisation to ``target_lufs`` (BS.1770-4, ``announcer.loudness``), which
   also removes whatever gain the engine applied;
2. the emotion's level offset ``level_db`` (``emotion_level_db``), so angry stays louder
   and sad softer than neutral after normalisation;
3. the volume (``gain``);
4. a look-ahead peak limiter, so nothing ever clips.

Normalisation is streaming: an announcement arrives a clause at a time and the first
clause must play before the next is synthesized. A ``LoudnessState`` per announcement
keeps a running integrated loudness over every clause so far (the current one
included, since it is already whole when it arrives), and each clause gets the gain
that brings that running loudness to the target. The first clause is normalised on
its own; later clauses move the gain less and less, and the change always falls at a
clause boundary, which is the clause's pause. This beats "the first clause's loudness
for the whole announcement" when the first clause is a short call like "注意，".
All functions work on mono float32 at the rate the player asks for.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .audio import db_to_gain, read_wav
from .loudness import LoudnessMeter

_LOGGER = logging.getLogger(__name__)

PEAK_CEILING = 0.97  # linear; the limiter keeps every sample at or below this
FADE_SECONDS = 0.01
DEFAULT_TARGET_LUFS = -16.0  # speech on small speakers: loud and clear, room for emotion offsets
MAX_BOOST_DB = 24.0  # never lift a near-silent clause further than this
LIMITER_SECONDS = 0.005  # look-ahead (attack) and hold of the peak limiter
_LIMITER_DEFAULT_RATE = 24000  # for callers that do not say the rate


def emotion_level_db(emotion: str, intensity: float = 1.0) -> float:
    """The emotion's loudness relative to neutral (dB), from the prosody presets."""
    from .prosody import prosody_for

    return float(prosody_for(emotion, intensity, 1.0).gain_db)


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
    """Band-limited resampling with soxr (HQ); an FFT fallback only if soxr cannot be imported."""
    if src_rate == dst_rate or len(samples) == 0:
        return samples.astype(np.float32, copy=False)
    soxr = _soxr()
    if soxr is not None:
        return soxr.resample(np.asarray(samples, np.float32), src_rate, dst_rate, quality="HQ").astype(
            np.float32, copy=False)
    n_out = int(round(len(samples) * dst_rate / src_rate))
    spec = np.fft.rfft(samples.astype(np.float64))
    n_bins = n_out // 2 + 1
    if n_bins <= len(spec):
        spec = spec[:n_bins]
    else:
        spec = np.concatenate([spec, np.zeros(n_bins - len(spec), spec.dtype)])
    return (np.fft.irfft(spec, n_out) * (n_out / len(samples))).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _soxr() -> Any:
    try:
        import soxr  # type: ignore[import-not-found]
    except ImportError as exc:  # a dependency; only a broken install gets here
        _LOGGER.warning("soxr is not importable (%s); resampling with the FFT fallback", exc)
        return None
    return soxr


class ChimeLibrary:
    """Built-in chimes plus WAV files named in the config (``chimes: {fire: /path/alarm.wav}``).

    ``by_priority`` picks the chime when an announcement just says ``chime: true``
    (default: ``alarm`` for emergency, ``ding-dong`` otherwise); ``end`` is an optional
    chime played after the speech.
    """

    def __init__(self, files: dict[str, Path] | None = None, by_priority: dict[str, str] | None = None,
                 end: str | None = None) -> None:
        self.files = dict(files or {})
        self.by_priority = {"emergency": "alarm", **(by_priority or {})}
        self.end = end
        self._loaded: dict[tuple[str, int], np.ndarray] = {}

    @classmethod
    def from_config(cls, cfg: Any) -> "ChimeLibrary":
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


def _sliding_min(a: np.ndarray, w: int) -> np.ndarray:
    """out[i] = min(a[i:i + w]) for i in 0..len(a) - w, in O(n) (van Herk / Gil-Werman)."""
    n = len(a)
    nb = -(-n // w)
    padded = np.ones(nb * w, a.dtype)
    padded[:n] = a
    blocks = padded.reshape(nb, w)
    prefix = np.minimum.accumulate(blocks, axis=1).reshape(-1)
    suffix = np.minimum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].reshape(-1)
    i = np.arange(n - w + 1)
    return np.minimum(suffix[i], prefix[i + w - 1])


def limit(samples: np.ndarray, ceiling: float = PEAK_CEILING, *, rate: int | None = None) -> np.ndarray:
    """Look-ahead peak limiter: |output| <= ceiling, and only the peaks are turned down.

    The gain each sample needs (ceiling / |x|, at most 1) is held for ``LIMITER_SECONDS``
    with a sliding minimum and then smoothed with a moving average of the same length,
    centred so that every over-ceiling sample gets at least the reduction it needs. The
    gain recovers within 10 ms of a peak, so a loud chunk is not turned down as a whole.
    """
    x = np.asarray(samples, np.float32)
    if len(x) == 0 or float(np.max(np.abs(x))) <= ceiling:
        return x
    w = max(1, int(LIMITER_SECONDS * (rate or _LIMITER_DEFAULT_RATE)))
    mag = np.abs(x).astype(np.float64)
    need = np.minimum(1.0, ceiling / np.maximum(mag, 1e-12))
    ones = np.ones(w - 1)
    held = _sliding_min(np.concatenate([ones, need, ones]), w)  # held[k] = min(need[k-w+1 .. k])
    c = np.concatenate([[0.0], np.cumsum(held)])
    smooth = (c[w:w + len(x)] - c[:len(x)]) / w  # mean(held[p .. p+w-1]) <= need[p]
    out = (x * smooth).astype(np.float32)
    return np.clip(out, -ceiling, ceiling)  # float rounding only


@dataclass
class LoudnessState:
    """Loudness normalisation across one announcement (one per announcement and speaker).

    Engines stream a clause in pieces, so the gain has to be right from the first piece
    and must never jump audibly. The loudness estimate starts from ``prior_lufs`` (what
    this engine's output usually measures, see ``Synthesizer.reference_lufs``) and moves
    to the running integrated loudness of what was actually played, fully after
    ``TRUST_SECONDS`` of audio. Without a prior the running measure is used from the
    first piece. ``process`` ramps from the previous gain to the new one across the
    chunk over ``GLIDE_SECONDS``, so a change is a glide, never a step.
    """

    prior_lufs: float | None = None
    meter: LoudnessMeter | None = None
    gain_db: float | None = None  # the gain given to the last chunk
    seconds: float = 0.0

    @classmethod
    def starting_at(cls, reference_lufs: float | None, level_db: float = 0.0) -> "LoudnessState":
        """A state whose prior is the engine's reference loudness moved by the emotion's level.

        The engine's output already carries the emotion's level (it is what the
        normaliser removes), so that is what the first piece is expected to measure.
        """
        return cls(prior_lufs=None if reference_lufs is None else reference_lufs + level_db)

    def update(self, samples: np.ndarray, rate: int, target_lufs: float) -> float:
        """Add a chunk and return the normalisation gain (dB) it should end at."""
        if self.meter is None or self.meter.rate != rate:
            self.meter = LoudnessMeter(rate)
        self.meter.add(samples)
        self.seconds += len(samples) / rate
        measured = self.meter.integrated()
        if math.isfinite(measured):
            if self.prior_lufs is not None:
                w = min(1.0, self.seconds / TRUST_SECONDS)
                estimate = w * measured + (1.0 - w) * self.prior_lufs
            else:
                estimate = measured
        elif self.prior_lufs is not None:
            estimate = self.prior_lufs
        else:
            return self.gain_db if self.gain_db is not None else 0.0  # silence so far: any gain will do
        self.gain_db = min(target_lufs - estimate, MAX_BOOST_DB)
        return self.gain_db


TRUST_SECONDS = 4.0  # after this much audio the measured loudness alone sets the gain
GLIDE_SECONDS = 0.05  # a gain change is spread over this much audio


class SpeakerChain:
    def __init__(self, speaker_config: Any, chimes: ChimeLibrary,
                 target_lufs: float | None = DEFAULT_TARGET_LUFS) -> None:
        self.config = speaker_config
        self.chimes = chimes
        self.target_lufs = target_lufs  # None: no loudness normalisation

    def gain(self, volume: float | None, cap: float | None = None) -> float:
        """Announcement volume (or the speaker's), capped by quiet hours."""
        g = self.config.volume if volume is None else volume * self.config.volume
        if cap is not None:
            g = min(g, cap)
        return float(g)

    def prelude(self, chime: bool | str, priority: str, rate: int, gain: float) -> np.ndarray:
        parts = [np.zeros(int(self.config.lead_in_ms * rate / 1000), np.float32)]
        name = self.chimes.pick(chime, priority)
        if name:
            parts.append(self.chimes.get(name, rate) * gain)
        return np.concatenate(parts).astype(np.float32)

    def postlude(self, chime: bool | str, rate: int, gain: float) -> np.ndarray:
        """The end chime (config ``audio.end_chime``), unless the announcement has no chime at all."""
        if chime is False or not self.chimes.end:
            return np.zeros(0, np.float32)
        pause = np.zeros(int(0.2 * rate), np.float32)
        return np.concatenate([pause, self.chimes.get(self.chimes.end, rate) * gain]).astype(np.float32)

    def process(self, samples: np.ndarray, gain: float, *, rate: int | None = None, level_db: float = 0.0,
                state: LoudnessState | None = None) -> np.ndarray:
        """One clause chunk: normalise, add the emotion's level, apply the volume, limit.

        Without ``rate`` (or with ``target_lufs=None``) the chunk is not normalised and
        ``level_db`` is ignored, since the engine's own gain is then still in the audio.
        Pass one ``LoudnessState`` for all chunks of an announcement (repeats included);
        without one each chunk is normalised on its own.
        """
        x = np.asarray(samples, np.float32)
        if rate is None or self.target_lufs is None:
            return limit(x * np.float32(gain), rate=rate)
        state = state if state is not None else LoudnessState()
        before = state.gain_db
        after = state.update(x, rate, self.target_lufs)
        if before is None or abs(after - before) < 0.01 or len(x) < 2:
            return limit(x * np.float32(gain * db_to_gain(after + level_db)), rate=rate)
        # glide from the previous gain to the new one over the first GLIDE_SECONDS: no step, no lag
        n = min(len(x), max(2, int(GLIDE_SECONDS * rate)))
        ramp_db = np.full(len(x), after, np.float32)
        ramp_db[:n] = np.linspace(before, after, n, dtype=np.float32)
        ramp_db += np.float32(level_db)
        return limit(x * (np.float32(gain) * np.power(np.float32(10.0), ramp_db / np.float32(20.0))), rate=rate)
