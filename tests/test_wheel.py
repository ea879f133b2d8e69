"""Built and installed like a release: sdist and wheel from ``python -m build``, the wheel (not
editable) in a fresh virtual environment from the runtime lock, the voice from the catalogue,
then what an operator does first: ``--version``, ``say --out``, ``check-config`` on the example
config, and the daemon against a real broker. Catches package data missing from the wheel.

Slow lane: the build and the fresh environment take a minute or two (pip's cache helps).
"""

from __future__ import annotations

import os
import subprocess
import sys
import wave
import zipfile
from pathlib import Path

import pytest
import tomllib
from broker import Broker
from daemon_proc import DaemonProc, Events

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
QUIET = ["--quiet", "--disable-pip-version-check"]


def _run(
    cmd: list[str], cwd: Path, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if check:
        assert r.returncode == 0, f"{' '.join(cmd)} -> {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    return r


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], cwd=ROOT)
    return out


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh environment: the runtime lock (hash-checked), then the wheel, nothing editable."""
    env_dir = tmp_path_factory.mktemp("wheel-venv") / "venv"
    _run([sys.executable, "-m", "venv", str(env_dir)], cwd=ROOT)
    py = str(env_dir / "bin" / "python")
    lock = ROOT / "requirements" / "runtime.lock"
    _run([py, "-m", "pip", "install", *QUIET, "--require-hashes", "--no-deps", "-r", str(lock)], cwd=ROOT)
    (wheel,) = dist.glob("announcer-*.whl")
    _run([py, "-m", "pip", "install", *QUIET, "--no-deps", str(wheel)], cwd=ROOT)
    return env_dir


def test_build_makes_an_sdist_and_a_wheel_with_the_package_data(dist: Path) -> None:
    assert (dist / f"announcer-{VERSION}.tar.gz").is_file()
    (wheel,) = dist.glob(f"announcer-{VERSION}-py3-none-any.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "announcer/py.typed",
        "announcer/http/static/index.html",
        "announcer/http/static/app.js",
        "announcer/engines/data/kokoro-js-1.2.1.sha256",
        "announcer/voices/catalogue.py",
    ):
        assert needed in names, f"{needed} is not in the wheel"
    assert not any(n.startswith("tests/") for n in names)


def test_installed_wheel_speaks_checks_config_and_runs_the_daemon(venv: Path, tmp_path: Path, broker: Broker) -> None:
    exe = str(venv / "bin" / "announcer")
    env = dict(os.environ, ANNOUNCER_CONFIG=str(tmp_path / "none.yaml"))
    # the package is the installed wheel, not this source tree
    where = _run([str(venv / "bin" / "python"), "-c", "import announcer; print(announcer.__file__)"], cwd=tmp_path)
    assert str(venv) in where.stdout and str(ROOT) not in where.stdout

    assert _run([exe, "--version"], cwd=tmp_path).stdout.strip() == f"announcer {VERSION}"

    # no voice yet: one line that says which command installs it
    cache = tmp_path / "cache"
    cfg = tmp_path / "say.yaml"
    cfg.write_text(f"cache: {{directory: {cache}}}\n", encoding="utf-8")
    missing = _run([exe, "say", "-c", str(cfg), "--out", str(tmp_path / "x.wav"), "你好"], cwd=tmp_path, check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        "error: embedded-zh: the voice is not installed; run: announcer voices install baker"
    ]
    installed = _run([exe, "voices", "install", "baker"], cwd=tmp_path)
    assert "baker: installed" in installed.stdout
    assert "baker: already installed" in _run([exe, "voices", "install", "baker"], cwd=tmp_path).stdout

    said = _run(
        [exe, "say", "-c", str(cfg), "--out", str(tmp_path / "x.wav"), "请3号病房的李医生到护士站"], cwd=tmp_path
    )
    assert said.stdout.strip() == str(tmp_path / "x.wav") and said.stderr == ""  # no LiteRT banner either
    with wave.open(str(tmp_path / "x.wav")) as w:
        assert w.getframerate() == 24000 and w.getnframes() / 24000 > 1.5

    # the example config speaks with Kokoro (Mandarin and English): its model and voices first
    _run([exe, "voices", "install", "kokoro-zh", "af_heart"], cwd=tmp_path)
    example = ROOT / "config" / "announcer.example.yaml"
    secrets = {"MQTT_PASSWORD": "s3cret", "ANNOUNCER_HTTP_TOKEN": "t" * 20, "HA_TOKEN": "ha"}
    checked = _run([exe, "check-config", "-c", str(example)], cwd=tmp_path, env=dict(env, **secrets))
    assert ": ok" in checked.stdout

    daemon = DaemonProc(broker, tmp_path / "daemon", cache, python=str(venv / "bin" / "python"))
    client = broker.client()
    events = Events(client.collect(daemon.topic("events")))
    daemon.start(timeout=120)
    try:
        client.publish(daemon.topic("say"), "前门有人按门铃".encode())
        queued = events.wait(None, "queued", timeout=20)
        finished = events.wait(queued["id"], "finished", "a", timeout=60)
        assert Path(finished["path"]).is_file() and Path(finished["path"]).parent == daemon.wav_dirs["a"]
    finally:
        daemon.close()
        client.close()
