"""A fleet on loopback: a central mosquitto and one per site, each site's broker bridged to the centre.

The broker configs are the repository's examples, rendered for loopback: the central broker takes
its settings from ``config/mosquitto-central.conf.example`` (its TLS listener and passwords left
out) and each site's bridge is ``config/mosquitto-site.conf.example`` with ``b3`` replaced by the
site, the address pointed at the site's ``CutProxy`` (``netproxy``) and the keepalive and restart
delays of the test. So the tests run what the docs tell operators to deploy: MQTT 3.1.1 bridges
with ``cleansession false``, QoS 1, the site's daemons under ``F/sites/<site>``.

A *remapped* site (``remapped=True``) keeps the plain local prefix ``announcer`` and its bridge
maps ``announcer/<x>`` to ``F/sites/<site>/<x>`` at the centre (the alternative in docs/fleet.md).

``cut(site)`` blackholes that site's link (no FIN: a pulled cable), ``heal(site)`` restores it.
``SiteDaemon`` is the real daemon with the cheap engine (espeak, English text) and a ``file``
speaker ``a``, so ten of them fit on two cores.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from broker import Broker, Collected
from daemon_proc import DaemonProc, yaml_str
from netproxy import CutProxy

ROOT = Path(__file__).resolve().parent.parent.parent
FLEET = "announcer-fleet"
CENTRAL_KEYS = (
    "autosave_on_changes",
    "set_tcp_nodelay",
    "max_queued_messages",
    "max_inflight_messages",
    "persistent_client_expiration",
)


def central_conf(max_queued: int | None = None) -> str:
    """The central example's broker settings (not its listener, TLS or passwords)."""
    text = (ROOT / "config" / "mosquitto-central.conf.example").read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln.split(" ", 1)[0] in CENTRAL_KEYS]
    if max_queued is not None:
        lines.append(f"max_queued_messages {max_queued}")
    return "\n".join(lines) + "\n"


def site_conf(site: str, port: int, keepalive: int, remapped: bool = False, local_prefix: str = "announcer") -> str:
    """The site example's bridge, for ``site`` dialling 127.0.0.1:``port``."""
    text = (ROOT / "config" / "mosquitto-site.conf.example").read_text(encoding="utf-8")
    block = text[text.index("\nconnection ") :]
    out = []
    for line in block.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key = line.split(" ", 1)[0]
        if key in ("bridge_cafile", "remote_username", "remote_password"):
            continue
        line = re.sub(r"\bb3\b", site, line)
        if key == "address":
            line = f"address 127.0.0.1:{port}"
        elif key == "keepalive_interval":
            line = f"keepalive_interval {keepalive}"
        elif key == "restart_timeout":
            line = "restart_timeout 1 2"
        elif key == "topic" and remapped:
            mine = f"{FLEET}/sites/{site}/"
            _, pattern, rest = line.split(" ", 2)
            if pattern.startswith(mine):
                line = f"topic {pattern[len(mine) :]} {rest} {local_prefix}/ {mine}"
        out.append(line)
    return "\n".join(out) + "\n"


class SiteDaemon(DaemonProc):
    """The daemon of one site (or one pair member): espeak, a ``file`` speaker ``a``, the site's prefix."""

    def __init__(
        self,
        broker: Broker,
        workdir: Path,
        cache_dir: Path,
        site: str,
        *,
        prefix: str | None = None,
        client_id: str | None = None,
        speaker_yaml: str | None = None,
        engine_yaml: str = "{type: espeak}",
        pair: dict[str, Any] | None = None,
        sections: str = "",
        **kwargs: Any,
    ) -> None:
        self.site = site
        kwargs["defaults"] = {"chime": False, **kwargs.get("defaults", {})}
        self.speaker_yaml = speaker_yaml  # speaker a (default: a file speaker)
        self.engine_yaml = engine_yaml
        self.pair = pair
        super().__init__(
            broker,
            workdir,
            cache_dir,
            prefix=prefix or f"{FLEET}/sites/{site}",
            client_id=client_id or f"{site}-daemon",
            sections=sections,
            **kwargs,
        )

    @property
    def availability_topic(self) -> str:
        if self.pair is not None:
            return self.topic("pair", self.client_id, "availability")
        return self.topic("availability")

    def _write_config(self) -> None:
        b = self.broker
        mqtt = {
            "host": b.host,
            "port": b.port,
            "topic_prefix": self.prefix,
            "client_id": self.client_id,
            "keepalive": 10,
            "reconnect_min_delay": 0.1,
            "reconnect_max_delay": 1.0,
            **self.mqtt_overrides,
        }
        speaker = self.speaker_yaml or f"{{type: file, directory: {yaml_str(self.wav_dirs['a'])}}}"
        limits = {"max_queue": 1000, **self.limits}
        defaults = {"targets": ["a"], **self.defaults}
        pair = f"pair: {json.dumps(self.pair)}\n" if self.pair is not None else ""
        self.config_path.write_text(
            f"""# generated by tests/reliability/fleet_net.py
mqtt: {json.dumps(mqtt)}
engines: {{en: {self.engine_yaml}}}
speakers:
  a: {speaker}
defaults: {json.dumps(defaults)}
limits: {json.dumps(limits)}
spool: {{path: {yaml_str(self.spool_path)}}}
cache: {{directory: {yaml_str(self.cache_dir)}}}
homeassistant: {{enabled: false}}
logging: {{level: {self.log_level}}}
site: {{name: {self.site}, display: {json.dumps("楼 " + self.site, ensure_ascii=False)}}}
fleet: {{prefix: {FLEET}}}
{pair}"""
            + self.sections,
            encoding="utf-8",
        )


