"""The command line as a user runs it: a real subprocess, the real model, real WAV files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

TEXT = "请3号病房的李医生到护士站"


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "ANNOUNCER_CONFIG"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "announcer", *args], capture_output=True, text=True, cwd=cwd, env=full_env, timeout=120
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    # a config-less directory with its own cache, so runs don't share state with the user's
    (tmp_path / "announcer.yaml").write_text(f"cache: {{directory: {tmp_path / 'cache'}}}\n")
    return tmp_path


def wav(path: Path) -> tuple[np.ndarray, int, str]:
    info = sf.info(str(path))
    data, rate = sf.read(str(path), dtype="int16")
    return data, rate, info.subtype


def test_say_out_writes_24k_mono_pcm16_speech_deterministically(workdir: Path) -> None:
    a, b = workdir / "a.wav", workdir / "b.wav"
    r1 = run("say", TEXT, "--emotion", "happy", "--out", str(a), cwd=workdir)
    assert r1.returncode == 0, r1.stderr
    assert r1.stdout.strip() == str(a)
    data, rate, subtype = wav(a)
    assert rate == 24000 and data.ndim == 1 and subtype == "PCM_16"
    assert 2.0 < len(data) / rate < 8.0
    speech = data[int(1.5 * rate) :].astype(np.float64) / 32768  # after the chime
    assert np.sqrt(np.mean(speech**2)) > 0.02
    # a second run in a fresh process (cache disabled) gives the very same samples
    (workdir / "nocache.yaml").write_text("cache: {enabled: false}\n")
    r2 = run("say", TEXT, "--emotion", "happy", "-c", str(workdir / "nocache.yaml"), "--out", str(b), cwd=workdir)
    assert r2.returncode == 0, r2.stderr
    assert np.array_equal(wav(b)[0], data)


def test_speed_and_emotion_change_duration(workdir: Path) -> None:
    durations = {}
    for label, extra in {"neutral": [], "fast": ["--speed", "1.5"], "sad": ["--emotion", "悲伤"]}.items():
        out = workdir / f"{label}.wav"
        r = run("say", TEXT, "--no-chime", *extra, "--out", str(out), cwd=workdir)
        assert r.returncode == 0, r.stderr
        data, rate, _ = wav(out)
        durations[label] = len(data) / rate
    assert durations["fast"] / durations["neutral"] == pytest.approx(2 / 3, rel=0.1)
    assert durations["sad"] > durations["neutral"] * 1.1


@pytest.mark.parametrize(
    "args, field",
    [
        (["", "--out", "x.wav"], "text"),
        (["hi", "--engine", "nope", "--out", "x.wav"], "engine"),
        (["hi", "--speed", "3", "--out", "x.wav"], "speed"),
        (["hi", "--intensity", "-1", "--out", "x.wav"], "intensity"),
        (["hi", "--to", "nowhere", "--out", "x.wav"], "targets"),
        (["hi", "--voice", "nobody", "--out", "x.wav"], "voice"),
    ],
)
def test_bad_input_exits_2_naming_the_field(workdir: Path, args: list[str], field: str) -> None:
    r = run("say", *args, cwd=workdir)
    assert r.returncode == 2
    assert f"{field}:" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (workdir / "x.wav").exists()


def test_unknown_emotion_plays_as_neutral_with_a_warning(workdir: Path) -> None:
    r = run("say", "你好", "--emotion", "grumpy", "--no-chime", "--out", str(workdir / "g.wav"), cwd=workdir)
    assert r.returncode == 0
    assert "unknown emotion 'grumpy'" in r.stderr
    r2 = run("say", "你好", "--no-chime", "--out", str(workdir / "n.wav"), cwd=workdir)
    assert r2.returncode == 0, r2.stderr
    assert np.array_equal(wav(workdir / "g.wav")[0], wav(workdir / "n.wav")[0])


def test_normalize_json(workdir: Path) -> None:
    r = run("normalize", "下午3:30在B区，温度-3.5℃", "--json", cwd=workdir)
    assert r.returncode == 0
    obj = json.loads(r.stdout)
    assert set(obj) == {"input", "normalized", "clauses", "phonemes"}
    assert obj["normalized"] == "下午三点三十分在比区，温度零下三点五摄氏度"
    assert len(obj["clauses"]) == 2 and obj["phonemes"][0][0] == "sil"


def test_check_config(workdir: Path) -> None:
    good = workdir / "good.yaml"
    good.write_text("speakers: {a: {type: file, directory: /tmp/a}}\nzones: {all: [a]}\n")
    r = run("check-config", "-c", str(good), cwd=workdir)
    assert r.returncode == 0 and "1 speaker(s), 1 zone(s)" in r.stdout
    bad = workdir / "bad.yaml"
    bad.write_text("speakers: {a: {type: file}}\nbogus: 1\n")
    r = run("check-config", "-c", str(bad), cwd=workdir)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert lines == ["speakers.a.directory: Field required (line 1)", "bogus: unknown key (line 2)"]
    r = run("check-config", cwd=workdir, env={"ANNOUNCER_CONFIG": str(bad)})
    assert r.returncode == 1


def test_engines_lists_languages_voices_emotions(workdir: Path) -> None:
    cfg = workdir / "two.yaml"
    cfg.write_text("engines: {zh: {type: embedded-zh}, en: {type: espeak, voice: en-us}}\n")
    r = run("engines", "-c", str(cfg), cwd=workdir)
    assert r.returncode == 0, r.stderr
    zh, en = r.stdout.strip().splitlines()
    assert zh.startswith("zh (default): type=embedded-zh sample_rate=24000") and "[ready]" in zh
    assert "emotions=neutral,happy,sad,angry,fearful,surprised" in zh
    assert en.startswith("en: type=espeak sample_rate=22050") and "[ready]" in en


def test_run_without_config_is_an_error(tmp_path: Path) -> None:
    r = run("run", "-c", str(tmp_path / "missing.yaml"), cwd=tmp_path)
    assert r.returncode == 1 and "cannot read" in r.stderr
    r = run("frobnicate", cwd=tmp_path)
    assert r.returncode == 2


def test_chimes_by_priority_and_end_chime(workdir: Path) -> None:
    plain = workdir / "plain.yaml"
    plain.write_text(f"cache: {{directory: {workdir / 'cache'}}}\n")
    ending = workdir / "end.yaml"
    ending.write_text(f"cache: {{directory: {workdir / 'cache'}}}\naudio: {{end_chime: ding-dong}}\n")
    lengths = {}
    for label, cfg, extra in [
        ("none", plain, ["--no-chime"]),
        ("normal", plain, []),
        ("emergency", plain, ["--priority", "emergency"]),
        ("end", ending, []),
    ]:
        out = workdir / f"{label}.wav"
        r = run("say", "请注意", "-c", str(cfg), *extra, "--out", str(out), cwd=workdir)
        assert r.returncode == 0, r.stderr
        lengths[label] = len(wav(out)[0]) / 24000
    assert lengths["normal"] > lengths["none"] + 1.0  # the ding-dong comes first
    assert abs(lengths["emergency"] - lengths["normal"]) > 0.1  # emergency gets the alarm tone instead
    assert lengths["end"] > lengths["normal"] + 1.0  # and an end chime after the speech
    bad = workdir / "bad.yaml"
    bad.write_text("audio: {end_chime: trumpet}\n")
    r = run("check-config", "-c", str(bad), cwd=workdir)
    assert r.returncode == 1 and "audio.end_chime: 'trumpet' is not a chime" in r.stderr


# ------------------------------------------------------------------ the daily routine on the command line
BELL = Path(__file__).resolve().parent.parent / "config" / "clips" / "bell.flac"


@pytest.fixture
def routine(tmp_path: Path) -> Path:
    cfg = tmp_path / "routine.yaml"
    cfg.write_text(
        f"""
