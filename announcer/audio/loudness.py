"""Integrated loudness after ITU-R BS.1770-4 (LUFS), numpy only, streaming or one-shot.

K-weighting is the standard's two biquads (a high shelf, then the RLB high-pass),
designed for any sample rate with the bilinear transform. The analogue parameters are
the ones that reproduce the standard's 48 kHz coefficient table (as libebur128 and
pyloudnorm derive them), so the filter matches the table at 48 kHz and keeps the same
response at other rates.

Filtering: without scipy there is no vectorised IIR, and a per-sample Python loop is
~100x too slow. A biquad cascade started at rest is a linear convolution with its
impulse response, and that response has decayed below 1e-12 after 150 ms (the RLB pole
pair sits at 38 Hz, time constant ~4 ms). So the filter is the impulse response,
truncated there, applied by overlap-add FFT convolution over all blocks at once; it
matches a direct-form biquad cascade to ~1e-12. 10 s at 48 kHz: ~10 ms.

Gating: mean square over 400 ms blocks with 75 % overlap (built from 100 ms
sub-blocks), absolute gate at -70 LUFS, relative gate 10 LU below the loudness of the
blocks that pass the absolute gate. A signal shorter than one block is measured as a
single block.

``LoudnessMeter`` keeps the sub-block energies and the filter's recent input, so
feeding a signal in chunks gives the same result as measuring it whole.

``LoudnessState`` normalises one announcement as it streams: a running estimate that
starts from the engine's reference loudness and glides to what was actually played.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

ABSOLUTE_GATE = -70.0  # LUFS
RELATIVE_GATE = -10.0  # LU below the absolutely gated loudness
BLOCK_SECONDS = 0.4
STEP_SECONDS = 0.1  # 75 % overlap
_OFFSET = -0.691  # the standard's constant: K-weighting's gain at 997 Hz
_PAD_SECONDS = 0.15  # impulse-response length kept, and the streaming filter context

# analogue prototypes whose bilinear transform at 48 kHz gives the standard's table
_SHELF_F0 = 1681.974450955533
_SHELF_GAIN_DB = 3.999843853973347
_SHELF_Q = 0.7071752369554196
_SHELF_VB_EXP = 0.4996667741545416
_HP_F0 = 38.13547087602444
_HP_Q = 0.5003270373238773


def k_weighting(rate: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((b, a) of the high shelf, (b, a) of the RLB high-pass) for ``rate``; a[0] == 1."""
    k = math.tan(math.pi * _SHELF_F0 / rate)
    vh = 10.0 ** (_SHELF_GAIN_DB / 20.0)
    vb = vh**_SHELF_VB_EXP
    a0 = 1.0 + k / _SHELF_Q + k * k
    shelf_b = np.array([vh + vb * k / _SHELF_Q + k * k, 2.0 * (k * k - vh), vh - vb * k / _SHELF_Q + k * k]) / a0
    shelf_a = np.array([a0, 2.0 * (k * k - 1.0), 1.0 - k / _SHELF_Q + k * k]) / a0

    k = math.tan(math.pi * _HP_F0 / rate)
    a0 = 1.0 + k / _HP_Q + k * k
    hp_b = np.array([1.0, -2.0, 1.0])  # the standard leaves the high-pass numerator unnormalised
    hp_a = np.array([a0, 2.0 * (k * k - 1.0), 1.0 - k / _HP_Q + k * k]) / a0
    return (shelf_b, shelf_a), (hp_b, hp_a)


