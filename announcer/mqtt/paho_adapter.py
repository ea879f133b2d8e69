"""paho-mqtt, adapted: messages detached from paho, MQTT 5 properties, the client with a faster
dead-link check, and paho's own log lines at the right level. ``MqttLink`` uses these."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


@dataclass(frozen=True)
class IncomingMessage:
    """One PUBLISH from the broker, detached from paho."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    message_expiry: float | None = None  # seconds left (MQTT 5 MessageExpiryInterval as forwarded)
    response_topic: str | None = None
    correlation_data: bytes | None = None
    received: float = field(default_factory=time.time)  # epoch seconds
    duplicate: bool = False  # DUP flag: a redelivery (the handler may have seen it before)
    client: str | None = None  # MQTT 5 user property "client": who published it, as the publisher says


CLIENT_PROPERTY = "client"  # the MQTT 5 user property a publisher names itself in (the history shows it)
MAX_CLIENT_CHARS = 64


def client_of(props: Any) -> str | None:
    """The publisher's ``client`` user property (cut to 64 characters), if it sent one."""
    for key, value in getattr(props, "UserProperty", None) or ():
        if key == CLIENT_PROPERTY and isinstance(value, str) and value.strip():
            return value.strip()[:MAX_CLIENT_CHARS]
    return None


MessageHandler = Callable[[IncomingMessage], "bool | None"]
ConnectionListener = Callable[[bool], None]


def publish_properties(
    *,
    message_expiry: float | None = None,
    response_topic: str | None = None,
    correlation_data: bytes | None = None,
    content_type: str | None = None,
    client: str | None = None,
) -> Properties:
    """MQTT 5 PUBLISH properties from plain values (None fields are left out)."""
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]  # paho leaves Properties unannotated
    if message_expiry is not None:
        props.MessageExpiryInterval = max(1, int(message_expiry))
    if response_topic is not None:
        props.ResponseTopic = response_topic
    if correlation_data is not None:
        props.CorrelationData = correlation_data
    if content_type is not None:
        props.ContentType = content_type
    if client is not None:
        props.UserProperty = [(CLIENT_PROPERTY, client)]
    return props


def json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def incoming_from_paho(msg: mqtt.MQTTMessage, received: float | None = None) -> IncomingMessage:
    props = getattr(msg, "properties", None)
    expiry = getattr(props, "MessageExpiryInterval", None) if props is not None else None
    response = getattr(props, "ResponseTopic", None) if props is not None else None
    corr = getattr(props, "CorrelationData", None) if props is not None else None
    return IncomingMessage(
        topic=msg.topic,
        payload=bytes(msg.payload),
        qos=msg.qos,
        retain=bool(msg.retain),
        mid=msg.mid,
        message_expiry=float(expiry) if expiry is not None else None,
        response_topic=response or None,
        correlation_data=bytes(corr) if corr is not None else None,
        received=time.time() if received is None else received,
        duplicate=bool(msg.dup),
        client=client_of(props) if props is not None else None,
    )


_PAHO_LOGGER = logging.getLogger(f"{__name__}.client")


_SOCKET_ERRORS = ("failed to receive on socket: ", "timeout on socket: ")


def paho_log(client: mqtt.Client, userdata: Any, level: int, buf: str) -> None:
    """paho's own messages at DEBUG: connects and disconnects are logged by MqttLink, once, with reasons.

    paho reports "Client is not connected" at ERROR on every retry while the broker is down, and
    a socket error (e.g. a connection reset) at ERROR just before it reports the loss: while
    connected, that error is kept as the reason of MqttLink's one "lost connection" warning. Its
    other errors (none expected: our callbacks never raise) stay visible as warnings.
    """
    if (
        level == mqtt.MQTT_LOG_ERR
        and buf.startswith(_SOCKET_ERRORS)
        and client.is_connected()
        and isinstance(client, Client)
    ):
        client.last_socket_error = buf.partition(": ")[2]
        _PAHO_LOGGER.debug("%s", buf)
    elif level == mqtt.MQTT_LOG_ERR and "not connected" not in buf:
        _PAHO_LOGGER.warning("%s", buf)
    else:
        _PAHO_LOGGER.debug("%s", buf)


class Client(mqtt.Client):
    """paho's client, remembering why the last connection attempt failed (paho drops the OSError),
    and noticing a dead link within ``keepalive`` (paho alone: up to twice that).

    paho pings after ``keepalive`` seconds of silence and gives up ``keepalive`` seconds after
    the ping, so a connection that dies without a FIN (a cut cable, a NAT that forgot us) goes
    unnoticed for up to 2 x keepalive, and the announcements meanwhile wait on the broker. The
    contract is keepalive x 1.5, the broker's own limit for us. ``_check_keepalive`` therefore
    runs paho's check with half the keepalive: a ping after keepalive/2 of silence, the link
    given up keepalive/2 after an unanswered ping, i.e. noticed within keepalive (+ up to 1 s per
    deadline: paho's loop checks once a second). The CONNECT still announces the configured keepalive, so the broker's
    timeout (and our last will) keep theirs. paho reads ``_keepalive`` for both deadlines; it is
    halved only for the duration of the check, which like every other reader of it (CONNECT,
    CONNACK) runs on paho's network thread. Private paho API: paho-mqtt is pinned to major 2.
    """

    last_connect_error: BaseException | None = None
    last_socket_error: str | None = None  # why the current connection failed, if paho said so
    last_packet_in: float | None = None  # time.monotonic() of the last whole packet from the broker

    def _packet_handle(self) -> MQTTErrorCode:
        self.last_packet_in = time.monotonic()  # paho's own clock of it is reset when it pings
        return super()._packet_handle()

    def _check_keepalive(self) -> None:
        configured = self._keepalive
        self._keepalive = configured / 2  # type: ignore[assignment]  # paho compares, never packs it here
        try:
            super()._check_keepalive()
        finally:
            self._keepalive = configured

    def reconnect(self) -> MQTTErrorCode:
        try:
            rc = super().reconnect()
        except OSError as exc:
            self.last_connect_error = exc
            raise
        self.last_connect_error = None
        return rc


def no_delay(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    """Disable Nagle's algorithm: an event published right after another (queued, then started)
    would otherwise wait for the broker's delayed ACK, up to 40 ms, on every announcement."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):  # a unix socket or a websocket wrapper: nothing to tune
        pass
