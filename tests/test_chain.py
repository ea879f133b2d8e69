"""The speaker chain on real embedded-zh output: loudness, emotion offsets, volume, limiter, chimes, resampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from announcer.audio.chimes import ChimeLibrary
from announcer.audio.dsp import PEAK_CEILING, limit, resample
from announcer.audio.loudness import LoudnessState, integrated_loudness
from announcer.engines.base import Style, create_engine
from announcer.engines.embedded_zh import Config as ZhConfig
from announcer.engines.embedded_zh import EmbeddedZhEngine
from announcer.engines.prosody import prosody_for
from announcer.playback.speaker_chain import DEFAULT_TARGET_LUFS, SpeakerChain, emotion_level_db
from announcer.sinks.sounddevice_sink import Config as DeviceConfig

pytestmark = pytest.mark.unit  # the fast lane (make check)

TEXT = "注意，各位旅客请注意，开往北京的G102次列车即将进站，请站在黄线以外。"
SR = 24000


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedZhEngine:
    eng = create_engine("zh", ZhConfig(type="embedded-zh"), tmp_path_factory.mktemp("chain-cache"))
    assert isinstance(eng, EmbeddedZhEngine)
    eng.load()
    return eng


@pytest.fixture(scope="module")
def clauses(engine: EmbeddedZhEngine) -> dict[str, list[np.ndarray]]:
    """Engine output per emotion, one array per clause (as the player receives it)."""
    out = {}
    for emotion in ("neutral", "angry", "sad", "happy"):
        style = Style(emotion, 1.0, 1.0)
        out[emotion] = [engine.synthesize_clause(c, style) for c in engine.clauses(TEXT)]
    return out


def chain(volume: float = 1.0, **kw: object) -> SpeakerChain:
    return SpeakerChain(DeviceConfig(type="sounddevice", volume=volume), ChimeLibrary(), **kw)  # type: ignore[arg-type]


def play(ch: SpeakerChain, chunks: list[np.ndarray], emotion: str, gain: float = 1.0) -> np.ndarray:
    state = LoudnessState()
    level = emotion_level_db(emotion, 1.0)
    return np.concatenate([ch.process(c, gain, rate=SR, level_db=level, state=state) for c in chunks])


def test_emotion_level_is_the_presets_gain() -> None:
    assert emotion_level_db("neutral") == 0.0
    assert emotion_level_db("angry", 1.0) == prosody_for("angry", 1.0, 1.0).gain_db == 4.0
    assert emotion_level_db("sad", 0.5) == pytest.approx(-2.0)
    assert emotion_level_db("no-such-emotion") == 0.0


@pytest.mark.parametrize("emotion", ["neutral", "angry", "sad", "happy"])
def test_output_is_at_target_plus_the_emotion_offset(clauses: dict[str, list[np.ndarray]], emotion: str) -> None:
    out = play(chain(), clauses[emotion], emotion)
    expected = DEFAULT_TARGET_LUFS + emotion_level_db(emotion)
    assert integrated_loudness(out, SR) == pytest.approx(expected, abs=1.0)
    assert np.max(np.abs(out)) <= PEAK_CEILING


def test_emotion_offsets_survive_normalisation(clauses: dict[str, list[np.ndarray]]) -> None:
    ch = chain()
    loud = {e: integrated_loudness(play(ch, clauses[e], e), SR) for e in clauses}
    assert loud["angry"] - loud["neutral"] == pytest.approx(emotion_level_db("angry"), abs=1.0)
    assert loud["neutral"] - loud["sad"] == pytest.approx(-emotion_level_db("sad"), abs=1.0)
    assert loud["sad"] < loud["neutral"] < loud["happy"] < loud["angry"]


def test_normalisation_removes_the_engines_gain(clauses: dict[str, list[np.ndarray]]) -> None:
    # without a level offset every emotion lands on the target, whatever the engine did
    ch = chain()
    raw = {e: integrated_loudness(np.concatenate(c), SR) for e, c in clauses.items()}
    assert raw["angry"] - raw["sad"] > 6.0  # the engine applied the presets' gains
    for e, c in clauses.items():
        assert integrated_loudness(play_flat(ch, c), SR) == pytest.approx(DEFAULT_TARGET_LUFS, abs=1.0), e


def play_flat(ch: SpeakerChain, chunks: list[np.ndarray]) -> np.ndarray:
    state = LoudnessState()
    return np.concatenate([ch.process(c, 1.0, rate=SR, state=state) for c in chunks])


def test_gain_moves_less_after_the_first_clause(clauses: dict[str, list[np.ndarray]]) -> None:
    state = LoudnessState()
    gains = []
    for c in clauses["neutral"]:
        chain().process(c, 1.0, rate=SR, state=state)
        gains.append(state.gain_db)
    steps = np.abs(np.diff(gains))
    assert len(gains) >= 3 and steps.max() < 3.0, gains


def test_volume_scales_the_output(clauses: dict[str, list[np.ndarray]]) -> None:
    full = play(chain(), clauses["sad"], "sad")
    half = play(chain(), clauses["sad"], "sad", gain=0.5)
    np.testing.assert_allclose(half, full * 0.5, atol=1e-6)
    assert integrated_loudness(half, SR) == pytest.approx(integrated_loudness(full, SR) - 6.02, abs=0.01)
    ch = chain(volume=0.5)
    assert ch.gain(None) == 0.5 and ch.gain(0.5) == 0.25 and ch.gain(1.0, cap=0.3) == 0.3


def test_old_signature_keeps_the_old_behaviour(clauses: dict[str, list[np.ndarray]]) -> None:
    c = clauses["neutral"][1]
    np.testing.assert_allclose(chain().process(c, 0.5), c * 0.5, atol=1e-7)  # volume only, no normalisation
    no_norm = chain(target_lufs=None)
    np.testing.assert_allclose(no_norm.process(c, 0.5, rate=SR, level_db=6.0), c * 0.5, atol=1e-7)


def test_silence_passes_through(clauses: dict[str, list[np.ndarray]]) -> None:
    state = LoudnessState()
    out = chain().process(np.zeros(SR, np.float32), 1.0, rate=SR, state=state)
    assert not out.any() and state.gain_db is None
    assert len(chain().process(np.zeros(0, np.float32), 1.0, rate=SR)) == 0


def test_limiter_never_passes_the_ceiling() -> None:
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(SR * 3) * 0.8).astype(np.float32)
    x[1000] = 5.0
    x[-1] = -3.0
    y = limit(x, rate=SR)
    assert np.max(np.abs(y)) <= PEAK_CEILING
    quiet = rng.standard_normal(SR).astype(np.float32) * 0.1
    assert limit(quiet, rate=SR) is not None and np.array_equal(limit(quiet, rate=SR), quiet)


def test_limiter_turns_down_only_the_peaks() -> None:
    t = np.arange(SR * 2) / SR
    x = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    x[SR] = 1.5  # one click in the middle
    y = limit(x, rate=SR)
    assert np.max(np.abs(y)) <= PEAK_CEILING
    far = np.abs(np.arange(len(x)) - SR) > int(0.011 * SR)
    np.testing.assert_array_equal(y[far], x[far])  # untouched beyond the 5 ms look-ahead and hold


def test_loud_angry_speech_is_limited_not_clipped(clauses: dict[str, list[np.ndarray]]) -> None:
    out = play(chain(), clauses["angry"], "angry")
    boosted = np.concatenate(
        [chain().process(c, 1.0, rate=SR, level_db=12.0, state=LoudnessState()) for c in clauses["angry"]]
    )
    assert np.max(np.abs(out)) <= PEAK_CEILING and np.max(np.abs(boosted)) <= PEAK_CEILING
    assert integrated_loudness(boosted, SR) > integrated_loudness(out, SR) + 4.0  # limiting, not scaling down


@pytest.mark.parametrize("name", ["ding-dong", "alarm"])
@pytest.mark.parametrize("rate", [16000, 24000, 48000])
def test_builtin_chimes_are_audible_and_do_not_clip(name: str, rate: int) -> None:
    chime = ChimeLibrary().get(name, rate)
    assert chime.dtype == np.float32
    assert 0.3 < np.max(np.abs(chime)) <= PEAK_CEILING
    assert integrated_loudness(chime, rate) > -25.0


def test_prelude_is_lead_in_then_chime() -> None:
    ch = chain()
    pre = ch.prelude(True, "normal", SR, 0.5)
    lead = int(0.150 * SR)
    assert not pre[:lead].any() and np.abs(pre[lead : lead + 100]).max() > 0
    np.testing.assert_allclose(pre[lead:], ChimeLibrary().get("ding-dong", SR) * 0.5)
    assert len(ch.prelude(False, "normal", SR, 1.0)) == lead


def test_wav_chime_is_resampled(tmp_path: Path) -> None:
    from announcer.audio.samples import Audio
    from announcer.audio.wav import write_wav_atomic

    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)).astype(np.float32)
    write_wav_atomic(tmp_path / "c.wav", Audio(tone, 8000))
    got = ChimeLibrary({"c": tmp_path / "c.wav"}).get("c", 48000)
    assert len(got) == 48000 and dominant_frequency(got, 48000) == pytest.approx(440, abs=2)


def dominant_frequency(x: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spec))])


@pytest.mark.parametrize(("src", "dst"), [(24000, 48000), (24000, 44100), (48000, 16000), (22050, 24000)])
def test_resample_keeps_duration_and_frequency(src: int, dst: int) -> None:
    seconds = 1.5
    x = (0.5 * np.sin(2 * np.pi * 1000 * np.arange(int(seconds * src)) / src)).astype(np.float32)
    y = resample(x, src, dst)
    assert y.dtype == np.float32
    assert abs(len(y) - seconds * dst) <= 1
    assert dominant_frequency(y, dst) == pytest.approx(1000, abs=1)
    mid = slice(len(y) // 4, 3 * len(y) // 4)
    assert np.sqrt(np.mean(y[mid] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)  # level kept


def test_resample_uses_soxr() -> None:
    from announcer.audio.dsp import _soxr

    assert _soxr() is not None  # a declared dependency; the FFT path is only for a broken install
