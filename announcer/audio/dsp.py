"""Signal helpers every engine and sink shares: resampling, fades and the peak limiter.

All functions work on mono float32 samples.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np

_LOGGER = logging.getLogger(__name__)

PEAK_CEILING = 0.97  # linear; the limiter keeps every sample at or below this
FADE_SECONDS = 0.01
LIMITER_SECONDS = 0.005  # look-ahead (attack) and hold of the peak limiter
_LIMITER_DEFAULT_RATE = 24000  # for callers that do not say the rate


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Band-limited resampling with soxr (HQ); an FFT fallback only if soxr cannot be imported."""
    if src_rate == dst_rate or len(samples) == 0:
        return samples.astype(np.float32, copy=False)
    soxr = _soxr()
    if soxr is not None:
        resampled: np.ndarray = soxr.resample(np.asarray(samples, np.float32), src_rate, dst_rate, quality="HQ").astype(
            np.float32, copy=False
        )
        return resampled
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
        import soxr
    except ImportError as exc:  # a dependency; only a broken install gets here
        _LOGGER.warning("soxr is not importable (%s); resampling with the FFT fallback", exc)
        return None
    return soxr


def fade(
    samples: np.ndarray, rate: int, fade_in: bool = False, fade_out: bool = False, seconds: float = FADE_SECONDS
) -> np.ndarray:
    n = min(len(samples), int(seconds * rate))
    if n == 0:
        return samples
    out: np.ndarray = samples.copy()
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
    mins: np.ndarray = np.minimum(suffix[i], prefix[i + w - 1])
    return mins


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
    smooth = (c[w : w + len(x)] - c[: len(x)]) / w  # mean(held[p .. p+w-1]) <= need[p]
    out = (x * smooth).astype(np.float32)
    limited: np.ndarray = np.clip(out, -ceiling, ceiling)  # float rounding only
    return limited
