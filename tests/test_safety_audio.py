"""Issue 15, finding 12: the same input gives the same samples, cached or not.

``announcer say`` of one text twice with one cache directory gave WAVs that differed from about
1.6 s on (by up to 0.022): the loudness normaliser changed its gain at chunk boundaries, and a
cached clause arrives as one chunk where a fresh one streams in windows. Now the speaker chain
works in fixed blocks counted from the start of the speech, so chunking cannot matter.

Through the real command line (``say --out`` and ``say`` to a ``file`` speaker, which goes
through the scheduler and the player), each with a cold and then a warm cache, and the chain
itself fed one signal in random splits.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from announcer.audio.chimes import ChimeLibrary
from announcer.audio.loudness import LoudnessState
from announcer.playback.speaker_chain import SpeakerChain
from announcer.sinks.file_sink import Config as FileConfig

pytestmark = pytest.mark.timeout(300)

TEXT = "各位旅客请注意，开往北京的G102次列车即将进站，请站在黄线以外，谢谢合作。下一班列车将于十分钟后到达。"


def config(root: Path) -> Path:
    path = root / "announcer.yaml"
    path.write_text(
        f"""engines: {{zh: {{type: embedded-zh}}}}
speakers:
  wav: {{type: file, directory: {root}/wav}}
cache: {{directory: {root}/cache}}
spool: {{path: {root}/spool.sqlite3}}
homeassistant: {{enabled: false}}
""",
        encoding="utf-8",
    )
    return path


def say(cfg: Path, *args: str) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "announcer", "say", "-c", str(cfg), *args], capture_output=True, text=True, timeout=240
    )
    assert r.returncode == 0, r.stderr[-2000:]


def samples(path: Path) -> np.ndarray:
    data, rate = sf.read(str(path), dtype="int16")
    assert rate == 24000 and len(data) > rate
    return np.asarray(data)


@pytest.mark.parametrize("extra", [[], ["--emotion", "angry", "--repeat", "2"]])
def test_say_out_is_sample_identical_with_a_cold_and_a_warm_cache(tmp_path: Path, extra: list[str]) -> None:
    cfg = config(tmp_path)
    say(cfg, TEXT, "--out", str(tmp_path / "cold.wav"), *extra)
    assert any((tmp_path / "cache").rglob("*.npy")), "nothing was cached"
    say(cfg, TEXT, "--out", str(tmp_path / "warm.wav"), *extra)
    cold, warm = samples(tmp_path / "cold.wav"), samples(tmp_path / "warm.wav")
    assert len(cold) == len(warm)
    differ = np.flatnonzero(cold != warm)
    assert not len(differ), f"{len(differ)} samples differ, the first at {differ[0] / 24000:.3f} s"


def test_a_file_speaker_plays_what_say_out_writes_cached_or_not(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    say(cfg, TEXT, "--to", "wav", "--id", "cold")  # the player path: scheduler, player, sink
    say(cfg, TEXT, "--to", "wav", "--id", "warm")
    say(cfg, TEXT, "--out", str(tmp_path / "out.wav"))
    cold, warm = samples(tmp_path / "wav" / "cold.wav"), samples(tmp_path / "wav" / "warm.wav")
    assert np.array_equal(cold, warm)
    assert np.array_equal(cold, samples(tmp_path / "out.wav"))


def test_the_chain_does_not_care_how_the_audio_is_chunked() -> None:
    rate = 24000
    rng = np.random.default_rng(15)
    t = np.arange(8 * rate) / rate
    # a "sentence" that gets quieter, with pauses, and a few peaks for the limiter
    x = (np.sin(2 * np.pi * 220 * t) * np.exp(-t / 4) * (np.sin(2 * np.pi * 0.7 * t) > -0.6)).astype(np.float32)
    x[rng.integers(0, len(x), 20)] = 1.8
    chain = SpeakerChain(FileConfig(type="file", directory="/tmp"), ChimeLibrary())

    def run(cuts: list[int]) -> np.ndarray:
        state = LoudnessState.starting_at(-20.0, 4.0)
        return np.concatenate(list(chain.speech(np.split(x, cuts), 0.7, rate=rate, level_db=4.0, state=state)))

    whole = run([])
    assert len(whole) == len(x)
    for seed in range(5):
        cuts = sorted(np.random.default_rng(seed).integers(1, len(x) - 1, 3 + 20 * seed).tolist())
        assert np.array_equal(run(cuts), whole), seed
