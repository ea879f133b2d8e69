"""The Sambert worker (announcer/workers/sambert.py) as a real process, over the Wyoming protocol.

The worker runs on a Python 3.8-3.10 interpreter with the *stand-in* modelscope, ttsfrd
and kantts of tests/standins on its PYTHONPATH (not the real model: see
tests/standins/README.md). The stand-in's audio is a tone whose pitch says which voice
and whose length says which emotion reached the acoustic model, and it logs every
front-end call, so the tests check the mapping on what the worker actually sent.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from standins import harness as h

from announcer.workers import sambert as worker

VOICE = "zhiyan_emo"
MAPPED = {
    "neutral": "neutral",
    "happy": "happy",
    "sad": "sad",
    "angry": "angry",
    "fearful": "fear",
    "surprised": "surprise",
}


class Worker:
    def __init__(self, py: str, tmp: Path, *args: str, **env: str) -> None:
        self.tmp = tmp
        self.model = h.make_model_dir(tmp / "model")
        self.port = h.free_port()
        self.proc = subprocess.Popen(
            h.worker_command(py, self.model, f"tcp://127.0.0.1:{self.port}", *args),
            env=h.worker_env(tmp, **env),
            stderr=subprocess.PIPE,
            text=True,
        )
        self.info = h.wait_describe(self.port, self.proc)

    def say(self, text: str, voice: str | None = None, context: dict[str, Any] | None = None) -> h.Reply:
        return h.synthesize(self.port, text, voice, context)

    def log(self) -> list[dict[str, Any]]:
        return h.standin_log(self.tmp)

    def stop(self) -> str:
        self.proc.terminate()
        _, err = self.proc.communicate(timeout=15)
        return err


@pytest.fixture(scope="module")
def symbols_worker(worker_py: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    w = Worker(worker_py, tmp_path_factory.mktemp("symbols"))
    yield w
    w.stop()


def _sentence_seconds(reply: h.Reply) -> list[float]:
    assert reply.rate == 16000 and reply.stopped, reply
    return [round(len(c) / reply.rate, 3) for c in reply.chunks]


# ------------------------------------------------------------------------------ protocol
def test_describe_lists_each_voice_and_its_emotion_variants(symbols_worker: Worker) -> None:
    (program,) = symbols_worker.info["tts"]
    names = [v["name"] for v in program["voices"]]
    for voice in h.VOICES:
        assert voice in names
        assert all(f"{voice}-{e}" in names for e in worker.EMOTIONS)
    assert program["name"] == "sambert" and program["installed"]
    assert "symbols" in program["voices"][0]["description"]


def test_each_voice_has_its_own_timbre(symbols_worker: Worker) -> None:
    for voice in h.VOICES:
        reply = symbols_worker.say("测试。", voice)
        assert h.dominant_hz(reply.samples, reply.rate) == pytest.approx(h.VOICE_HZ[voice], abs=10)


@pytest.mark.parametrize("emotion", worker.EMOTIONS)
def test_emotion_voice_reaches_the_acoustic_model_as_sambert_category(symbols_worker: Worker, emotion: str) -> None:
    text = f"{emotion}请注意。"
    reply = symbols_worker.say(text, f"{VOICE}-{emotion}")
    assert _sentence_seconds(reply) == [h.EMOTION_SECONDS[MAPPED[emotion]]]
    assert h.dominant_hz(reply.samples, reply.rate) == pytest.approx(h.VOICE_HZ[VOICE], abs=10)
    synth = [r for r in symbols_worker.log() if r["event"] == "synth" and r["symbols"]][-1]
    assert synth["emotion"] == MAPPED[emotion]
    tags = set(t for t in synth["symbols"].split("$") if t.startswith("emotion_"))
    assert tags == {f"emotion_{MAPPED[emotion]}"}  # every symbol's tag was replaced
    front = [r for r in symbols_worker.log() if r["event"] == "frontend"][-1]
    assert front["input"] == text  # symbols mode: the text goes in plain, the tags are edited after


def test_intensity_below_half_speaks_neutral_in_symbols_mode(symbols_worker: Worker) -> None:
    low = symbols_worker.say("小心。", f"{VOICE}-angry", {"announcer_style": {"intensity": 0.3, "speed": 1.0}})
    high = symbols_worker.say("小心。", f"{VOICE}-angry", {"announcer_style": {"intensity": 0.5}})
    assert _sentence_seconds(low) == [h.EMOTION_SECONDS["neutral"]]
    assert _sentence_seconds(high) == [h.EMOTION_SECONDS["angry"]]


def test_emotion_from_context_when_the_voice_has_none(symbols_worker: Worker) -> None:
    reply = symbols_worker.say("你好。", VOICE, {"emotion": "sad"})
    assert _sentence_seconds(reply) == [h.EMOTION_SECONDS["sad"]]
    default = symbols_worker.say("你好。")  # no voice: the first of voices.json, neutral
    assert h.dominant_hz(default.samples, default.rate) == pytest.approx(h.VOICE_HZ["zhitian_emo"], abs=10)
    assert _sentence_seconds(default) == [h.EMOTION_SECONDS["neutral"]]


def test_sentence_by_sentence_one_chunk_each(symbols_worker: Worker) -> None:
    reply = symbols_worker.say("第一句。第二句！第三句？第四句；最后", f"{VOICE}-happy")
    assert _sentence_seconds(reply) == [h.EMOTION_SECONDS["happy"]] * 5
    inputs = [r["input"] for r in symbols_worker.log() if r["event"] == "frontend"][-5:]
    assert inputs == ["第一句。", "第二句！", "第三句？", "第四句；", "最后"]


def test_punctuation_only_text_answers_with_empty_audio(symbols_worker: Worker) -> None:
    reply = symbols_worker.say("。")  # the wyoming engine's probe sends "."
    assert reply.stopped and reply.rate == 16000 and reply.chunks == []


def test_bad_voice_or_emotion_is_an_error_event_and_the_worker_keeps_serving(symbols_worker: Worker) -> None:
    bad = symbols_worker.say("你好。", "nobody")
    assert bad.error is not None and "unknown voice 'nobody'" in bad.error and "zhitian_emo" in bad.error
    bad = symbols_worker.say("你好。", f"{VOICE}-bored")
    assert bad.error is not None and "unknown voice" in bad.error
    bad = symbols_worker.say("你好。", VOICE, {"emotion": "bored"})
    assert bad.error is not None and "unknown emotion 'bored'" in bad.error
    assert symbols_worker.say("你好。", VOICE).stopped


def test_ssml_mode_sends_emotion_markup_with_clamped_intensity(worker_py: str, tmp_path: Path) -> None:
    w = Worker(worker_py, tmp_path, "--emotion-mode", "ssml")
    try:
        assert "ssml" in w.info["tts"][0]["voices"][0]["description"]
        reply = w.say("着火了！快跑。", f"{VOICE}-fearful", {"announcer_style": {"intensity": 2.0}})
        assert _sentence_seconds(reply) == [h.EMOTION_SECONDS["fear"]] * 2
        fronts = [r for r in w.log() if r["event"] == "frontend"]
        assert fronts[-2]["input"] == '<speak><emotion category="fear" intensity="2.00">着火了！</emotion></speak>'
        assert all("emotion_fear" in r["symbols"] for r in fronts[-2:])
        plain = w.say("你好。", f"{VOICE}-happy", {"intensity": 0})  # intensity 0: plain text
        assert _sentence_seconds(plain) == [h.EMOTION_SECONDS["neutral"]]
        assert w.log()[-2]["input"] == "你好。"
    finally:
        w.stop()


def test_synthesis_failure_is_an_error_event_not_a_crash(worker_py: str, tmp_path: Path) -> None:
    w = Worker(worker_py, tmp_path, SAMBERT_STANDIN_FAIL_ON="坏")
    try:
        bad = w.say("好句子。坏句子。")
        assert bad.error is not None and "synthesis failed" in bad.error
        assert w.say("好句子。").stopped and w.proc.poll() is None
    finally:
        w.stop()


def test_sigterm_stops_the_worker_cleanly(worker_py: str, tmp_path: Path) -> None:
    w = Worker(worker_py, tmp_path)
    err = w.stop()
    assert w.proc.returncode == 0, err
    assert "stopped" in err


# ------------------------------------------------------------------------- start-up errors
def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == worker.EXIT_SETUP, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sambert worker: ")
    return lines[0]


def test_check_loads_everything_and_exits_0(worker_py: str, tmp_path: Path) -> None:
    model = h.make_model_dir(tmp_path / "model")
    result = h.run_worker(worker_py, tmp_path, model, "--check")
    assert result.returncode == 0, result.stderr
    assert "ok: modelscope 0.0.0+standin, 4 voice(s)" in result.stdout and "16000 Hz" in result.stdout
    assert (model / "resource" / "frontend.marker").exists()  # resource.zip was unzipped, as the real model does


@pytest.mark.parametrize(
    "missing",
    [
        "configuration.json",
        "resource.zip",
        "voices/voices.json",
        "voices/zhizhe_emo/am/config.yaml",
        "voices/zhibei_emo/voc/config.yaml",
        "voices/zhitian_emo/voc/ckpt",
    ],
)
def test_missing_model_file_names_the_path(worker_py: str, tmp_path: Path, missing: str) -> None:
    model = h.make_model_dir(tmp_path / "model")
    target = model / missing
    if target.is_dir():
        for f in target.iterdir():
            f.unlink()
        target.rmdir()
    else:
        target.unlink()
    line = _one_error_line(h.run_worker(worker_py, tmp_path, model))
    assert f"model file missing: {target}" in line
    assert "damo/speech_sambert-hifigan_tts_zh-cn_16k" in line and "docs/sambert.md" in line


def test_checkpoint_dir_without_checkpoints(worker_py: str, tmp_path: Path) -> None:
    model = h.make_model_dir(tmp_path / "model")
    (model / "voices/zhiyan_emo/am/ckpt/checkpoint_0.pth").unlink()
    line = _one_error_line(h.run_worker(worker_py, tmp_path, model))
    assert f"{model}/voices/zhiyan_emo/am/ckpt/checkpoint_*.pth" in line


def test_missing_model_dir(worker_py: str, tmp_path: Path) -> None:
    line = _one_error_line(h.run_worker(worker_py, tmp_path, tmp_path / "nowhere"))
    assert f"model directory missing: {tmp_path / 'nowhere'}" in line


def test_missing_ttsfrd_says_pypi_is_a_placeholder(worker_py: str, tmp_path: Path) -> None:
    model = h.make_model_dir(tmp_path / "model")
    line = _one_error_line(h.run_worker(worker_py, tmp_path, model, packages=("modelscope", "kantts")))
    assert "ttsfrd is not installed" in line and "placeholder" in line and "docs/sambert.md" in line
    assert "ModelScope's release page" in line


def test_placeholder_ttsfrd_is_recognised(worker_py: str, tmp_path: Path) -> None:
    model = h.make_model_dir(tmp_path / "model")
    fake = tmp_path / "placeholder"
    (fake / "ttsfrd").mkdir(parents=True)
    (fake / "ttsfrd" / "__init__.py").write_text("")  # what an empty PyPI placeholder amounts to
    env = h.worker_env(tmp_path, ("modelscope", "kantts"))
    env["PYTHONPATH"] = f"{fake}:{env['PYTHONPATH']}"
    result = subprocess.run(
        h.worker_command(worker_py, model, f"tcp://127.0.0.1:{h.free_port()}"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    line = _one_error_line(result)
    assert "no TtsFrontendEngine" in line and "PyPI placeholder" in line and "pip uninstall ttsfrd" in line


def test_missing_kantts_and_placeholder_kantts(worker_py: str, tmp_path: Path) -> None:
    model = h.make_model_dir(tmp_path / "model")
    line = _one_error_line(h.run_worker(worker_py, tmp_path, model, packages=("modelscope", "ttsfrd")))
    assert "kantts is not installed" in line and "placeholder" in line
    fake = tmp_path / "placeholder"
    (fake / "kantts").mkdir(parents=True)
    (fake / "kantts" / "__init__.py").write_text("")
    env = h.worker_env(tmp_path / "b", ("modelscope", "ttsfrd"))
    env["PYTHONPATH"] = f"{fake}:{env['PYTHONPATH']}"
    result = subprocess.run(
        h.worker_command(worker_py, model, f"tcp://127.0.0.1:{h.free_port()}"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "kantts has no kantts.models: that is the PyPI placeholder" in _one_error_line(result)


def test_missing_modelscope(worker_py: str, tmp_path: Path) -> None:
    model = h.make_model_dir(tmp_path / "model")
    line = _one_error_line(h.run_worker(worker_py, tmp_path, model, packages=("ttsfrd", "kantts")))
    assert "modelscope is not installed" in line and "requirements-sambert.txt" in line


def test_wrong_python_version(tmp_path: Path) -> None:
    if (3, 8) <= sys.version_info[:2] <= (3, 10):
        pytest.skip("the test interpreter is itself in the supported range")
    model = h.make_model_dir(tmp_path / "model")
    line = _one_error_line(h.run_worker(sys.executable, tmp_path, model))
    assert f"Python {sys.version_info[0]}.{sys.version_info[1]}" in line and "3.8-3.10" in line


def test_unknown_default_voice(worker_py: str, tmp_path: Path) -> None:
    model = h.make_model_dir(tmp_path / "model")
    line = _one_error_line(h.run_worker(worker_py, tmp_path, model, "--voice", "nobody"))
    assert "--voice 'nobody' is not in the model" in line


def test_port_in_use(worker_py: str, tmp_path: Path, symbols_worker: Worker) -> None:
    model = h.make_model_dir(tmp_path / "model")
    result = subprocess.run(
        h.worker_command(worker_py, model, f"tcp://127.0.0.1:{symbols_worker.port}"),
        env=h.worker_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == worker.EXIT_SETUP
    assert f"cannot listen on tcp://127.0.0.1:{symbols_worker.port}" in result.stderr.strip().splitlines()[-1]


def test_read_only_model_dir_is_loaded_through_a_writable_mirror(worker_py: str, tmp_path: Path) -> None:
    model = h.make_model_dir(tmp_path / "model")
    work = tmp_path / "work"
    mirror = worker.writable_model_dir(str(model), str(work), writable=lambda d: d != str(model))
    assert mirror == str(work)
    assert sorted(p.name for p in work.iterdir()) == ["configuration.json", "resource.zip", "voices"]
    assert all((work / n).is_symlink() for n in ("configuration.json", "resource.zip", "voices"))
    # the stand-in model loads from the mirror and unzips resource.zip there, not into the model dir
    result = h.run_worker(worker_py, tmp_path, work, "--check")
    assert result.returncode == 0, result.stderr
    assert (work / "resource" / "frontend.marker").exists() and not (model / "resource").exists()
    with pytest.raises(worker.SetupError, match="give --work-dir a writable directory"):
        worker.writable_model_dir(str(model), str(tmp_path / "w2"), writable=lambda d: False)


# ------------------------------------------------------------------------------ pure helpers
def test_emotion_mapping_rules() -> None:
    assert [worker.symbol_emotion(e, 1.0) for e in worker.EMOTIONS] == list(MAPPED.values())
    assert worker.symbol_emotion("happy", 0.49) == "neutral" and worker.symbol_emotion("happy", 0.5) == "happy"
    assert (
        worker.ssml_text("a<b", "surprised", 5)
        == '<speak><emotion category="surprise" intensity="2.00">a&lt;b</emotion></speak>'
    )
    assert worker.ssml_text("x", "sad", 0.001) == '<speak><emotion category="sad" intensity="0.01">x</emotion></speak>'
    assert worker.ssml_text("x", "neutral", 1) == "x" and worker.ssml_text("x", "sad", 0) == "x"
    assert worker.edit_symbols("{a$emotion_neutral$F7} {b$emotion_neutral$F7}", "fear") == (
        "{a$emotion_fear$F7} {b$emotion_fear$F7}",
        2,
    )
    assert worker.parse_voice("zhitian_emo-fear", ["zhitian_emo"], "zhitian_emo") == ("zhitian_emo", "fearful")
    assert worker.parse_voice(None, ["zhitian_emo"], "zhitian_emo") == ("zhitian_emo", None)
    with pytest.raises(ValueError):
        worker.parse_voice("zhitian_emo-bored", ["zhitian_emo"], "zhitian_emo")
    assert worker.split_sentences("一。！二 three; 四") == ["一。！", "二 three;", "四"]
    assert worker.clamp_intensity("x") == 1.0 and worker.clamp_intensity(9) == 2.0


def test_worker_source_runs_on_python_3_8() -> None:
    """No 3.9+ syntax at run time: compile the worker with a 3.8 interpreter when there is one."""
    import glob
    import os

    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.8.*/bin/python3")))
    if not candidates:
        pytest.skip("no Python 3.8 here")
    src = Path(worker.__file__)
    result = subprocess.run(
        [
            candidates[-1],
            "-c",
            f"import runpy,sys; sys.argv=['x','--help']; runpy.run_path({str(src)!r}, run_name='__main__')",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0 and "--emotion-mode" in result.stdout, result.stderr


def test_worker_imports_nothing_else_from_announcer() -> None:
    text = Path(worker.__file__).read_text(encoding="utf-8")
    assert "from announcer" not in text and "import announcer" not in text and "from .." not in text
