"""The espeak engine: real libespeak-ng through espeakng-loader (the [espeak] extra, installed by scripts/setup.sh)."""

from __future__ import annotations

import subprocess
import sys
import threading

import espeakng_loader  # noqa: F401  (installed by scripts/setup.sh: the [espeak] extra)
import numpy as np
import pytest
from pydantic import ValidationError

from announcer.core.emotions import EMOTIONS
from announcer.core.errors import EngineUnavailable
from announcer.engines.base import Style, create_engine  # noqa: E402
from announcer.engines.espeak import Config, EspeakEngine, espeak_parameters, split_clauses  # noqa: E402

pytestmark = pytest.mark.unit  # the fast lane (make check)

SENTENCE = "This is a test announcement for the kitchen speaker."


@pytest.fixture(scope="module")
def engine() -> EspeakEngine:
    eng = create_engine("fallback", Config(type="espeak"))
    assert isinstance(eng, EspeakEngine)
    eng.load()
    return eng


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def duration(eng: EspeakEngine, text: str, style: Style = Style(), voice: str | None = None) -> float:
    return len(eng.synthesize_clause(text, style, voice)) / eng.sample_rate


def test_english_is_audible_float32_at_22050(engine: EspeakEngine) -> None:
    audio = engine.synthesize_clause(SENTENCE, Style())
    assert engine.sample_rate == 22050
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 1.5 < len(audio) / 22050 < 6.0  # 9 words at 175 wpm is about 3 s
    assert rms(audio) > 0.01
    assert np.abs(audio).max() <= 1.0


@pytest.mark.parametrize("voice, text", [("yue", "各位乘客，列車即將到站。"), ("cmn", "各位乘客，列车即将到站。")])
def test_chinese_voices(engine: EspeakEngine, voice: str, text: str) -> None:
    assert voice in engine.voices, f"espeak-ng voice {voice} missing from espeakng-loader's data"
    audio = engine.synthesize_clause(text, Style(), voice)
    assert 0.8 < len(audio) / engine.sample_rate < 6.0
    assert rms(audio) > 0.01


def test_speed_two_halves_duration(engine: EspeakEngine) -> None:
    normal = duration(engine, SENTENCE)
    fast = duration(engine, SENTENCE, Style(speed=2.0))
    assert 0.4 < fast / normal < 0.65


def test_happy_is_faster_and_louder_than_sad(engine: EspeakEngine) -> None:
    happy = engine.synthesize_clause(SENTENCE, Style("happy", 1.0))
    sad = engine.synthesize_clause(SENTENCE, Style("sad", 1.0))
    neutral = engine.synthesize_clause(SENTENCE, Style())
    assert len(happy) < len(neutral) < len(sad)
    assert rms(happy) > rms(neutral) > rms(sad)


def test_intensity_scales_emotion_offsets() -> None:
    neutral = espeak_parameters(Style(), 175, 50)
    assert neutral == {"rate": 175, "pitch": 50, "range": 50, "volume": 100}
    for emotion in EMOTIONS:
        assert espeak_parameters(Style(emotion, 0.0), 175, 50) == neutral
    one = espeak_parameters(Style("happy", 1.0), 175, 50)
    two = espeak_parameters(Style("happy", 2.0), 175, 50)
    assert one["rate"] > 175 and one["pitch"] > 50
    assert two["pitch"] - 50 == pytest.approx(2 * (one["pitch"] - 50), abs=1)
    sad = espeak_parameters(Style("sad", 2.0), 175, 50)
    assert sad["rate"] < 175 and sad["pitch"] < 50 and sad["volume"] < 100
    angry = espeak_parameters(Style("angry", 1.0), 175, 50)
    assert angry["volume"] > 100 and angry["range"] > 50 and angry["rate"] > 175
    fearful = espeak_parameters(Style("fearful", 1.0), 175, 50)
    assert fearful["rate"] > 175 and fearful["pitch"] > 50 and fearful["range"] < 50
    surprised = espeak_parameters(Style("surprised", 1.0), 175, 50)
    assert surprised["pitch"] > 50 and surprised["range"] > 50
    # clamped to espeak's ranges
    extreme = espeak_parameters(Style("angry", 2.0, 2.0), 450, 100)
    assert extreme["rate"] == 450 and extreme["pitch"] <= 100 and extreme["volume"] <= 200
    assert espeak_parameters(Style("sad", 2.0, 0.5), 80, 0)["rate"] == 80
    # unknown emotion plays as neutral
    assert espeak_parameters(Style("bored"), 175, 50) == neutral


