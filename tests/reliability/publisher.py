"""A publisher that keeps its promise across broker restarts: QoS 1, persistent session, retried.

``Publisher.send(topic, payload)`` returns once the broker acknowledged the message
(PUBACK), however many times the broker is killed and restarted meanwhile: paho keeps
the unacknowledged message and sends it again (DUP) after reconnecting, and a message
that waited too long is published again (same payload, hence the same announcement
``id``: the daemon recognises it). Sequential sends keep the order the test chose.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from broker import Broker, Collected
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


class Publisher:
    def __init__(
        self, broker: Broker, client_id: str | None = None, session_expiry: int = 600, retry_after: float = 5.0
    ) -> None:
        self.client_id = client_id or f"rel-pub-{uuid.uuid4().hex[:8]}"
        self.retry_after = retry_after
        self.retries = 0  # publishes repeated because no PUBACK came within retry_after
        self.resends = 0  # publishes repeated because the daemon did not confirm (send_confirmed)
        self._acked: set[int] = set()
        self._cv = threading.Condition()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5)
        c.on_publish = self._on_publish
        c.reconnect_delay_set(0.05, 0.5)
        c.max_queued_messages_set(0)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = session_expiry
        c.connect_async(broker.host, broker.port, keepalive=10, clean_start=False, properties=props)
        c.loop_start()
        self._c = c

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        with self._cv:
            self._acked.add(mid)
            self._cv.notify_all()

    def send(
        self, topic: str, payload: bytes | str, timeout: float = 120.0, properties: Properties | None = None
    ) -> None:
        """Publish at QoS 1 and wait for the PUBACK (AssertionError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            info = self._c.publish(topic, payload, qos=1, properties=properties)
            resend_at = time.monotonic() + self.retry_after
            with self._cv:
                while info.mid not in self._acked:
                    now = time.monotonic()
                    if now > deadline:
                        raise AssertionError(f"no PUBACK for {topic} within {timeout}s")
                    if now > resend_at:
                        break
                    self._cv.wait(0.1)
                else:
                    self._acked.discard(info.mid)
                    return
            self.retries += 1

    def send_json(self, topic: str, obj: Any, **kwargs: Any) -> None:
        self.send(topic, json.dumps(obj, ensure_ascii=False).encode("utf-8"), **kwargs)

    def send_confirmed(
        self, topic: str, obj: dict[str, Any], events: Collected, confirm_within: float = 5.0, timeout: float = 120.0
    ) -> None:
        """Send ``obj`` and wait until the daemon answers for its ``id`` on ``events`` (``P/events``).

        The end-to-end confirmation a publisher needs when even an acknowledged publish may be
        lost (mosquitto acknowledges before it writes to disk; a broker killed in between
        forgets the message): no ``queued`` or ``rejected`` for the id within
        ``confirm_within`` seconds, and it is sent again with the same id; the daemon plays
        it once and answers a second copy of an id it has with ``rejected`` (``duplicate``).
        One at a time, so the order of the sends is the order the daemon receives them.
        """
        ann_id = obj["id"]
        deadline = time.monotonic() + timeout
        seen = len(events)
        while True:
            self.send_json(topic, obj, timeout=max(1.0, deadline - time.monotonic()))
            until = min(deadline, time.monotonic() + confirm_within)
            while time.monotonic() < until:
                new = events.snapshot()[seen:]
                seen += len(new)
                for m in new:
                    try:
                        e = m.json()
                    except ValueError:
                        continue
                    if e.get("id") == ann_id and e.get("state") in ("queued", "rejected"):
                        return
                time.sleep(0.005)
            if time.monotonic() >= deadline:
                raise AssertionError(f"the daemon never confirmed {ann_id} within {timeout}s")
            self.resends += 1

    def close(self) -> None:
        self._c.disconnect()
        self._c.loop_stop()


def warm_up(
    pub: Publisher,
    daemon: Any,
    texts: list[str],
    targets: str,
    speakers: tuple[str, ...],
    timeout: float = 120.0,
    batch: int = 4,
) -> None:
    """Play ``texts`` once on ``targets`` (not counted by any ledger) so the clause cache holds them.

    The runs that follow then measure the faults, not first syntheses. ``daemon`` is a
    ``daemon_proc.DaemonProc``. Sends ``batch`` at a time (under any ``limits.max_queue``)
    and waits until each batch finished on every speaker.
    """
    from ledger import parse_log

    deadline = time.monotonic() + timeout
    for start in range(0, len(texts), batch):
        ids = [f"warm-{uuid.uuid4().hex[:8]}" for _ in texts[start : start + batch]]
        for ann_id, text in zip(ids, texts[start : start + batch]):
            pub.send_json(daemon.topic("say"), {"id": ann_id, "text": text, "chime": False, "targets": targets})
        want = {(i, s) for i in ids for s in speakers}
        while want - {(e.id, e.speaker) for e in parse_log(daemon.log()) if e.state == "finished"}:
            if time.monotonic() > deadline:
                raise AssertionError(f"warm-up not finished within {timeout}s\n{daemon.log_tail()}")
            time.sleep(0.2)
