"""Test-side helpers for the Sambert worker: its interpreter, its PYTHONPATH, a model dir, a client.

The worker runs as a real child process on a Python 3.8-3.10 interpreter (the range
Sambert's model code needs; the worker refuses others) with a PYTHONPATH that holds
the stand-in packages of this directory (see README.md), the ``wyoming`` package of the
test environment (pure Python) and the repository root; nothing of the test's own
site-packages leaks in. ``$ANNOUNCER_TEST_WORKER_PYTHON`` picks the interpreter.
"""

from __future__ import annotations

import glob
import io
import json
import os
import shutil
import socket
import subprocess
import time
import wave
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

STANDINS = Path(__file__).resolve().parent
ROOT = STANDINS.parent.parent
VOICES = ("zhitian_emo", "zhiyan_emo", "zhizhe_emo", "zhibei_emo")
# what the stand-in model encodes (tests/standins/modelscope/pipelines/__init__.py)
VOICE_HZ = {"zhitian_emo": 200.0, "zhiyan_emo": 300.0, "zhizhe_emo": 400.0, "zhibei_emo": 500.0}
EMOTION_SECONDS = {"neutral": 0.10, "happy": 0.15, "sad": 0.20, "angry": 0.25, "fear": 0.30, "surprise": 0.35}


def _version_of(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    major, minor = out.stdout.split()
    return int(major), int(minor)


def worker_python() -> str | None:
    """A Python 3.8-3.10 interpreter for the worker, or None."""
    env = os.environ.get("ANNOUNCER_TEST_WORKER_PYTHON")
    candidates = [env] if env else []
    candidates += [shutil.which(n) or "" for n in ("python3.10", "python3.9", "python3.8")]
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for minor in ("10", "9", "8"):
        candidates += sorted(glob.glob(f"{pyenv}/versions/3.{minor}.*/bin/python3"), reverse=True)
    for c in candidates:
        if c and (3, 8) <= (_version_of(c) or (0, 0)) <= (3, 10):
            return c
    return None


def pythonpath(tmp: Path, packages: tuple[str, ...] = ("modelscope", "ttsfrd", "kantts")) -> str:
    """A PYTHONPATH with the chosen stand-ins, the ``wyoming`` package and the repository root."""
    import wyoming

    site = tmp / "site"
    site.mkdir(parents=True, exist_ok=True)
    pkg = Path(wyoming.__file__).resolve().parent
    links = {"wyoming": pkg}
    for dist in pkg.parent.glob("wyoming-*.dist-info"):
        links[dist.name] = dist
    for name in packages:
        links[name] = STANDINS / name
    for name, target in links.items():
        link = site / name
        if not link.exists():
            link.symlink_to(target)
    return os.pathsep.join([str(site), str(ROOT)])


def make_model_dir(path: Path, voices: tuple[str, ...] = VOICES, sample_rate: int = 16000) -> Path:
    """A model directory in the layout of damo/speech_sambert-hifigan_tts_zh-cn_16k (tiny files)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "configuration.json").write_text(
        json.dumps(
            {
                "framework": "pytorch",
                "task": "text-to-speech",
                "model": {"type": "sambert-hifigan", "lang_type": "zhcn", "sample_rate": sample_rate},
            }
        )
    )
    with zipfile.ZipFile(path / "resource.zip", "w") as z:
        z.writestr("resource/frontend.marker", "stand-in front-end resources")
    (path / "voices").mkdir(exist_ok=True)
    (path / "voices" / "voices.json").write_text(json.dumps({"voices": list(voices)}))
    for v in voices:
        for part in ("am", "voc"):
            (path / "voices" / v / part / "ckpt").mkdir(parents=True, exist_ok=True)
            (path / "voices" / v / part / "config.yaml").write_text("stand-in: true\n")
            (path / "voices" / v / part / "ckpt" / "checkpoint_0.pth").write_bytes(b"stand-in")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_env(
    tmp: Path, packages: tuple[str, ...] = ("modelscope", "ttsfrd", "kantts"), **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "SAMBERT_STANDIN"))}
    env["PYTHONPATH"] = pythonpath(tmp, packages)
    env["SAMBERT_STANDIN_LOG"] = str(tmp / "standin.jsonl")
    env.update(extra)
    return env


def worker_command(python: str, model_dir: Path, uri: str, *args: str) -> list[str]:
    return [python, "-m", "announcer.workers.sambert", "--model-dir", str(model_dir), "--uri", uri, *args]


def run_worker(
    python: str,
    tmp: Path,
    model_dir: Path,
    *args: str,
    packages: tuple[str, ...] = ("modelscope", "ttsfrd", "kantts"),
    timeout: float = 60,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """Run the worker to completion (for --check and start-up errors)."""
    return subprocess.run(
        worker_command(python, model_dir, f"tcp://127.0.0.1:{free_port()}", *args),
        env=worker_env(tmp, packages, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def standin_log(tmp: Path) -> list[dict[str, Any]]:
    p = tmp / "standin.jsonl"
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]


# ------------------------------------------------------------------ a synchronous Wyoming client
@dataclass
class Reply:
    rate: int | None = None
    chunks: list[np.ndarray] = field(default_factory=list)
    error: str | None = None
    stopped: bool = False

    @property
    def samples(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)


def _connect(port: int, timeout: float) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def describe(port: int, timeout: float = 10.0) -> dict[str, Any]:
    from wyoming.event import read_event, write_event
    from wyoming.info import Describe

    with _connect(port, timeout) as sock, sock.makefile("rwb") as f:
        write_event(Describe().event(), f)
        event = read_event(f)
    assert event is not None and event.type == "info", event
    return event.data


def synthesize(
    port: int, text: str, voice: str | None = None, context: dict[str, Any] | None = None, timeout: float = 30.0
) -> Reply:
    from wyoming.audio import AudioChunk, AudioStart
    from wyoming.event import read_event, write_event
    from wyoming.tts import Synthesize, SynthesizeVoice

    reply = Reply()
    with _connect(port, timeout) as sock, sock.makefile("rwb") as f:
        write_event(
            Synthesize(text=text, voice=SynthesizeVoice(name=voice) if voice else None, context=context).event(), f
        )
        while True:
            event = read_event(f)
            if event is None:
                break
            if event.type == "audio-start":
                reply.rate = AudioStart.from_event(event).rate
            elif event.type == "audio-chunk":
                chunk = AudioChunk.from_event(event)
                reply.chunks.append(np.frombuffer(chunk.audio, "<i2").astype(np.float32) / 32768.0)
            elif event.type == "audio-stop":
                reply.stopped = True
                break
            elif event.type == "error":
                reply.error = event.data.get("text")
                break
    return reply


def wait_describe(port: int, proc: subprocess.Popen[Any] | None = None, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"worker exited with {proc.returncode}")
        try:
            return describe(port, timeout=2.0)
        except (OSError, AssertionError) as exc:
            last = exc
            time.sleep(0.1)
    raise AssertionError(f"worker did not answer describe within {timeout} s: {last}")


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1.0 / rate)[int(np.argmax(spectrum))])


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()
