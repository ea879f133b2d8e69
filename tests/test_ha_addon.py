"""The Home Assistant add-on (``ha-addon/announcer``): its options become a config announcer accepts.

The entry point (``announcer-addon.py``) is loaded from the add-on folder as Home Assistant runs
it. Its config is checked with announcer's own loader (``parse_config``), from the defaults in
``config.yaml`` and from options a user would set. The Supervisor's services API is a stand-in
(a small HTTP server answering ``GET /services/mqtt`` like the Supervisor): the real one only
runs inside Home Assistant OS/Supervised.
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from announcer.config import parse_config

pytestmark = pytest.mark.unit

ADDON = Path(__file__).resolve().parents[1] / "ha-addon" / "announcer"
TOKEN = "supervisor-token-for-the-test"
MQTT_SERVICE = {
    "host": "core-mosquitto",
    "port": 1883,
    "ssl": False,
    "protocol": "3.1.1",
    "username": "addons",
    "password": "pa${ss}word",
    "addon": "core_mosquitto",
}


def load_entry_point() -> ModuleType:
    spec = importlib.util.spec_from_file_location("announcer_addon", ADDON / "announcer-addon.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


addon = load_entry_point()


def addon_config() -> dict[str, Any]:
    return dict(yaml.safe_load((ADDON / "config.yaml").read_text(encoding="utf-8")))


def check(cfg: dict[str, Any]) -> Any:
    """announcer's loader on the YAML the add-on writes (raises ConfigError with every problem)."""
    return parse_config(yaml.safe_dump(cfg, allow_unicode=True), "addon", env={})


def test_the_default_options_make_a_valid_config_with_the_supervisors_broker(tmp_path: Path) -> None:
    (tmp_path / "mqtt.password").write_text("secret", encoding="utf-8")  # main() writes it (the loader reads it)
    cfg = check(addon.render_config(addon_config()["options"], MQTT_SERVICE, str(tmp_path), "Europe/Berlin"))
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.username) == ("core-mosquitto", 1883, "addons")
    assert cfg.mqtt.password is None and cfg.mqtt.password_file == tmp_path / "mqtt.password"
    assert cfg.mqtt.topic_prefix == "announcer" and cfg.mqtt.tls is None
    assert cfg.timezone == "Europe/Berlin"
    assert cfg.speakers["speaker"].type == "sounddevice" and cfg.speakers["speaker"].device is None
    assert cfg.speakers["speaker"].volume == 0.8
    assert str(cfg.speakers["archive"].directory) == "/media/announcer"
    assert cfg.defaults.targets == ("speaker", "archive")
    assert cfg.spool.path == tmp_path / "spool.sqlite3" and cfg.cache.directory == tmp_path / "cache"
    assert cfg.homeassistant.enabled and not cfg.wyoming.enabled and not cfg.http.enabled
    assert [e.type for e in cfg.engines.values()] == ["embedded-zh"]  # voice: baker, the fast one


def test_options_a_user_sets_reach_the_config() -> None:
    options = {
        "topic_prefix": "home/announcer",
        "device": "USB Audio",
        "volume": 0.5,
        "voice": "zm_yunxia",
        "speaker_name": "客厅",
        "archive": False,
        "quiet_hours": [
            {"start": "22:00", "end": "07:00"},
            {"start": "13:00", "end": "14:00", "volume": 0.2, "min_priority": "emergency"},
        ],
        "wyoming": True,
        "log_level": "DEBUG",
    }
    cfg = check(addon.render_config(options, {**MQTT_SERVICE, "ssl": True, "username": None}))
    assert cfg.mqtt.topic_prefix == "home/announcer" and cfg.mqtt.username is None
    assert cfg.mqtt.tls is not None and cfg.mqtt.tls.ca_certs == "/etc/ssl/certs/ca-certificates.crt"
    assert cfg.speakers["speaker"].device == "USB Audio" and cfg.speakers["speaker"].name == "客厅"
    assert "archive" not in cfg.speakers and cfg.defaults.targets == ("speaker",)
    night, noon = cfg.quiet_hours
    assert (str(night.start), str(night.end), night.volume, night.min_priority) == ("22:00:00", "07:00:00", 0.4, "high")
    assert (noon.volume, noon.min_priority, len(noon.days)) == (0.2, "emergency", 7)
    assert cfg.wyoming.enabled and cfg.wyoming.uri == "tcp://0.0.0.0:10200"
    assert cfg.logging.level == "DEBUG" and cfg.timezone is None
    assert [(e.type, e.voice) for e in cfg.engines.values()] == [("kokoro", "zm_yunxia")]


