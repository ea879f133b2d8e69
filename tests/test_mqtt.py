"""MqttLink against a real mosquitto: availability, last will, persistent session, acks, properties."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from broker import Broker, properties

from announcer.config import MqttConfig
from announcer.mqtt.link import MqttLink
from announcer.mqtt.paho_adapter import IncomingMessage

ROOT = Path(__file__).resolve().parents[1]


class Inbox:
    """An on_message handler recording what it got; ``fail_on`` payloads raise once (like a full disk)."""

    def __init__(self, fail_on: set[bytes] | None = None) -> None:
        self.items: list[IncomingMessage] = []
        self.fail_on = set(fail_on or ())
        self._cond = threading.Condition()

    def __call__(self, msg: IncomingMessage) -> None:
        with self._cond:
            self.items.append(msg)
            self._cond.notify_all()
        if msg.payload in self.fail_on:
            self.fail_on.discard(msg.payload)
            raise OSError(28, "No space left on device")

    def wait(self, payload: bytes, timeout: float = 5.0, after: int = 0) -> IncomingMessage:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.items[after:]:
                    if m.payload == payload:
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{payload!r} not received; got {[m.payload for m in self.items]}")
                self._cond.wait(left)

    def payloads(self) -> list[bytes]:
        with self._cond:
            return [m.payload for m in self.items]


def make_link(broker: Broker, inbox: Inbox | None = None, subs: list[str] | None = None, **cfg: Any) -> MqttLink:
    cfg.setdefault("client_id", "announcer-test")
    link = MqttLink(
        MqttConfig(**broker.mqtt_config(**cfg)),
        inbox or Inbox(),
        ["announcer/say", "announcer/say/+"] if subs is None else subs,
    )
    link.start()
    assert link.wait_subscribed(5), "no SUBACK"
    return link


@pytest.fixture
def links():
    made: list[MqttLink] = []
    yield made
    for link in made:
        link.close()


def test_connects_and_publishes_online_retained(broker: Broker, links: list[MqttLink]) -> None:
    changes: list[bool] = []
    link = MqttLink(MqttConfig(**broker.mqtt_config()), Inbox(), ["announcer/say"], on_connect_change=changes.append)
    links.append(link)
    link.start()
    assert link.wait_connected(5) and link.wait_subscribed(5)
    assert link.connected and changes == [True]
    avail = broker.client().collect("announcer/availability")  # subscribed after: must be retained
    m = avail.wait_for()
    assert (m.payload, m.retain) == (b"online", True)


def test_clean_close_publishes_offline(broker: Broker) -> None:
    avail = broker.client().collect("announcer/availability")
    changes: list[bool] = []
    link = MqttLink(MqttConfig(**broker.mqtt_config()), Inbox(), ["announcer/say"], on_connect_change=changes.append)
    link.start()
    assert link.wait_subscribed(5)
    avail.wait_for(lambda m: m.payload == b"online")
    link.close()
    assert not link.connected and changes == [True, False]
    avail.wait_for(lambda m: m.payload == b"offline")
    late = broker.client().collect("announcer/availability")
    assert late.wait_for().payload == b"offline"  # retained
    assert [m.payload for m in avail] == [b"online", b"offline"]  # the will was not sent as well


LINK_SCRIPT = """
import json, sys, time
from announcer.config import MqttConfig
from announcer.mqtt.link import MqttLink
link = MqttLink(MqttConfig(**json.loads(sys.argv[1])), lambda m: None, ["announcer/say"])
link.start()
assert link.wait_subscribed(10)
print("ready", flush=True)
time.sleep(60)
"""


def test_last_will_offline_when_process_killed(broker: Broker) -> None:
    avail = broker.client().collect("announcer/availability")
    proc = subprocess.Popen(
        [sys.executable, "-c", LINK_SCRIPT, json.dumps(broker.mqtt_config(keepalive=5))],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        avail.wait_for(lambda m: m.payload == b"online")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        # the broker sees the socket close at once and sends the will
        avail.wait_for(lambda m: m.payload == b"offline", timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
    assert broker.client().collect("announcer/availability").wait_for().payload == b"offline"


def test_receives_messages_sent_while_it_was_away(broker: Broker, links: list[MqttLink]) -> None:
    first = make_link(broker)
    first.close()
    pub = broker.client()
    pub.publish("announcer/say", b"while away", qos=1)
    broker.restart()  # the queued message survives a broker restart too
    pub.wait_connected()
    inbox = Inbox()
    links.append(make_link(broker, inbox))
    m = inbox.wait(b"while away")
    assert m.topic == "announcer/say" and m.qos == 1


def test_resubscribes_after_broker_restart(broker: Broker, links: list[MqttLink]) -> None:
    # session_expiry 0: the broker forgets the session, so only a fresh SUBSCRIBE gets messages
    inbox = Inbox()
    changes: list[bool] = []
    link = MqttLink(
        MqttConfig(**broker.mqtt_config(session_expiry=0)), inbox, ["announcer/say"], on_connect_change=changes.append
    )
    links.append(link)
    link.start()
    assert link.wait_subscribed(5)
    broker.restart()
    deadline = time.monotonic() + 10
    while changes[-1:] != [True] or len(changes) < 3:
        assert time.monotonic() < deadline, f"did not reconnect: {changes}"
        time.sleep(0.05)
    pub = broker.client()
    deadline = time.monotonic() + 5
    while b"after restart" not in inbox.payloads():  # the SUBACK may trail the CONNACK a little
        assert time.monotonic() < deadline, "not re-subscribed"
        pub.publish("announcer/say", b"after restart")
        time.sleep(0.1)
    assert broker.client().collect("announcer/availability").wait_for().payload == b"online"


def test_handler_error_keeps_loop_and_message_is_redelivered(
    broker: Broker, links: list[MqttLink], caplog: pytest.LogCaptureFixture
) -> None:
    inbox = Inbox(fail_on={b"disk full"})
    links.append(make_link(broker, inbox))
    pub = broker.client()
    with caplog.at_level(logging.ERROR, logger="announcer.mqtt.link"):
        pub.publish("announcer/say", b"disk full")
        pub.publish("announcer/say/lobby", b"next one")
        inbox.wait(b"next one")
    assert "not acknowledged" in caplog.text and "No space left" in caplog.text
    seen = len(inbox.items)
    broker.restart()  # a reconnect: the broker redelivers what we did not acknowledge
    again = inbox.wait(b"disk full", timeout=10, after=seen)
    assert again.duplicate
    time.sleep(0.3)
    assert inbox.payloads().count(b"next one") == 1  # acknowledged: not redelivered


def test_acked_messages_are_not_redelivered_to_a_new_process(broker: Broker, links: list[MqttLink]) -> None:
    inbox = Inbox()
    link = make_link(broker, inbox)
    broker.client().publish("announcer/say", b"once")
    inbox.wait(b"once")
    link.close()
    inbox2 = Inbox()
    links.append(make_link(broker, inbox2))
    broker.client().publish("announcer/say", b"marker")
    inbox2.wait(b"marker")
    assert inbox2.payloads() == [b"marker"]


def test_handler_returning_false_is_not_acknowledged(broker: Broker, links: list[MqttLink]) -> None:
    calls: list[bytes] = []

    def handler(msg: IncomingMessage) -> bool:
        calls.append(msg.payload)
        return len(calls) > 1

    links.append(make_link(broker, handler))  # type: ignore[arg-type]
    broker.client().publish("announcer/say", b"refused")
    broker.restart()
    deadline = time.monotonic() + 10
    while calls.count(b"refused") < 2:
        assert time.monotonic() < deadline, calls
        time.sleep(0.05)


def test_mqtt5_properties_are_surfaced(broker: Broker, links: list[MqttLink]) -> None:
    inbox = Inbox()
    links.append(make_link(broker, inbox))
    props = properties(MessageExpiryInterval=30, ResponseTopic="announcer/reply/x", CorrelationData=b"\x01\x02")
    before = time.time()
    broker.client().publish("announcer/say/lobby", b'{"text": "hi"}', properties=props)
    m = inbox.wait(b'{"text": "hi"}')
    assert m.topic == "announcer/say/lobby"
    assert m.message_expiry is not None and 28 <= m.message_expiry <= 30
    assert m.response_topic == "announcer/reply/x"
    assert m.correlation_data == b"\x01\x02"
    assert before - 1 <= m.received <= time.time() and not m.retain and not m.duplicate
    broker.client().publish("announcer/say", b"plain")
    plain = inbox.wait(b"plain")
    assert (plain.message_expiry, plain.response_topic, plain.correlation_data) == (None, None, None)


def test_publish_json_and_publish_are_thread_safe(broker: Broker, links: list[MqttLink]) -> None:
    link = make_link(broker)
    links.append(link)
    events = broker.client().collect("announcer/events")

    def worker(n: int) -> None:
        for i in range(20):
            link.publish_json("announcer/events", {"id": f"{n}-{i}", "state": "queued", "text": "大厅"})

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = events.wait_count(100)
    assert {m.json()["id"] for m in got} == {f"{n}-{i}" for n in range(5) for i in range(20)}
    assert got[0].json()["text"] == "大厅"


def test_mqtt311_mode(broker: Broker, links: list[MqttLink]) -> None:
    inbox = Inbox()
    link = make_link(broker, inbox, protocol="3.1.1", client_id="announcer-v3")
    assert broker.client().collect("announcer/availability").wait_for().payload == b"online"
    pub = broker.client()
    pub.publish("announcer/say", b"v3", properties=properties(ResponseTopic="r"))
    m = inbox.wait(b"v3")
    assert m.response_topic is None and m.qos == 1
    link.publish("announcer/events", b"{}", properties=properties(ResponseTopic="r"))  # properties dropped
    link.close()
    pub.publish("announcer/say", b"v3 while away")
    inbox2 = Inbox()
    links.append(make_link(broker, inbox2, protocol="3.1.1", client_id="announcer-v3"))
    inbox2.wait(b"v3 while away")


def test_broker_down_at_start_then_up(
    broker_factory: Any, links: list[MqttLink], caplog: pytest.LogCaptureFixture
) -> None:
    b = broker_factory(start=False)  # nothing listens on b.port yet
    with caplog.at_level(logging.INFO, logger="announcer.mqtt.link"):
        link = MqttLink(MqttConfig(**b.mqtt_config()), Inbox(), ["announcer/say"])
        links.append(link)
        link.start()
        assert not link.wait_connected(0.5)
        assert link.last_error is not None and "refused" in link.last_error.lower()
        b.start()
        assert link.wait_subscribed(10)
    assert "cannot connect to mqtt://127.0.0.1" in caplog.text and "refused" in caplog.text.lower()
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "connected to mqtt://127.0.0.1" in caplog.text and "failed attempt(s)" in caplog.text


def _make_certs(d: Path) -> tuple[Path, Path, Path]:
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=announcer-test-ca",
    )
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    )
    return d / "ca.crt", d / "server.crt", d / "server.key"


def test_tls_and_password(tmp_path: Path, broker_factory: Any, links: list[MqttLink]) -> None:
    from broker import free_port

    certs = tmp_path / "certs"
    certs.mkdir()
    ca, crt, key = _make_certs(certs)
    pwfile = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pwfile), "ann", "s3cret"], check=True)
    tls_port = free_port()
    extra = (
        f"listener {tls_port} 127.0.0.1\ncafile {ca}\ncertfile {crt}\nkeyfile {key}\n"
        f"password_file {pwfile}\nallow_anonymous false\n"
    )
    b = broker_factory(head_conf="per_listener_settings true\n", extra_conf=extra)

    def link_with(**overrides: Any) -> tuple[MqttLink, Inbox]:
        inbox = Inbox()
        cfg = b.mqtt_config(
            **{"port": tls_port, "username": "ann", "password": "s3cret", "tls": {"ca_certs": str(ca)}, **overrides}
        )
        link = MqttLink(MqttConfig(**cfg), inbox, ["announcer/say"])
        links.append(link)
        link.start()
        return link, inbox

    link, inbox = link_with()
    assert link.wait_subscribed(10), link.last_error
    link.publish("announcer/say", b"over tls").wait_for_publish(5)
    inbox.wait(b"over tls")

    wrong, _ = link_with(password="wrong", client_id="wrong-pw")
    assert not wrong.wait_connect_attempt(5)
    assert "not authorized" in (wrong.last_error or "").lower()


def test_close_while_broker_unreachable_is_quick() -> None:
    from broker import free_port

    link = MqttLink(MqttConfig(port=free_port(), reconnect_min_delay=0.1, reconnect_max_delay=30), Inbox(), [])
    link.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    link.close()
    assert time.monotonic() - t0 < 2.0 and not link.connected


def test_session_takeover_is_explained(broker: Broker, links: list[MqttLink], caplog: pytest.LogCaptureFixture) -> None:
    links.append(make_link(broker, client_id="twin"))
    with caplog.at_level(logging.WARNING, logger="announcer.mqtt.link"):
        broker.client(client_id="twin")  # same client id: the broker drops the link
        deadline = time.monotonic() + 5
        while "another client using client id 'twin'" not in caplog.text:
            assert time.monotonic() < deadline, caplog.text
            time.sleep(0.05)
