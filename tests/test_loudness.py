"""The BS.1770-4 meter against the standard's own reference points."""

from __future__ import annotations

import math

import numpy as np
import pytest

from announcer.audio.loudness import LoudnessMeter, integrated_loudness, k_filter, k_weighting

pytestmark = pytest.mark.unit  # the fast lane (make check)

RATES = (8000, 16000, 22050, 24000, 44100, 48000, 96000)


def sine(freq: float, seconds: float, rate: int, amplitude: float = 1.0) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)


def direct_form(x: np.ndarray, b: np.ndarray, a: np.ndarray) -> np.ndarray:
    """A textbook direct-form I biquad, one sample at a time (the reference)."""
    y = np.zeros_like(x)
    x1 = x2 = y1 = y2 = 0.0
    for n, v in enumerate(x):
        out = b[0] * v + b[1] * x1 + b[2] * x2 - a[1] * y1 - a[2] * y2
        x2, x1, y2, y1 = x1, v, y1, out
        y[n] = out
    return y


def test_coefficients_match_the_standard_table_at_48k() -> None:
    (sb, sa), (hb, ha) = k_weighting(48000)
    np.testing.assert_allclose(sb, [1.53512485958697, -2.69169618940638, 1.19839281085285], atol=1e-12)
    np.testing.assert_allclose(sa, [1.0, -1.69065929318241, 0.73248077421585], atol=1e-12)
    np.testing.assert_allclose(hb, [1.0, -2.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(ha, [1.0, -1.99004745483398, 0.99007225036621], atol=1e-12)


@pytest.mark.parametrize("rate", [16000, 44100, 48000])
def test_filter_equals_a_direct_form_biquad_cascade(rate: int) -> None:
    x = np.random.default_rng(rate).standard_normal(4000)
    x[2000:] = 0.0  # the ringing after the signal stops must match too
    (sb, sa), (hb, ha) = k_weighting(rate)
    np.testing.assert_allclose(k_filter(x, rate), direct_form(direct_form(x, sb, sa), hb, ha), atol=1e-9)


@pytest.mark.parametrize("rate", RATES)
def test_full_scale_997_hz_sine_reads_minus_3_01(rate: int) -> None:
    # BS.1770-4: a 0 dBFS 997 Hz sine in one channel reads -3.01 LKFS; the bilinear
    # transform bends the shelf a little at low rates
    tol = 0.02 if rate >= 44100 else 0.06
    assert integrated_loudness(sine(997, 5, rate), rate) == pytest.approx(-3.01, abs=tol)


@pytest.mark.parametrize("rate", [24000, 48000])
def test_level_changes_read_as_level_changes(rate: int) -> None:
    full = integrated_loudness(sine(997, 5, rate), rate)
    assert integrated_loudness(sine(997, 5, rate, 10 ** (-6 / 20)), rate) == pytest.approx(full - 6, abs=1e-6)
    assert integrated_loudness(sine(997, 5, rate, 10 ** (-20 / 20)), rate) == pytest.approx(full - 20, abs=1e-6)


def test_k_weighting_shape() -> None:
    rate = 48000
    ref = integrated_loudness(sine(997, 3, rate), rate)
    assert integrated_loudness(sine(30, 3, rate), rate) < ref - 1.5  # the RLB high-pass
    assert integrated_loudness(sine(4000, 3, rate), rate) == pytest.approx(ref + 3.3, abs=0.5)  # the shelf


def test_short_clip_is_one_block() -> None:
    rate = 24000
    assert integrated_loudness(sine(997, 0.2, rate), rate) == pytest.approx(-3.01, abs=0.05)
    assert integrated_loudness(np.zeros(0), rate) == -math.inf
    assert integrated_loudness(np.zeros(rate), rate) == -math.inf


def test_absolute_gate_ignores_silence() -> None:
    rate = 48000
    tone = sine(997, 4, rate, 0.1)
    with_silence = np.concatenate([tone, np.zeros(10 * rate), tone])
    # only the few 400 ms blocks that straddle an edge (part tone, part silence) lower it
    assert integrated_loudness(with_silence, rate) == pytest.approx(integrated_loudness(tone, rate), abs=0.25)
    assert (
        integrated_loudness(np.concatenate([tone, np.zeros(30 * rate)]), rate) > integrated_loudness(tone, rate) - 0.25
    )


def test_relative_gate_ignores_the_much_quieter_part() -> None:
    rate = 48000
    loud = sine(997, 5, rate, 0.1)
    quiet = sine(997, 5, rate, 0.001)  # 40 dB down, far below the -10 LU relative gate
    both = np.concatenate([loud, quiet])
    # (the blocks straddling the change count, a fraction of a dB)
    assert integrated_loudness(both, rate) == pytest.approx(integrated_loudness(loud, rate), abs=0.25)
    # 6 dB down is above the gate: it counts, and pulls the reading down
    mid = np.concatenate([loud, sine(997, 5, rate, 0.05)])
    assert integrated_loudness(mid, rate) < integrated_loudness(loud, rate) - 1.0


def test_white_noise_reads_louder_than_pink_noise_of_the_same_rms() -> None:
    rate = 48000
    rng = np.random.default_rng(7)
    white = rng.standard_normal(10 * rate)
    spec = np.fft.rfft(rng.standard_normal(10 * rate))
    f = np.fft.rfftfreq(10 * rate, 1 / rate)
    spec[1:] /= np.sqrt(f[1:])
    spec[0] = 0
    pink = np.fft.irfft(spec, 10 * rate)
    white *= 0.1 / np.sqrt(np.mean(white**2))
    pink *= 0.1 / np.sqrt(np.mean(pink**2))
    rms_db = 20 * math.log10(0.1)
    lw, lp = integrated_loudness(white, rate), integrated_loudness(pink, rate)
    # white: most of its power is above 2 kHz, where the shelf adds ~4 dB
    assert rms_db + 2.5 < lw < rms_db + 4.0
    # pink: equal power per octave, the low octaves are cut by the high-pass
    assert rms_db - 2.0 < lp < rms_db + 1.5
    assert lw - lp > 1.5


def test_streaming_equals_one_shot() -> None:
    rate = 24000
    x = np.random.default_rng(3).standard_normal(7 * rate) * np.repeat(np.r_[0.01, 0.3, 0.1, 0.0, 0.2, 0.05, 0.3], rate)
    meter = LoudnessMeter(rate)
    for part in np.array_split(x, 23):
        meter.add(part)
    assert meter.integrated() == pytest.approx(integrated_loudness(x, rate), abs=1e-6)


def test_stereo_sums_channels() -> None:
    rate = 48000
    mono = sine(1000, 3, rate, 10 ** (-23 / 20))
    # EBU Tech 3341 case 1: 1 kHz at -23 dBFS in both channels reads -23 LUFS
    assert integrated_loudness(np.stack([mono, mono], axis=1), rate) == pytest.approx(-23.0, abs=0.1)
