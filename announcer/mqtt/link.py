"""The one owner of the paho-mqtt client: connect, TLS, auth, last will, reconnect, subscribe, publish.

``MqttLink`` keeps one persistent session on the broker (clean start off, session
expiry from config; ``clean_session=False`` for MQTT 3.1.1) and subscribes at QoS 1
on *every* connect. Availability follows the zigbee2mqtt pattern: last will
``offline`` (retained, QoS 1) on ``P/availability``, ``online`` retained on each
connect once the broker has confirmed the subscriptions (so a client that waits for
``online`` and then publishes is heard, even on the very first connect, before the
broker holds a session for us), ``offline`` published and confirmed before a clean
disconnect.

Delivery contract (``manual_ack=True``)
    The ``on_message`` handler runs on paho's network thread, one message at a time, in
    arrival order. It must return only after the message is committed (to the spool),
    and must be quick: no synthesis or playback there. When it returns (anything but
    ``False``) the link acknowledges QoS > 0 messages to the broker, so acks go out in
    arrival order. When it raises (e.g. the spool disk is full) or returns ``False``,
    the message is NOT acknowledged: the broker keeps it in our session and redelivers
    it (DUP set) after the next reconnect. MQTT forbids redelivery on the same
    connection, and every unacked message holds one slot of the broker's in-flight
    window (mosquitto: 20 by default), so a handler that keeps failing eventually
    stalls delivery until a reconnect. An exception never escapes into paho (that
    would end paho's loop thread); it is logged with its traceback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ..config import ConfigError, MqttConfig
from .paho_adapter import (
    Client,
    ConnectionListener,
    MessageHandler,
    incoming_from_paho,
    json_bytes,
    no_delay,
    paho_log,
)
from .topics import Topics

_LOGGER = logging.getLogger(__name__)

ONLINE = "online"
QUICK_DROP_S = 10.0  # a connection lost sooner than this after CONNACK counts as a quick drop
OFFLINE = "offline"


class PacketTooLarge(ValueError):
    """A message over the broker's Maximum Packet Size (not sent)."""