timezone: Europe/Berlin
speakers: {{lobby: {{type: file, directory: {tmp_path}/lobby}}}}
clips: {{bell: {BELL}}}
cache: {{directory: {tmp_path}/cache}}
spool: {{path: {tmp_path}/spool.sqlite3}}
templates:
  code_blue: {{text: "{{ward}}号病房，蓝色警报", vars: {{ward: int}}, before: bell, after: bell, repeat: 2}}
schedules:
  shift-bell: {{cron: "0 8,16 * * 1-5", clip: bell}}
  visiting: {{at: ["10:00"], days: [sat, sun], text: 探视时间开始了}}
  season: {{at: ["09:00"], end_date: 2020-01-01, text: 旧的}}
""",
        encoding="utf-8",
    )
    return cfg


def test_say_a_clip_and_a_template_to_a_wav(routine: Path, tmp_path: Path) -> None:
    r = run("say", "--clip", "bell", "--no-chime", "--out", str(tmp_path / "bell.wav"), "-c", str(routine))
    assert r.returncode == 0, r.stderr
    data, rate, _ = wav(tmp_path / "bell.wav")
    assert rate == 16000 and abs(len(data) / rate - (sf.info(str(BELL)).duration + 0.25)) < 0.01
    out = tmp_path / "code.wav"
    r = run("say", "--template", "code_blue", "--var", "ward=3", "--no-chime", "--out", str(out), "-c", str(routine))
    assert r.returncode == 0, r.stderr
    data, rate, _ = wav(out)
    assert rate == 24000 and len(data) / rate > 2 * 2 * 2.4  # twice: bell, speech, bell
    r = run("say", "--template", "code_blue", "--var", "ward=three", "-c", str(routine))
    assert r.returncode == 2 and 'error: vars.ward: must be an integer, got "three" (template code_blue)' in r.stderr
    r = run("say", "--template", "code_blue", "--var", "ward", "-c", str(routine))
    assert r.returncode == 2 and "error: vars: --var 'ward': write NAME=VALUE (e.g. --var ward=3)" in r.stderr
    r = run("say", "-c", str(routine))
    assert r.returncode == 2 and "error: text: required (a non-empty string)" in r.stderr


def test_schedules_lists_the_next_firings(routine: Path, tmp_path: Path) -> None:
    r = run("schedules", "--count", "2", "-c", str(routine))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "next firings (Europe/Berlin):"
    bells = [x for x in lines if "shift-bell-" in x]
    assert len(bells) == 2 and bells[0].startswith("shift-bell  ") and bells[1].startswith("            ")
    assert "(cron 0 8,16 * * 1-5)" in bells[0] and (" 08:00 CE" in bells[0] or " 16:00 CE" in bells[0])
    assert any(x.startswith("visiting") and "(at 10:00 on sat sun)" in x for x in lines)
    assert any(x.startswith("season") and "never again" in x for x in lines)
    (tmp_path / "settings.json").write_text('{"paused_schedules": ["visiting"]}')
    r = run("schedules", "-c", str(routine))
    assert next(x for x in r.stdout.splitlines() if x.startswith("visiting")).endswith("[paused]")


def test_history_reads_the_spool_and_refuses_bad_dates(routine: Path, tmp_path: Path) -> None:
    r = run("history", "-c", str(routine))
    assert r.returncode == 1 and "error: no spool at" in r.stderr
    from announcer.core.announcement import Announcement
    from announcer.core.events import Finished, Queued
    from announcer.spool.history import HistoryRecorder
    from announcer.spool.store import Spool

    spool = Spool(tmp_path / "spool.sqlite3")
    ann = Announcement(
        id="cb-1", text="3号病房，蓝色警报", targets=("lobby",), speakers=("lobby",), received=1748930400.0,
        template="code_blue", vars=(("ward", "3"),), via=(("topic", "ann/say"), ("client", "nurse-2")),
    )  # fmt: skip
    HistoryRecorder(spool).write(
        [(Queued(id="cb-1", targets=("lobby",), priority="normal"), ann), (Finished(id="cb-1", speaker="lobby"), ann)]
    )
    spool.close()
    r = run("history", "--since", "2025-06-03", "--until", "2025-06-04", "-c", str(routine))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "2025-06-03 08:00:00 CEST  cb-1  mqtt(topic=ann/say,client=nurse-2)  finished  lobby:finished  "
        'template code_blue {"ward": "3"}: 3号病房，蓝色警报'
    ]
    r = run("history", "--csv", "--target", "lobby", "-c", str(routine))
    assert r.returncode == 0 and r.stdout.splitlines()[1].startswith(
        "2025-06-03T06:00:00.000Z,2025-06-03 08:00:00 CEST,cb-1"
    )
    assert run("history", "--since", "2025-06-04", "-c", str(routine)).stdout == ""
    r = run("history", "--since", "June", "-c", str(routine))
    assert r.returncode == 2 and "error: --since: 'June' is not an ISO date or time" in r.stderr
