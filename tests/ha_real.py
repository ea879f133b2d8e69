"""A real Home Assistant 2025.4.4 for the slow lane (``tests/test_homeassistant_real.py``).

Installed by ``scripts/install-home-assistant.sh`` on first use (a virtual environment of its
own on Python 3.13, from the committed lock, cached under ~/.cache/announcer); where no Python
3.13 exists the fixture fails with the command that installs one.

Its config dir is written offline: ``configuration.yaml`` (HTTP on 127.0.0.1 and a free port,
the API, a ``universal`` media player ``media_player.announcer_test_speaker`` whose
``play_media`` really downloads the URL with the ``downloader`` integration into
``<config>/downloads`` and then forwards to the demo player ``media_player.living_room``),
``.storage/auth`` with an admin and a long-lived token signed here (HS256, as Home Assistant
does), onboarding marked done, and config entries for ``demo`` (its media players) and
``downloader``. ``hass --skip-pip`` installs nothing at run time. It runs in a session of its
own and is stopped with SIGTERM (its process group killed if it does not stop); a broken
config (recovery mode) or a taken port is seen on its stdout and retried on another port.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HA_VERSION = "2025.4.4"
TEST_SPEAKER = "media_player.announcer_test_speaker"

CONFIG_YAML = """\
homeassistant:
  name: announcer-test
  latitude: 52.52
  longitude: 13.40
  elevation: 0
  unit_system: metric
  time_zone: UTC
  country: DE
  currency: EUR
  language: en
  internal_url: "http://127.0.0.1:{port}"
http:
  server_host: 127.0.0.1
  server_port: {port}
api:
websocket_api:
logger:
  default: warning
  logs:
    homeassistant.components.camera.img_util: critical
    aiohttp_fast_zlib: error
media_player:
  - platform: universal
    name: Announcer Test Speaker
    unique_id: announcer_test_speaker
    children: [media_player.living_room]
    commands:
      play_media:
        action: script.announcer_fetch
        data:
          url: "{{{{ media_content_id }}}}"
          content_type: "{{{{ media_content_type }}}}"
script:
  announcer_fetch:
    mode: queued
    fields: {{url: {{}}, content_type: {{}}}}
    sequence:
      - action: downloader.download_file
        data: {{url: "{{{{ url }}}}", overwrite: true}}
      - action: media_player.play_media
        target: {{entity_id: media_player.living_room}}
        data: {{media_content_id: "{{{{ url }}}}", media_content_type: "{{{{ content_type }}}}"}}
"""


def _b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _jwt(claims: dict[str, object], key: str) -> str:
    head = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64url(sig)}"


def _store(key: str, data: object, version: int = 1, minor: int = 1) -> str:
    return json.dumps({"version": version, "minor_version": minor, "key": key, "data": data}, indent=2)


def write_config(cfg_dir: Path, port: int) -> str:
    """The config dir (see the module doc); returns the long-lived access token."""
    (cfg_dir / ".storage").mkdir(parents=True, exist_ok=True)
    (cfg_dir / "downloads").mkdir(exist_ok=True)
    (cfg_dir / "configuration.yaml").write_text(CONFIG_YAML.format(port=port), encoding="utf-8")
    now = datetime.now(timezone.utc).isoformat()
    user_id, rt_id, jwt_key = secrets.token_hex(16), secrets.token_hex(16), secrets.token_hex(64)
    lifespan = 10 * 365 * 86400
    auth = {
        "users": [
            {
                "id": user_id,
                "group_ids": ["system-admin"],
                "is_owner": True,
                "is_active": True,
                "name": "announcer-test",
                "system_generated": False,
                "local_only": False,
            }
        ],
        "groups": [
            {"id": "system-admin", "name": "Administrators"},
            {"id": "system-users", "name": "Users"},
            {"id": "system-read-only", "name": "Read Only"},
        ],
        "credentials": [],
        "refresh_tokens": [
            {
                "id": rt_id,
                "user_id": user_id,
                "client_id": None,
                "client_name": "announcer-test",
                "client_icon": None,
                "token_type": "long_lived_access_token",
                "created_at": now,
                "access_token_expiration": float(lifespan),
                "token": secrets.token_hex(64),
                "jwt_key": jwt_key,
                "last_used_at": None,
                "last_used_ip": None,
                "expire_at": None,
                "credential_id": None,
                "version": HA_VERSION,
            }
        ],
    }
    entries = [
        {
            "created_at": now,
            "data": data,
            "disabled_by": None,
            "discovery_keys": {},
            "domain": domain,
            "entry_id": secrets.token_hex(13).upper(),
            "minor_version": 1,
            "modified_at": now,
            "options": {},
            "pref_disable_new_entities": False,
            "pref_disable_polling": False,
            "source": "user",
            "subentries": [],
            "title": domain.title(),
            "unique_id": None,
            "version": 1,
        }
        for domain, data in (("demo", {}), ("downloader", {"download_dir": "downloads"}))
    ]
    files = {
        "auth": _store("auth", auth),
        "onboarding": _store("onboarding", {"done": ["user", "core_config", "analytics", "integration"]}, version=4),
        "core.config_entries": _store("core.config_entries", {"entries": entries}, minor=5),
    }
    for name, text in files.items():
        path = cfg_dir / ".storage" / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o600)
    iat = int(time.time()) - 60
    return _jwt({"iss": rt_id, "iat": iat, "exp": iat + lifespan}, jwt_key)


def install() -> Path:
    """The cached Home Assistant environment (built on first use); fails with the fix when it cannot be."""
    r = subprocess.run(["sh", str(ROOT / "scripts/install-home-assistant.sh")], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"cannot install Home Assistant for the slow lane:\n{r.stderr[-3000:]}", pytrace=False)
    return Path(r.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class HomeAssistantProc:
    url: str
    token: str
    config_dir: Path


def _running(url: str, token: str) -> bool:
    req = urllib.request.Request(f"{url}/api/config", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            return bool(json.loads(r.read()).get("state") == "RUNNING")
    except (OSError, ValueError):
        return False


@pytest.fixture(scope="session")
def home_assistant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HomeAssistantProc]:
    venv = install()
    problem = ""
    for attempt in range(3):
        cfg_dir = tmp_path_factory.mktemp(f"home-assistant-{attempt}")
        port = _free_port()
        token = write_config(cfg_dir, port)
        url = f"http://127.0.0.1:{port}"
        out = open(cfg_dir / "hass.stdout", "wb")  # noqa: SIM115  # closed below
        proc = subprocess.Popen(
            [str(venv / "bin" / "hass"), "-c", str(cfg_dir), "--skip-pip", "--log-no-color"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={k: v for k, v in os.environ.items() if k != "SUPERVISOR"},
        )
        try:
            deadline = time.monotonic() + 180
            while True:
                text = (cfg_dir / "hass.stdout").read_text(errors="replace")
                if "Activating recovery mode" in text or "Failed to create HTTP server" in text:
                    problem = text[-3000:]
                    break
                if proc.poll() is not None:
                    problem = f"hass exited with {proc.returncode}:\n{text[-3000:]}"
                    break
                if _running(url, token):
                    yield HomeAssistantProc(url, token, cfg_dir)
                    return
                if time.monotonic() > deadline:
                    problem = f"not running after 180 s:\n{text[-3000:]}"
                    break
                time.sleep(0.3)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            out.close()
    pytest.fail(f"Home Assistant did not start: {problem}", pytrace=False)