class MqttLink:
    """A persistent, self-reconnecting broker connection for the daemon.

    ``subscriptions`` are topic filters subscribed at QoS 1 on every connect.
    ``on_message`` gets an ``IncomingMessage`` on paho's thread (see the module doc for
    the acknowledgement contract). ``on_connect_change(connected)`` reports status
    changes, also on paho's thread. Call ``start()`` once and ``close()`` once.

    The daemon uses the defaults. Short-lived tools (``announcer send``) pass their own
    ``client_id``, ``persistent=False`` (clean start, no session kept) and
    ``availability=False`` (no last will, no online/offline).
    """

    def __init__(
        self,
        cfg: MqttConfig,
        on_message: MessageHandler,
        subscriptions: Sequence[str],
        *,
        on_connect_change: ConnectionListener | None = None,
        availability_topic: str | None = None,
        client_id: str | None = None,
        persistent: bool = True,
        availability: bool = True,
    ) -> None:
        self.cfg = cfg
        self.client_id = client_id or cfg.client_id
        self.persistent = persistent
        self.availability_topic: str | None = (
            (availability_topic or Topics.under(cfg.topic_prefix).availability) if availability else None
        )
        self.subscriptions = tuple(subscriptions)
        self._handler = on_message
        self._on_connect_change = on_connect_change
        self._v5 = cfg.protocol == "5"
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._attempted = threading.Event()  # the first connection attempt has an outcome
        self._last_error: str | None = None
        self._sub_mid: int | None = None
        self._closing = False
        self._started = False
        self._failures = 0
        self._connected_at = 0.0
        self.max_packet_size: int | None = None  # the broker's, from its CONNACK (MQTT 5), if it said one
        self._quick_drops = 0
        self.on_published: Callable[[int], None] | None = None  # the broker acknowledged our QoS 1 publish (mid)
        self._client = self._make_client()

    # ---- set-up -----------------------------------------------------------------------
    def _make_client(self) -> Client:
        cfg = self.cfg
        if self._v5:
            client = Client(
                CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5, manual_ack=True
            )
        else:
            client = Client(
                CallbackAPIVersion.VERSION2,
                client_id=self.client_id,
                protocol=mqtt.MQTTv311,
                clean_session=not self.persistent,
                manual_ack=True,
            )
        client.on_log = paho_log
        if cfg.username is not None:
            # password_file is read here, at start (validated when the config was loaded); never logged
            try:
                password = cfg.read_password()
            except OSError as exc:
                why = exc.strerror or type(exc).__name__
                raise ConfigError([f"mqtt.password_file: cannot read {cfg.password_file}: {why}"]) from None
            client.username_pw_set(cfg.username, password)
        if cfg.tls is not None:
            # host names are always verified: there is deliberately no "insecure" switch
            client.tls_set(ca_certs=cfg.tls.ca_certs, certfile=cfg.tls.certfile, keyfile=cfg.tls.keyfile)
        if self.availability_topic is not None:
            client.will_set(self.availability_topic, OFFLINE, qos=1, retain=True)
        # paho annotates the delays int, but takes (and keeps) float seconds
        client.reconnect_delay_set(min(cfg.reconnect_min_delay, cfg.reconnect_max_delay), cfg.reconnect_max_delay)  # type: ignore[arg-type]
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_socket_open = no_delay
        return client

    @property
    def broker(self) -> str:
        scheme = "mqtts" if self.cfg.tls is not None else "mqtt"
        return f"{scheme}://{self.cfg.host}:{self.cfg.port}"

    # ---- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background; retries with backoff until ``close()``. Never raises for network errors."""
        with self._lock:
            if self._started:
                raise RuntimeError("MqttLink.start() called twice")
            self._started = True
        kwargs: dict[str, Any] = {}
        if self._v5 and not self.persistent:
            kwargs = {"clean_start": True}
        elif self._v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho leaves it unannotated
            props.SessionExpiryInterval = self.cfg.session_expiry
            # clean_start=False always: paho's default (clean on first connect only) would wipe the
            # session the broker kept for us - and the announcements queued in it - on every start.
            kwargs = {"clean_start": False, "properties": props}
        _LOGGER.info("connecting to %s as %s (MQTT %s)", self.broker, self.client_id, self.cfg.protocol)
        self._client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive, **kwargs)
        self._client.loop_start()

    def close(self, timeout: float = 5.0) -> None:
        """Publish ``offline`` (retained, confirmed), disconnect cleanly and stop the network thread."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        was_connected = self._connected.is_set()
        if was_connected and self.availability_topic is not None:
            info = self._client.publish(self.availability_topic, OFFLINE, qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
                if not info.is_published():
                    _LOGGER.warning("broker did not confirm offline within %.1fs", timeout)
            except (RuntimeError, ValueError) as exc:
                _LOGGER.warning("could not publish offline before disconnecting: %s", exc)
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()
        if was_connected:
            self._notify(False)
        _LOGGER.info("disconnected from %s", self.broker)

    def __enter__(self) -> MqttLink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- state ------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float | None = None) -> bool:
        return self._connected.wait(timeout)

    def wait_connect_attempt(self, timeout: float | None = None) -> bool:
        """Wait for the outcome of the first connection attempt; True if connected (see ``last_error``)."""
        self._attempted.wait(timeout)
        return self._connected.is_set()

    @property
    def last_error(self) -> str | None:
        """Why the last connection attempt failed (``Connection refused``, ``Not authorized`` ...)."""
        return self._last_error

    def loop_alive(self) -> bool:
        """paho's network thread is running (it sends keepalives while connected, reconnects while not).

        The daemon's watchdog pings systemd only while this holds: a dead loop would leave the
        daemon deaf for good. False before ``start()`` and after ``close()``.
        """
        thread = getattr(self._client, "_thread", None)  # paho keeps its loop_start() thread here
        return thread is not None and thread.is_alive()

    def silent_for(self) -> float:
        """Seconds since the last packet from the broker (a PINGRESP counts; infinite before the first).

        An active/standby pair's leader stops starting announcements once this passes the keepalive:
        the broker gives up on us (and publishes our last will) only 1.5 x keepalive after our last packet.
        """
        last = self._client.last_packet_in
        return float("inf") if last is None else time.monotonic() - last

    def wait_subscribed(self, timeout: float | None = None) -> bool:
        """True once the broker acknowledged the first batch of subscriptions (stays True)."""
        return self._subscribed.wait(timeout)

    # ---- publishing -------------------------------------------------------------------------
    def publish(
        self,
        topic: str,
        payload: bytes | bytearray | str,
        qos: int = 1,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> mqtt.MQTTMessageInfo:
        """Thread-safe. While disconnected, QoS > 0 messages are queued and sent after reconnecting.

        A message the broker said it will not take (its Maximum Packet Size) raises
        ``PacketTooLarge`` instead: sent, it would get the daemon disconnected, and a QoS 1
        message in the session would be sent again after every reconnect.
        """
        limit = self.max_packet_size
        size = len(payload.encode("utf-8") if isinstance(payload, str) else payload) + len(topic.encode()) + 64
        if limit is not None and size > limit:
            raise PacketTooLarge(f"{size} bytes is over the broker's maximum packet size of {limit} bytes")
        if properties is not None and not self._v5:
            properties = None  # MQTT 3.1.1 has no properties; the payload still goes out
        return self._client.publish(topic, payload, qos=qos, retain=retain, properties=properties)

    def publish_json(
        self, topic: str, obj: Any, qos: int = 1, retain: bool = False, properties: Properties | None = None
    ) -> mqtt.MQTTMessageInfo:
        return self.publish(topic, json_bytes(obj), qos=qos, retain=retain, properties=properties)

    # ---- paho callbacks (network thread; nothing may raise out of them) ----------------------
    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Properties | None
    ) -> None:
        if reason.is_failure:
            self._last_error = f"broker refused the connection: {reason}"
            _LOGGER.error("%s %s", self.broker, self._last_error)
            self._attempted.set()
            return
        session = bool(getattr(flags, "session_present", False))
        after = f" after {self._failures} failed attempt(s)" if self._failures else ""
        _LOGGER.info(
            "connected to %s as %s%s (session %s)", self.broker, self.client_id, after, "resumed" if session else "new"
        )
        self._failures = 0
        self._last_error = None
        self._client.last_socket_error = None
        self._connected_at = time.monotonic()
        self.max_packet_size = getattr(properties, "MaximumPacketSize", None) if properties is not None else None
        if self.subscriptions:
            if self._v5:
                topics: list[tuple[str, Any]] = [(t, SubscribeOptions(qos=1)) for t in self.subscriptions]
            else:
                topics = [(t, 1) for t in self.subscriptions]
            rc, mid = client.subscribe(topics)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                _LOGGER.warning("subscribe failed: %s (will retry on the next connect)", mqtt.error_string(rc))
                self._publish_online(client)
            with self._lock:
                self._sub_mid = mid
        else:
            self._publish_online(client)
            self._subscribed.set()
        self._connected.set()
        self._attempted.set()
        self._notify(True)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._failures += 1
        err = getattr(client, "last_connect_error", None)
        why = (getattr(err, "strerror", None) or str(err) or type(err).__name__) if err is not None else "unknown"
        self._last_error = why
        self._attempted.set()
        # the first failure and then every 10th: one line a minute at most at the default max delay
        level = logging.WARNING if self._failures == 1 or self._failures % 10 == 0 else logging.DEBUG
        _LOGGER.log(level, "cannot connect to %s: %s (attempt %d, retrying)", self.broker, why, self._failures)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Properties | None
    ) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if self._closing:
            return
        if not was:
            return
        lasted = time.monotonic() - self._connected_at
        self._quick_drops = self._quick_drops + 1 if lasted < QUICK_DROP_S else 0
        if reason.value == 142 or self._quick_drops == 3:  # 142: Session taken over (mosquitto just closes)
            _LOGGER.error(
                "%s keeps dropping the connection right after connecting: is another client using "
                "client id %r? Every daemon needs its own mqtt.client_id",
                self.broker,
                self.client_id,
            )
        if reason.value != 142:
            # 128: the socket closed or failed (paho's socket error, if it gave one, kept by _paho_log)
            why = (self._client.last_socket_error or "connection closed") if reason.value == 128 else str(reason)
            _LOGGER.warning("lost connection to %s: %s (reconnecting)", self.broker, why)
        self._notify(False)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: list[ReasonCode], properties: Properties | None
    ) -> None:
        with self._lock:
            ours = mid == self._sub_mid
        if not ours:
            return
        for topic, rc in zip(self.subscriptions, reasons):
            if rc.is_failure:
                _LOGGER.error("broker refused subscription %s: %s", topic, rc)
            elif int(rc.value) < 1:
                _LOGGER.warning("broker granted only QoS 0 for %s: announcements may be lost", topic)
        _LOGGER.debug("subscribed to %s", ", ".join(self.subscriptions))
        self._publish_online(client)  # only now: a client that waits for "online" and publishes is heard
        self._subscribed.set()

    def _publish_online(self, client: mqtt.Client) -> None:
        if self.availability_topic is not None:
            client.publish(self.availability_topic, ONLINE, qos=1, retain=True)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            incoming = incoming_from_paho(msg)
            result = self._handler(incoming)
        except Exception:
            _LOGGER.exception(
                "handling message %d on %s failed; not acknowledged (the broker redelivers it "
                "after the next reconnect)",
                msg.mid,
                msg.topic,
            )
            return
        if result is False:
            _LOGGER.warning("message %d on %s not accepted; not acknowledged", msg.mid, msg.topic)
            return
        if msg.qos > 0:
            try:
                client.ack(msg.mid, msg.qos)
            except Exception:  # a socket error here resurfaces as a disconnect
                _LOGGER.warning("could not acknowledge message %d on %s", msg.mid, msg.topic, exc_info=True)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        listener = self.on_published
        if listener is None:
            return
        try:
            listener(mid)
        except Exception:
            _LOGGER.exception("publish listener failed")

    def _notify(self, connected: bool) -> None:
        if self._on_connect_change is None:
            return
        try:
            self._on_connect_change(connected)
        except Exception:
            _LOGGER.exception("connection listener failed")
