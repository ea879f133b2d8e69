"""The container's HEALTHCHECK: exit 0 when the daemon answers, 1 (with one line why) when not.

With ``http.enabled`` in the config: ``GET /healthz`` on the configured port (a wildcard bind
is asked on loopback). Without HTTP: the retained ``P/availability`` on the configured broker
must say ``online`` (the daemon's last will turns it ``offline`` when its link dies).
The config is found as ``announcer`` finds it (``$ANNOUNCER_CONFIG``, then the usual paths).
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
import urllib.request

from announcer.config import Config, ConfigError, find_config_path, load_config
from announcer.mqtt.link import MqttLink
from announcer.mqtt.paho_adapter import IncomingMessage
from announcer.mqtt.topics import Topics

TIMEOUT = 4.0


def check_http(bind: str, port: int) -> str | None:
    host = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(bind, bind)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    url = f"http://{host}:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as resp:
            body = json.loads(resp.read(4096))
    except (OSError, ValueError) as exc:
        return f"{url}: {exc}"
    return None if body.get("status") == "ok" else f"{url}: {body!r}"


def check_availability(cfg: Config) -> str | None:
    topic = Topics.under(cfg.mqtt.topic_prefix).availability
    got: list[str] = []
    seen = threading.Event()

    def on_message(msg: IncomingMessage) -> None:
        got.append(msg.payload.decode("utf-8", "replace"))
        seen.set()

    link = MqttLink(
        cfg.mqtt,
        on_message,
        [topic],
        client_id=f"announcer-health-{secrets.token_hex(4)}",
        persistent=False,
        availability=False,
    )
    link.start()
    try:
        if not link.wait_connected(TIMEOUT):
            return f"{link.broker}: {link.last_error or 'no connection'}"
        if not seen.wait(TIMEOUT):
            return f"{topic}: nothing retained"
    finally:
        link.close()
    return None if got[-1] == "online" else f"{topic}: {got[-1]}"


def main() -> int:
    try:
        cfg = load_config(find_config_path(None))
    except ConfigError as exc:
        print(f"unhealthy: {exc}")
        return 1
    why = check_http(cfg.http.bind, cfg.http.port) if cfg.http.enabled else check_availability(cfg)
    if why:
        print(f"unhealthy: {why}")
        return 1
    print("healthy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