def _response_on_grid(rate: int, n_fft: int) -> np.ndarray:
    """K-weighting's complex response H(e^jw) on the ``rfft`` grid of length ``n_fft``."""
    z1 = np.exp(-2j * np.pi * np.arange(n_fft // 2 + 1) / n_fft)  # z^-1 on the unit circle
    h: np.ndarray = np.ones_like(z1)
    for b, a in k_weighting(rate):
        h *= (b[0] + z1 * (b[1] + z1 * b[2])) / (a[0] + z1 * (a[1] + z1 * a[2]))
    return h


@functools.lru_cache(maxsize=8)
def _kernel(rate: int) -> tuple[int, int, np.ndarray]:
    """(FFT size, impulse-response length, spectrum of the truncated impulse response)."""
    m = max(64, int(_PAD_SECONDS * rate))  # the response has decayed below 1e-12 by then
    n_fft = 1 << (4 * m - 1).bit_length()
    ir = np.fft.irfft(_response_on_grid(rate, n_fft), n_fft)[:m]  # wrap-around is below 1e-20 here
    spectrum = np.fft.rfft(ir, n_fft)
    spectrum.flags.writeable = False
    return n_fft, m, spectrum


def k_filter(samples: np.ndarray, rate: int) -> np.ndarray:
    """K-weighted signal (float64, filter at rest at the start); 2-D input filters each column.

    Overlap-add FFT convolution with the cascade's impulse response, all blocks at once.
    """
    x = np.asarray(samples, np.float64)
    if x.ndim == 2:
        return np.stack([k_filter(x[:, i], rate) for i in range(x.shape[1])], axis=1)
    n = len(x)
    if n == 0:
        empty: np.ndarray = x.copy()
        return empty
    n_fft, m, spectrum = _kernel(rate)
    hop = n_fft - m + 1
    nb = -(-n // hop)
    blocks = np.zeros((nb, hop))
    blocks.reshape(-1)[:n] = x
    y = np.fft.irfft(np.fft.rfft(blocks, n_fft, axis=1) * spectrum, n_fft, axis=1)
    out = np.zeros((nb + 1, hop))
    out[:nb] = y[:, :hop]
    out[1:, : m - 1] += y[:, hop:]  # each block's tail spills into the next block only (m - 1 < hop)
    return out.reshape(-1)[:n]


@functools.lru_cache(maxsize=16)
def _kernel_spectrum(rate: int, n_fft: int) -> np.ndarray:
    """The truncated impulse response's spectrum on an ``n_fft`` grid (for ``_filter_tail``)."""
    size, m, _ = _kernel(rate)
    ir = np.fft.irfft(_response_on_grid(rate, size), size)[:m]
    spectrum = np.fft.rfft(ir, n_fft)
    spectrum.flags.writeable = False
    return spectrum


def _filter_tail(x: np.ndarray, n_out: int, rate: int) -> np.ndarray:
    """The K-weighted last ``n_out`` samples of mono ``x``, whose first ``len(x) - n_out`` samples
    (at least the impulse response's length) are context: one circular FFT convolution the size
    of ``x`` (overlap-save), half of what ``k_filter`` spends on a short chunk."""
    n_fft = 1 << (len(x) - 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, n_fft) * _kernel_spectrum(rate, n_fft), n_fft)
    tail: np.ndarray = y[len(x) - n_out : len(x)]
    return tail


class _Growing:
    """A float64 array appended to in place (amortised doubling)."""

    def __init__(self) -> None:
        self._data = np.zeros(64)
        self.size = 0

    def extend(self, values: np.ndarray) -> None:
        need = self.size + len(values)
        if need > len(self._data):
            grown = np.zeros(max(need, 2 * len(self._data)))
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : need] = values
        self.size = need

    @property
    def values(self) -> np.ndarray:
        return self._data[: self.size]


def _lufs(mean_square: float) -> float:
    return _OFFSET + 10.0 * math.log10(mean_square) if mean_square > 0 else -math.inf


class LoudnessMeter:
    """Integrated loudness of everything ``add``-ed so far (mono, or 2-D with one column per channel)."""

    def __init__(self, rate: int) -> None:
        self.rate = int(rate)
        self.step = max(1, int(round(STEP_SECONDS * self.rate)))
        self._context_len = max(64, int(_PAD_SECONDS * self.rate))
        self._context = np.zeros((0,), np.float64)  # last raw input, so the filter runs on continuously
        self._sub = _Growing()  # sum of squares per complete 100 ms sub-block
        self._pending = np.zeros(0, np.float64)  # squares of the current incomplete sub-block
        self.samples = 0

    def add(self, samples: np.ndarray) -> None:
        x = np.asarray(samples, np.float64)
        if x.shape[0] == 0:
            return
        if self._context.shape[0] and self._context.shape[1:] != x.shape[1:]:
            raise ValueError("channel count changed between chunks")
        ctx = self._context if self._context.shape[0] else np.zeros((0, *x.shape[1:]))
        both = np.concatenate([ctx, x])
        if x.ndim == 1 and len(ctx) == self._context_len:  # streaming: the context holds the filter's state
            y = _filter_tail(both, len(x), self.rate)
        else:
            y = k_filter(both, self.rate)[len(ctx) :]
        self._context = both[-self._context_len :]
        power = np.square(y)
        if power.ndim == 2:
            power = power.sum(axis=1)  # channel weights 1.0 (L, R, C)
        power = np.concatenate([self._pending, power])
        full = len(power) // self.step
        if full:
            self._sub.extend(power[: full * self.step].reshape(full, self.step).sum(axis=1))
        self._pending = power[full * self.step :]
        self.samples += x.shape[0]

    def block_energies(self) -> np.ndarray:
        """Mean square of each 400 ms block (step 100 ms); one block for a shorter signal."""
        sub = self._sub.values
        per_block = int(round(BLOCK_SECONDS / STEP_SECONDS))
        if len(sub) < per_block:
            if self.samples == 0:
                return np.zeros(0)
            return np.array([(sub.sum() + self._pending.sum()) / self.samples])
        c = np.concatenate([[0.0], np.cumsum(sub)])
        energies: np.ndarray = (c[per_block:] - c[:-per_block]) / (per_block * self.step)
        return energies

    def integrated(self) -> float:
        """LUFS; -inf when nothing passes the gates (silence, or nothing added)."""
        return gated_loudness(self.block_energies())


def _windows(sub: np.ndarray, step: int) -> np.ndarray:
    """Mean square of each 400 ms block from 100 ms sub-block sums of squares."""
    per_block = int(round(BLOCK_SECONDS / STEP_SECONDS))
    if len(sub) < per_block:
        return np.array([sub.sum() / max(1, len(sub) * step)])
    c = np.concatenate([[0.0], np.cumsum(sub)])
    energies: np.ndarray = (c[per_block:] - c[:-per_block]) / (per_block * step)
    return energies


def gated_loudness(z: np.ndarray) -> float:
    """Integrated loudness (LUFS) from block mean squares, with both gates."""
    with np.errstate(divide="ignore"):
        levels = _OFFSET + 10.0 * np.log10(z)
    kept = z[levels > ABSOLUTE_GATE]
    if kept.size == 0:
        return -math.inf
    relative = _lufs(float(kept.mean())) + RELATIVE_GATE
    kept = z[(levels > ABSOLUTE_GATE) & (levels > relative)]
    return _lufs(float(kept.mean())) if kept.size else -math.inf


def integrated_loudness(samples: np.ndarray, rate: int) -> float:
    """BS.1770-4 integrated loudness of ``samples`` (mono, or (n, channels)) in LUFS."""
    meter = LoudnessMeter(rate)
    meter.add(samples)
    return meter.integrated()


MAX_BOOST_DB = 24.0  # never lift a near-silent clause further than this
TRUST_SECONDS = 4.0  # after this much audio the measured loudness alone sets the gain
MAX_CORRECTION_DB = 3.0  # the most the gain corrects for what was played so far ...
CORRECT_AFTER_SECONDS = 2.0  # ... once this much was played (a shorter measure swings too much)


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

    A running estimate lags: speech is louder at the start of a sentence, so the estimate
    is high early on and the announcement as a whole came out below the target. So the
    gain also corrects for what was played so far: ``played`` measures the normalised
    output, and once ``CORRECT_AFTER_SECONDS`` were played each chunk gets ``target -
    played`` more (at most ``MAX_CORRECTION_DB`` either way), which brings the whole
    announcement to the target.
    """

    prior_lufs: float | None = None
    meter: LoudnessMeter | None = None
    gain_db: float | None = None  # the gain given to the last chunk
    seconds: float = 0.0
    # the normalised output so far (before level offset and volume): the meter's 100 ms sub-block
    # energies times the gain each was given (the K-filter is linear: no second filter to run)
    played: _Growing = field(default_factory=_Growing)
    _measured_subs: int = 0
    # samples the speaker chain keeps until they fill a block (announcer.playback.speaker_chain)
    pending: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    @classmethod
    def starting_at(cls, reference_lufs: float | None, level_db: float = 0.0) -> LoudnessState:
        """A state whose prior is the engine's reference loudness moved by the emotion's level.

        The engine's output already carries the emotion's level (it is what the
        normaliser removes), so that is what the first piece is expected to measure.
        """
        return cls(prior_lufs=None if reference_lufs is None else reference_lufs + level_db)

    def update(self, samples: np.ndarray, rate: int, target_lufs: float) -> float:
        """Add a chunk and return the normalisation gain (dB) it should end at."""
        if self.meter is None or self.meter.rate != rate:
            self.meter = LoudnessMeter(rate)
            self.played, self._measured_subs = _Growing(), 0
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
            self._note_played(self.gain_db if self.gain_db is not None else 0.0)
            return self.gain_db if self.gain_db is not None else 0.0  # silence so far: any gain will do
        correction = 0.0
        if self.played.size * STEP_SECONDS >= CORRECT_AFTER_SECONDS:
            so_far = gated_loudness(_windows(self.played.values, self.meter.step))
            if math.isfinite(so_far):
                correction = max(-MAX_CORRECTION_DB, min(MAX_CORRECTION_DB, target_lufs - so_far))
        self.gain_db = min(target_lufs - estimate + correction, MAX_BOOST_DB)
        self._note_played(self.gain_db)
        return self.gain_db

    def _note_played(self, gain_db: float) -> None:
        """The sub-blocks the meter completed since the last call, as played at ``gain_db``."""
        assert self.meter is not None
        subs = self.meter._sub.values
        self.played.extend(subs[self._measured_subs :] * 10.0 ** (gain_db / 10.0))
        self._measured_subs = len(subs)