class Fleet:
    """A central broker and ``sites`` bridged to it (see the module doc); ``close()`` stops it all."""

    def __init__(
        self,
        root: Path,
        binary: str,
        sites: list[str],
        *,
        remapped: tuple[str, ...] = (),
        keepalive: int = 5,
        central_max_queued: int | None = None,
    ) -> None:
        self.root = Path(root)
        self.binary = binary
        self.keepalive = keepalive
        self.remapped = set(remapped)
        self.central = Broker(self.root / "central", binary, extra_conf=central_conf(central_max_queued))
        self.proxies: dict[str, CutProxy] = {}
        self.sites: dict[str, Broker] = {}
        self.names = list(sites)
        self._bridge: Collected | None = None

    def start(self, timeout: float = 30.0) -> Fleet:
        self.central.start()
        self._bridge = self.central.client().collect(f"{FLEET}/sites/+/bridge")
        for site in self.names:
            proxy = CutProxy((self.central.host, self.central.port))
            self.proxies[site] = proxy
            conf = site_conf(site, proxy.port, self.keepalive, remapped=site in self.remapped)
            self.sites[site] = Broker(self.root / f"site-{site}", self.binary, extra_conf=conf).start()
        for site in self.names:
            self.wait_bridge(site, True, timeout)
        return self

    def prefix(self, site: str) -> str:
        """The site daemons' ``mqtt.topic_prefix``."""
        return "announcer" if site in self.remapped else f"{FLEET}/sites/{site}"

    def bridge_state(self, site: str) -> str | None:
        assert self._bridge is not None
        states = [m.payload.decode() for m in self._bridge if m.topic == f"{FLEET}/sites/{site}/bridge"]
        return states[-1] if states else None

    def wait_bridge(self, site: str, up: bool, timeout: float) -> float:
        """Wait until the centre shows ``site``'s bridge up ("1") or down ("0"); returns when (epoch s)."""
        want = "1" if up else "0"
        deadline = time.monotonic() + timeout
        while self.bridge_state(site) != want:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"bridge of {site} not {'up' if up else 'down'} at the centre within {timeout}s "
                    f"(state {self.bridge_state(site)!r})\n{self.sites[site].log_tail()}"
                )
            time.sleep(0.05)
        return time.time()

    def cut(self, site: str) -> None:
        """Blackhole ``site``'s link to the centre (no FIN either way)."""
        self.proxies[site].blackhole()

    def heal(self, site: str) -> None:
        self.proxies[site].restore()

    def close(self) -> None:
        for proxy in self.proxies.values():
            proxy.close()
        for broker in self.sites.values():
            broker.close()
        self.central.close()


def console(central: Broker, workdir: Path, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``announcer <args>`` run as an operator at the centre: a config with the central broker and the
    fleet's prefix (written once into ``workdir``)."""
    cfg = Path(workdir) / "console.yaml"
    if not cfg.exists():
        cfg.write_text(
            f"mqtt: {{host: {central.host}, port: {central.port}, client_id: console}}\n"
            f"fleet: {{prefix: {FLEET}}}\nhomeassistant: {{enabled: false}}\n",
            encoding="utf-8",
        )
    return subprocess.run(
        [sys.executable, "-m", "announcer", *args, "-c", str(cfg)], capture_output=True, text=True, timeout=timeout
    )