def test_concurrent_threads_do_not_mix(engine: EspeakEngine) -> None:
    texts = {"short": ("en-us", "Hello."), "long": ("en-us", SENTENCE + " " + SENTENCE)}
    if "yue" in engine.voices:
        texts["yue"] = ("yue", "各位乘客，列車即將到站，請準備下車。")
    serial = {name: duration(engine, text, voice=voice) for name, (voice, text) in texts.items()}
    results: dict[str, list[float]] = {name: [] for name in texts}
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        # One engine instance per thread: the synthesizer only serialises calls per instance,
        # so the module-level lock is what keeps the process-global library consistent.
        eng = EspeakEngine(name, Config(type="espeak"))
        voice, text = texts[name]
        try:
            for _ in range(5):
                results[name].append(duration(eng, text, voice=voice))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(name,)) for name in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    for name, got in results.items():
        assert len(got) == 5
        for d in got:  # espeak-ng varies by a few ms between runs; mixing would be far off
            assert d == pytest.approx(serial[name], rel=0.05), name


def test_voices_and_declarations(engine: EspeakEngine) -> None:
    assert engine.default_voice == "en-us"
    assert {"en-us", "en-gb"} <= set(engine.voices)
    assert engine.emotions == EMOTIONS
    info = engine.describe()
    assert info["type"] == "espeak" and info["sample_rate"] == 22050
    other = EspeakEngine("zh", Config(type="espeak", voice="cmn"))
    assert other.voices[0] == "cmn"
    assert engine.fingerprint != EspeakEngine("x", Config(type="espeak", rate_wpm=200)).fingerprint


def test_config_is_strict() -> None:
    with pytest.raises(ValidationError):
        Config(type="espeak", speed=3)
    with pytest.raises(ValidationError):
        Config(type="espeak", rate_wpm=10)
    cfg = Config(type="espeak")
    assert (cfg.voice, cfg.rate_wpm, cfg.pitch) == ("en-us", 175, 50)


def test_unknown_configured_voice_is_unavailable() -> None:
    eng = EspeakEngine("bad", Config(type="espeak", voice="no-such-voice"))
    with pytest.raises(EngineUnavailable, match="no-such-voice"):
        eng.load()


def test_clauses_split_on_western_and_chinese_punctuation() -> None:
    text = "Attention please. Pi is 3.14, ok?!  各位乘客，列车即将到站。请准备下车！ Time 10:30"
    assert split_clauses(text) == [
        "Attention please.",
        "Pi is 3.14,",
        "ok?!",
        "各位乘客，",
        "列车即将到站。",
        "请准备下车！",
        "Time 10:30",
    ]
    long = " ".join(["word"] * 100)
    parts = split_clauses(long)
    assert all(len(p) <= 200 for p in parts) and " ".join(parts) == long
    assert all(len(p) <= 200 for p in split_clauses("长" * 450))
    assert split_clauses("  ...  ") == []


def test_pause_after_depends_on_punctuation(engine: EspeakEngine) -> None:
    full, semi, comma, none = (engine.pause_after(c, Style()) for c in ("Done.", "First;", "Then,", "Word"))
    assert full > semi > comma > none == 0.0
    assert engine.pause_after("完成。", Style()) == full
    assert engine.pause_after("Done.", Style(speed=2.0)) == pytest.approx(full / 2)


def test_missing_library_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['espeakng_loader'] = None\n"
        "from announcer.engines.espeak import EspeakEngine, Config\n"
        "from announcer.core.errors import EngineUnavailable\n"
        "eng = EspeakEngine('e', Config(type='espeak'))\n"
        "assert eng.voices[0] == 'en-us'\n"
        "try:\n    eng.load()\nexcept EngineUnavailable as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "pip install 'announcer[espeak]'" in out.stdout


def test_import_is_cheap() -> None:
    code = (
        "import sys, announcer.engines.espeak as m\n"
        "assert m._LIBRARY is None\n"
        "assert 'espeakng_loader' not in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
