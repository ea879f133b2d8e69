"""Issue 15, finding 8: a managed engine's ``command`` inherited the daemon's whole environment,
the MQTT password and HTTP token variables a config uses as ``${VAR}`` included. Now it gets a
small allow-list (the locale, PATH, HOME, Python's settings) plus what the engine's ``env`` names.

The child is a real process started by the real supervisor from a parsed config; it writes its
environment to a file and waits (it never answers ``describe``: readiness is not the point).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from announcer.config import parse_config
from announcer.engines.base import create_engine
from announcer.engines.supervised import child_environment

pytestmark = pytest.mark.unit  # the fast lane (make check): one short-lived child, no broker


def read_env(path: Path, timeout: float = 10.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while not (path.is_file() and path.read_bytes().endswith(b"\0END=1\0")):
        assert time.monotonic() < deadline, f"the child did not write {path}"
        time.sleep(0.05)
    pairs = [p.split("=", 1) for p in path.read_bytes().decode().split("\0") if "=" in p]
    return dict(pairs)  # type: ignore[arg-type]


def test_a_managed_child_gets_a_clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "child.env"
    monkeypatch.setenv("MQTT_PASSWORD", "s3cret-mqtt")
    monkeypatch.setenv("ANNOUNCER_HTTP_TOKEN", "s3cret-token-0123456789")
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.setenv("MODEL_DIR", "/srv/models")
    cfg = parse_config(
        f"""
mqtt: {{username: announcer, password: "${{MQTT_PASSWORD}}"}}
http: {{enabled: true, tokens: ["${{ANNOUNCER_HTTP_TOKEN}}"]}}
engines:
  zh: {{type: embedded-zh}}
  w:
    type: wyoming
    uri: tcp://127.0.0.1:9
    command: [sh, -c, "env -0 > {out}; printf 'END=1\\\\0' >> {out}; exec sleep 30"]
    env: {{MODEL_DIR: "${{MODEL_DIR}}", WORKER_THREADS: "2"}}
    stop_timeout: 2
"""
    )
    assert cfg.mqtt.password == "s3cret-mqtt"  # what the config did with them
    eng = create_engine("w", cfg.engines["w"], tmp_path / "cache")
    try:
        eng.start()
        env = read_env(out)
    finally:
        eng.close()
    secrets = {"s3cret-mqtt", "s3cret-token-0123456789"}
    assert not secrets & set(env.values()), sorted(env)
    assert "MQTT_PASSWORD" not in env and "ANNOUNCER_HTTP_TOKEN" not in env and "NOTIFY_SOCKET" not in env
    assert env["PATH"] == os.environ["PATH"] and env["LC_ALL"] == "C.UTF-8"
    assert env["MODEL_DIR"] == "/srv/models" and env["WORKER_THREADS"] == "2"  # what the engine named


def test_the_allow_list() -> None:
    parent = {"PATH": "/bin", "HOME": "/h", "LC_TIME": "C", "PYTHONPATH": "/p", "AWS_SECRET": "x", "TOKEN": "y"}
    assert child_environment({"A": "1"}, parent) == {
        "PATH": "/bin",
        "HOME": "/h",
        "LC_TIME": "C",
        "PYTHONPATH": "/p",
        "A": "1",
    }


def test_env_names_must_be_names() -> None:
    from announcer.config import ConfigError

    with pytest.raises(ConfigError, match="env"):
        parse_config("engines: {w: {type: wyoming, uri: 'tcp://127.0.0.1:9', command: [x], env: {'A B': '1'}}}")
