"""Security end to end: TLS with client certificates, passwords from a file, the example ACL, limits.

One mosquitto serves the module (``per_listener_settings true``):

* a plain loopback listener, anonymous, no ACL: the test harness (``DaemonProc`` waits
  for ``online`` there, ``Events`` listens there). It stands for "the broker's own view".
* a TLS listener as in ``config/mosquitto.conf.example``: CA, server certificate for
  ``127.0.0.1``, client certificates required, ``password_file`` (``mosquitto_passwd -b``)
  and ``acl_file`` = ``config/mosquitto-acl.example`` *verbatim* (prefix ``announcer``),
  ``allow_anonymous false``. Certificates come from the ``openssl`` CLI.

The daemon connects to the TLS listener as ``announcer`` with its password in
``mqtt.password_file``. ``automation`` may make it speak; ``intruder`` (a valid password,
no ACL entry) and anonymous clients may not, nor may anyone but the daemon publish its
events. A wrong password or a wrong CA is logged with the reason, without a traceback
and without the password; the daemon keeps retrying and never reports READY.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from alsa import FifoSpeakers
from broker import Broker, free_port
from daemon_proc import DaemonProc, Events, NotifySocket, new_id, unique_text, yaml_str  # noqa: F401
from paho.mqtt.enums import CallbackAPIVersion

from announcer.config import ConfigError, MqttConfig, parse_config

pytestmark = pytest.mark.timeout(150)

ROOT = Path(__file__).resolve().parent.parent
PASSWORDS = {"announcer": "daemon-Secret-7f3a", "automation": "auto-Secret-91bc", "intruder": "intr-Secret-22de"}
SHORT = "请注意。"


def openssl(d: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)


def make_ca(d: Path, name: str) -> None:
    openssl(
        d,
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.crt",
        "-days",
        "2",
        "-subj",
        f"/CN={name}",
    )


def make_cert(d: Path, ca: str, name: str, ext: str) -> None:
    openssl(
        d,
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        "-subj",
        f"/CN={name}",
    )
    (d / f"{name}.ext").write_text(ext + "\n")
    openssl(
        d,
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        f"{ca}.crt",
        "-CAkey",
        f"{ca}.key",
        "-CAcreateserial",
        "-out",
        f"{name}.crt",
        "-days",
        "2",
        "-extfile",
        f"{name}.ext",
    )


class Secure:
    def __init__(self, broker: Broker, certs: Path, tls_port: int, passwd: Path) -> None:
        self.broker = broker
        self.certs = certs
        self.tls_port = tls_port
        self.passwd = passwd


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory, mosquitto_bin: str) -> Iterator[Secure]:
    base = tmp_path_factory.mktemp("secure-broker")
    certs = base / "certs"
    certs.mkdir()
    make_ca(certs, "ca")
    make_ca(certs, "other-ca")
    make_cert(certs, "ca", "server", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    make_cert(certs, "ca", "client", "extendedKeyUsage=clientAuth")
    passwd = base / "passwd"
    for i, (user, password) in enumerate(PASSWORDS.items()):
        subprocess.run(
            ["mosquitto_passwd", "-b", *(["-c"] if i == 0 else []), str(passwd), user, password],
            check=True,
            capture_output=True,
        )
    tls_port = free_port()
    extra = (
        f"listener {tls_port} 127.0.0.1\n"
        f"cafile {certs / 'ca.crt'}\ncertfile {certs / 'server.crt'}\nkeyfile {certs / 'server.key'}\n"
        f"require_certificate true\n"
        f"password_file {passwd}\nacl_file {ROOT / 'config' / 'mosquitto-acl.example'}\n"
        f"allow_anonymous false\n"
    )
    broker = Broker(
        base / "mosquitto", mosquitto_bin, head_conf="per_listener_settings true\n", extra_conf=extra
    ).start()
    yield Secure(broker, certs, tls_port, passwd)
    broker.close()


class TlsClient:
    """A paho MQTT 5 client on the TLS listener, recording CONNACK and PUBACK reason codes."""

    def __init__(self, s: Secure, user: str | None, password: str | None = None) -> None:
        self.connack: Any = None
        self.pubacks: dict[int, Any] = {}
        self._cond = threading.Condition()
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"{user or 'anon'}-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5
        )
        c.tls_set(
            ca_certs=str(s.certs / "ca.crt"), certfile=str(s.certs / "client.crt"), keyfile=str(s.certs / "client.key")
        )
        if user is not None:
            c.username_pw_set(user, password if password is not None else PASSWORDS[user])
        c.on_connect = self._on_connect
        c.on_publish = self._on_publish
        c.connect("127.0.0.1", s.tls_port, keepalive=30)
        c.loop_start()
        self.c = c
        with self._cond:
            self._cond.wait_for(lambda: self.connack is not None, 10)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        with self._cond:
            self.connack = rc
            self._cond.notify_all()

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        with self._cond:
            self.pubacks[mid] = rc
            self._cond.notify_all()

    def publish_json(self, topic: str, obj: Any) -> Any:
        """Publish at QoS 1; the PUBACK reason code."""
        import json

        info = self.c.publish(topic, json.dumps(obj, ensure_ascii=False).encode(), qos=1)
        with self._cond:
            assert self._cond.wait_for(lambda: info.mid in self.pubacks, 10), f"no PUBACK for {topic}"
            return self.pubacks[info.mid]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def secure_daemon(
    s: Secure, workdir: Path, cache: Path, password: str, ca: str = "ca", env: dict[str, str] | None = None
) -> DaemonProc:
    pw_file = workdir.parent / f"{workdir.name}.password"
    workdir.parent.mkdir(parents=True, exist_ok=True)
    pw_file.write_text(password + "\n", encoding="utf-8")  # stripped when read
    pw_file.chmod(0o600)
    tls = (
        f"{{ca_certs: {yaml_str(s.certs / f'{ca}.crt')}, certfile: {yaml_str(s.certs / 'client.crt')}, "
        f"keyfile: {yaml_str(s.certs / 'client.key')}}}"
    )
    return DaemonProc(
        s.broker,
        workdir,
        cache,
        prefix="announcer",
        env=env,
        log_level="DEBUG",
        mqtt={"port": s.tls_port, "username": "announcer", "password_file": yaml_str(pw_file), "tls": tls},
    )


def assert_no_secret_and_no_traceback(d: DaemonProc) -> None:
    log = d.log()
    for password in [*PASSWORDS.values(), "wrong-Secret-0000"]:
        assert password not in log, f"a password is in the daemon log\n{d.log_tail(80)}"
    assert "Traceback" not in log, d.log_tail(80)


# ------------------------------------------------------------------------------ config
def test_password_file_config_errors_and_no_password_in_repr(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("  s3cret-value \n")
    cfg = parse_config(f"mqtt: {{username: ann, password_file: {yaml_str(pw)}}}")
    assert cfg.mqtt.read_password() == "s3cret-value"
    assert "s3cret" not in repr(cfg) and "s3cret" not in repr(MqttConfig(username="u", password="s3cret"))
    with pytest.raises(ConfigError) as err:
        parse_config(f"mqtt: {{password: x, password_file: {yaml_str(pw)}}}")
    assert err.value.errors[0].startswith("mqtt.password_file: set either mqtt.password or mqtt.password_file")
    with pytest.raises(ConfigError) as err:
        parse_config(f"mqtt: {{password_file: {yaml_str(tmp_path / 'missing')}}}")
    assert err.value.errors[0].startswith("mqtt.password_file: cannot read ") and "No such file" in err.value.errors[0]
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError) as err:
        parse_config(f"mqtt: {{password_file: {yaml_str(tmp_path / 'empty')}}}")
    assert "is empty" in err.value.errors[0]


# ------------------------------------------------------------------------------ TLS + ACL
def test_tls_client_cert_password_file_and_the_example_acl(
    secure: Secure, tmp_path: Path, announcer_cache: Path
) -> None:  # noqa: F811
    d = secure_daemon(secure, tmp_path / "d", announcer_cache, PASSWORDS["announcer"])
    harness = secure.broker.client()  # plain listener: sees everything
    events = Events(harness.collect(d.topic("events")))
    clients: list[TlsClient] = []
    try:
        d.start()
        assert "connected to mqtts://127.0.0.1" in d.log(), d.log_tail()

        automation = TlsClient(secure, "automation")
        clients.append(automation)
        assert not automation.connack.is_failure
        ok = new_id("allowed")
        assert not automation.publish_json("announcer/say", {"id": ok, "text": SHORT, "chime": False}).is_failure
        events.wait(ok, "finished", "a", timeout=30)

        intruder = TlsClient(secure, "intruder")  # valid password, no ACL entry
        clients.append(intruder)
        assert not intruder.connack.is_failure
        denied = new_id("denied")
        rc = intruder.publish_json("announcer/say", {"id": denied, "text": SHORT, "chime": False})
        rc_target = intruder.publish_json("announcer/say/a", {"id": denied, "text": SHORT, "chime": False})
        rc_stop = intruder.publish_json("announcer/stop", {})
        forged = new_id("forged")
        rc_event = intruder.publish_json("announcer/events", {"id": forged, "state": "finished"})
        assert all(r.is_failure and "authori" in str(r).lower() for r in (rc, rc_target, rc_stop, rc_event)), [
            str(r) for r in (rc, rc_target, rc_stop, rc_event)
        ]

        anonymous = TlsClient(secure, None)
        clients.append(anonymous)
        assert anonymous.connack is not None and anonymous.connack.is_failure, anonymous.connack

        time.sleep(2.0)
        assert not events.all(denied) and not events.all(forged), events.dump()
        assert not d.wav("a", denied).exists()
        # the allowed sender still works after all that
        again = new_id("again")
        automation.publish_json("announcer/say/b", {"id": again, "text": SHORT, "chime": False})
        events.wait(again, "finished", "b", timeout=30)
        assert d.stop() == 0, d.log_tail()
        assert_no_secret_and_no_traceback(d)
    finally:
        for c in clients:
            c.close()
        d.close()


@pytest.mark.parametrize("case", ["wrong password", "wrong CA"])
def test_wrong_credentials_fail_clearly_and_never_ready(
    case: str, secure: Secure, tmp_path: Path, announcer_cache: Path
) -> None:  # noqa: F811
    sd = NotifySocket()
    password = "wrong-Secret-0000" if case == "wrong password" else PASSWORDS["announcer"]
    d = secure_daemon(
        secure, tmp_path / "d", announcer_cache, password, ca="other-ca" if case == "wrong CA" else "ca", env=sd.env
    )
    try:
        d.spawn()
        if case == "wrong password":
            line = d.wait_log("broker refused the connection", timeout=30)
            assert "Not authorized" in line, line
        else:
            line = d.wait_log("cannot connect to mqtts://127.0.0.1", timeout=30)
            assert "certificate verify failed" in line, line
        time.sleep(1.5)
        assert d.running, d.log_tail()
        assert not [m for m in sd.messages() if "READY=1" in m.splitlines()]
        assert "ready: subscribed" not in d.log()
        assert d.stop() == 0, d.log_tail()
        assert_no_secret_and_no_traceback(d)
    finally:
        d.close()
        sd.close()


# ------------------------------------------------------------------------------ limits
def test_queue_limit_sheds_the_newest_with_an_event(
    shared_broker: Broker, tmp_path: Path, announcer_cache: Path
) -> None:  # noqa: F811
    """``limits.max_queue`` per speaker: beyond it the lowest/newest is ``cancelled`` (``queue full``)."""
    fifo = FifoSpeakers(tmp_path / "alsa", count=1)  # paused: the speaker hangs while the queue fills
    d = DaemonProc(
        shared_broker,
        tmp_path / "d",
        announcer_cache,
        env=fifo.env,
        limits={"max_queue": 2},
        speakers={"slow": fifo.speaker_yaml(1)},
    )
    client = shared_broker.client()
    events = Events(client.collect(d.topic("events")))
    try:
        d.start()
        blocker = new_id("blocker")
        client.publish_json(d.topic("say", "slow"), {"id": blocker, "text": unique_text(1), "chime": False})
        events.wait(blocker, "started", "slow", timeout=30)
        ids = [new_id(f"q{i}") for i in range(4)]
        for ann_id in ids:
            client.publish_json(d.topic("say", "slow"), {"id": ann_id, "text": SHORT, "chime": False})
        for ann_id in ids[2:]:
            shed = events.wait(ann_id, "cancelled", "slow", timeout=10)
            assert shed["reason"] == "queue full", shed
        fifo.readers[1].pace(None)
        done = events.wait_done([blocker, *ids[:2]], ("slow",), timeout=60)
        assert all(done[(i, "slow")]["state"] == "finished" for i in [blocker, *ids[:2]]), events.dump()
        assert d.stop() == 0, d.log_tail()
    finally:
        d.close()
        fifo.close()
