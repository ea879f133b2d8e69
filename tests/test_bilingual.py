"""Bilingual announcements end to end: ``announcer run`` with two Kokoro engines (Mandarin and
English, ``languages: {zh: kokoro-zh, en: kokoro-en}``), a real mosquitto, a file speaker.

One chime, the text by the Mandarin engine, then the translation by the English one, and one
``started``/``finished`` for the speaker; a translation in a language without an engine is
``rejected`` naming the language.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from broker import Broker, TestClient
from daemon_proc import DaemonProc, Events, _idle_between_tests, module_daemon, new_id  # noqa: F401

pytestmark = pytest.mark.timeout(300)

SR = 24000


@pytest.fixture(scope="module")
def daemon(
    shared_broker: Broker, tmp_path_factory: pytest.TempPathFactory, announcer_cache: Path
) -> Iterator[DaemonProc]:
    config = {
        "engines": {
            "kokoro-zh": {"type": "kokoro", "voice": "zf_xiaoyi", "threads": 2},
            "kokoro-en": {"type": "kokoro", "voice": "af_heart", "threads": 2},
        },
        "languages": {"zh": "kokoro-zh", "en": "kokoro-en"},
        "defaults": {"targets": ["a"], "chime": True, "engine": "kokoro-zh"},
    }
    yield from module_daemon(shared_broker, tmp_path_factory.mktemp("kokoro-daemon"), announcer_cache, config)


def test_bilingual_announcement_plays_chinese_then_english(
    client: TestClient, daemon: DaemonProc, events: Events, tmp_path: Path, announcer_cache: Path
) -> None:
    zh_text, en_text = "请三号病房的李医生到护士站。", "Doctor Li, please come to the nurses' station."
    ann_id = new_id()
    payload = {"id": ann_id, "text": zh_text, "translations": {"en": en_text}, "targets": "a"}
    client.publish(daemon.topic("say"), json.dumps(payload, ensure_ascii=False).encode(), qos=1)
    events.wait(ann_id, "finished", "a", timeout=120)
    assert [e["state"] for e in events.all(ann_id)] == ["queued", "started", "finished"], events.dump()
    both, rate = sf.read(str(daemon.wav("a", ann_id)), dtype="float32")
    assert rate == SR
    # the same parts alone (say --out, no chime) against the same config: Chinese, then English
    parts = []
    for args in (["--engine", "kokoro-zh", zh_text], ["--engine", "kokoro-en", en_text]):
        out = tmp_path / f"{args[1]}.wav"
        cmd = [sys.executable, "-m", "announcer", "say", "-c", str(daemon.config_path), "--no-chime", *args]
        r = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        parts.append(sf.read(str(out), dtype="float32")[0])
    chime = len(both) - len(parts[0]) - len(parts[1])
    assert 0.9 * SR < chime < 2.2 * SR, chime / SR  # the one chime (1.4 s) and the 0.5 s between the parts
    zh_start = chime - int(0.5 * SR)
    corr = np.corrcoef(both[zh_start : zh_start + SR], parts[0][:SR])[0, 1]
    assert corr > 0.9, corr  # the Chinese comes first, as said alone
    tail = both[-len(parts[1]) :]
    assert np.corrcoef(tail[: SR // 2], parts[1][: SR // 2])[0, 1] > 0.5  # then the English


def test_translation_in_a_language_without_engine_is_rejected(
    client: TestClient, daemon: DaemonProc, events: Events
) -> None:
    ann_id = new_id()
    payload = {"id": ann_id, "text": "请注意。", "translations": {"fr": "Attention"}}
    client.publish(daemon.topic("say"), json.dumps(payload, ensure_ascii=False).encode(), qos=1)
    rejected = events.wait(ann_id, "rejected", timeout=10)
    error = rejected["error"]
    assert error.startswith("translations: no engine for language 'fr' (configured: ") and "zh" in error, error
    assert error.endswith("; map it in languages)") and "en" in error