def test_every_option_has_a_schema_entry_and_a_translation() -> None:
    conf = addon_config()
    schema = set(conf["schema"])
    assert set(conf["options"]) <= schema
    names = yaml.safe_load((ADDON / "translations" / "en.yaml").read_text(encoding="utf-8"))["configuration"]
    assert set(names) == schema
    # the entry point reads only options the schema declares
    source = (ADDON / "announcer-addon.py").read_text(encoding="utf-8")
    for key in schema:
        assert f'"{key}"' in source, key
    assert conf["arch"] == ["amd64", "aarch64"] and conf["services"] == ["mqtt:need"] and conf["audio"] is True


class Supervisor:
    """Stand-in for the Supervisor's ``GET /services/mqtt`` (bearer token checked)."""

    def __init__(self, service: dict[str, Any] | None) -> None:
        self.requests: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802  (http.server's name)
                owner.requests.append(self.path)
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self.send_response(401)
                    self.end_headers()
                    return
                if self.path != "/services/mqtt" or service is None:
                    self.send_response(400)
                    self.end_headers()
                    return
                body = json.dumps({"result": "ok", "data": service}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def addon_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "data").mkdir()
    (tmp_path / "config").mkdir()
    (tmp_path / "data" / "options.json").write_text(json.dumps(addon_config()["options"]), encoding="utf-8")
    monkeypatch.setenv("ANNOUNCER_ADDON_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("ANNOUNCER_ADDON_CONFIG", str(tmp_path / "config"))
    monkeypatch.setenv("SUPERVISOR_TOKEN", TOKEN)
    monkeypatch.delenv("TZ", raising=False)
    yield tmp_path


def test_start_writes_the_config_and_the_password_privately_then_runs_the_daemon(
    addon_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sup = Supervisor(MQTT_SERVICE)
    monkeypatch.setenv("ANNOUNCER_SUPERVISOR_URL", sup.url)
    ran: list[tuple[str, list[str]]] = []
    try:
        assert addon.main(execv=lambda path, args: ran.append((path, args))) == 0
    finally:
        sup.close()
    written = addon_env / "data" / "announcer.yaml"
    assert ran == [("/opt/announcer/bin/announcer", ["announcer", "run", "-c", str(written)])]
    assert sup.requests == ["/services/mqtt"]
    password = addon_env / "data" / "mqtt.password"
    assert password.read_text(encoding="utf-8") == "pa${ss}word"
    assert (written.stat().st_mode & 0o777, password.stat().st_mode & 0o777) == (0o600, 0o600)
    cfg = check(yaml.safe_load(written.read_text(encoding="utf-8")))
    assert cfg.mqtt.read_password() == "pa${ss}word"  # taken as it is: no ${...} substitution


def test_a_config_file_in_the_addon_folder_wins_over_the_options(addon_env: Path) -> None:
    own = addon_env / "config" / "announcer.yaml"
    own.write_text("mqtt: {host: broker.lan}\n", encoding="utf-8")
    ran: list[list[str]] = []
    assert addon.main(execv=lambda path, args: ran.append(args)) == 0
    assert ran == [["announcer", "run", "-c", str(own)]]
    assert not (addon_env / "data" / "announcer.yaml").exists()


@pytest.mark.parametrize(
    ("service", "token", "message"),
    [
        (None, TOKEN, "no MQTT service for us (400): install and start the Mosquitto broker add-on"),
        (MQTT_SERVICE, "wrong", "no MQTT service for us (401)"),
        (MQTT_SERVICE, "", "SUPERVISOR_TOKEN is not set"),
    ],
)
def test_no_broker_is_one_line_and_exit_1(
    addon_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    service: dict[str, Any] | None,
    token: str,
    message: str,
) -> None:
    sup = Supervisor(service)
    monkeypatch.setenv("ANNOUNCER_SUPERVISOR_URL", sup.url)
    monkeypatch.setenv("SUPERVISOR_TOKEN", token)
    try:
        assert addon.main(execv=lambda path, args: pytest.fail("must not start the daemon")) == 1
    finally:
        sup.close()
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert os.listdir(addon_env / "data") == ["options.json"]
