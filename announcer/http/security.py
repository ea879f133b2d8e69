"""Who may call the HTTP API, and how much they may send.

``Guard`` is a plain ASGI middleware, checked in this order for every request:

1. the client address against ``http.allow_ips`` (CIDR networks) → 403;
2. with no auth configured (only allowed on a loopback bind), the ``Host`` header must
   name a loopback host too, so a web page cannot reach the API by DNS rebinding → 403;
3. bearer auth on everything but the console's static files, ``/healthz`` and
   ``/openapi.json``: a configured token (``hmac.compare_digest``) or an HS256 JWT
   signed with ``http.jwt_secret`` whose ``exp`` is in the future → 401; who it was (the
   token's name, ``token #N`` for an unnamed one, ``jwt:<sub>``) goes into the request's
   scope as ``USER_KEY`` for the history;
4. a ``POST`` must be ``application/json`` (a cross-site form cannot send it) → 415;
5. the body: a ``Content-Length`` over ``max_body_bytes`` is refused before reading
   anything, a chunked body as soon as it grows past the limit → 413.

Every refusal is JSON ``{"status": "error", "field", "error"}``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, ClassVar

from ..config import is_loopback
from ..core.ratelog import RateLimitedLog

_LOGGER = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PUBLIC_PATHS = frozenset({"/", "/index.html", "/healthz", "/openapi.json", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/", "/handout/")  # /handout/<token>: the unguessable token is the credential
JWT_LEEWAY_SECONDS = 30.0
USER_KEY = "announcer.user"  # scope key: who the bearer credential says the caller is


class AuthError(Exception):
    """Why a credential was refused (the message is safe to show to the caller)."""


# ------------------------------------------------------------------------------ JWT (HS256)
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def _b64url_decode(part: str) -> bytes:
    """Strict base64url without padding: any other character, or unused bits that are not zero
    (a second spelling of the same bytes), make the token malformed."""
    if not _B64URL.fullmatch(part) or len(part) % 4 == 1:
        raise AuthError("malformed token")
    try:
        data = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise AuthError("malformed token") from None
    if _b64url_encode(data) != part:
        raise AuthError("malformed token")
    return data


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_jwt_hs256(claims: dict[str, Any], secret: str) -> str:
    """An HS256 JWT for ``claims`` (for tests and for operators who mint their own tokens)."""
    header = _b64url_encode(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url_encode(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    sig = hmac.new(secret.encode("utf-8"), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url_encode(sig)}"


def verify_jwt_hs256(token: str, secret: str, now: float | None = None) -> dict[str, Any]:
    """The claims of a valid HS256 JWT; raises AuthError otherwise.

    Only ``alg: HS256`` is accepted (never ``none``); the signature is checked before the
    claims are trusted; ``exp`` is required, a finite number, and must be in the future (30 s
    leeway); a present ``nbf`` must be a finite number that has passed. Each part is strict
    base64url (no padding, no other characters, unused bits zero).
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise AuthError("malformed token")
    try:
        header = json.loads(_b64url_decode(parts[0]))
    except (ValueError, UnicodeDecodeError):
        raise AuthError("malformed token") from None
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise AuthError("token algorithm must be HS256")
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii", "replace")
    expected = hmac.new(secret.encode("utf-8"), signing_input, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, _b64url_decode(parts[2])):
        raise AuthError("bad token signature")
    try:
        claims = json.loads(_b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError):
        raise AuthError("malformed token") from None
    if not isinstance(claims, dict):
        raise AuthError("malformed token")
    now = time.time() if now is None else now
    exp: Any = claims.get("exp")
    if not _finite_number(exp):
        raise AuthError("token has no finite numeric exp claim")
    if now > float(exp) + JWT_LEEWAY_SECONDS:
        raise AuthError("token expired")
    nbf: Any = claims.get("nbf")
    if nbf is not None and not _finite_number(nbf):
        raise AuthError("token's nbf claim is not a finite number")
    if nbf is not None and now + JWT_LEEWAY_SECONDS < float(nbf):
        raise AuthError("token not valid yet")
    return claims


def _finite_number(value: Any) -> bool:
    """An int or a finite float (1e999 reads as inf, NaN compares false with everything)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value)


# ------------------------------------------------------------------------------ policy
class AccessPolicy:
    """Tokens, JWT secret and allow-list from ``HttpConfig``; pure checks, no I/O."""

    def __init__(
        self,
        tokens: Iterable[str | tuple[str, str]] = (),
        jwt_secret: str | None = None,
        allow_ips: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        pairs = [t if isinstance(t, tuple) else (f"token #{i}", t) for i, t in enumerate(tokens, 1)]
        self._names = [name for name, _ in pairs]
        self._tokens = [token.encode("utf-8") for _, token in pairs]
        self._jwt_secret = jwt_secret
        self._networks = [ipaddress.ip_network(n, strict=False) for n in allow_ips]
        self._clock = clock

    @property
    def auth_required(self) -> bool:
        return bool(self._tokens) or self._jwt_secret is not None

    def ip_allowed(self, host: str | None) -> bool:
        if not self._networks:
            return True
        if not host:
            return False
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == net.version and ip in net for net in self._networks)

    def authenticate(self, authorization: str | None) -> str | None:
        """Who ``authorization`` (``Bearer <token or JWT>``) is: the token's name or ``jwt:<sub>`` (None: no
        auth configured); AuthError unless we accept it."""
        if not self.auth_required:
            return None
        if not authorization:
            raise AuthError("missing bearer token (send Authorization: Bearer <token>)")
        scheme, _, credential = authorization.partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise AuthError("use Authorization: Bearer <token>")
        given = credential.encode("utf-8")
        matched: str | None = None
        for name, token in zip(self._names, self._tokens):  # every token is compared: timing tells nothing
            if hmac.compare_digest(given, token) and matched is None:
                matched = name
        if matched is not None:
            return matched
        if self._jwt_secret is not None and credential.count(".") == 2:
            claims = verify_jwt_hs256(credential, self._jwt_secret, self._clock())
            sub = claims.get("sub")
            return f"jwt:{str(sub)[:64]}" if sub is not None else "jwt"
        raise AuthError("invalid token")


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def _host_name(host_header: str) -> str:
    host = host_header.strip()
    if host.startswith("["):  # [::1]:8080
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


# ------------------------------------------------------------------------------ middleware
class BodyTooLarge(Exception):
    pass


class Guard:
    """ASGI middleware applying ``AccessPolicy`` and the body-size limit (see the module doc)."""

    def __init__(self, app: ASGIApp, policy: AccessPolicy, max_body_bytes: int) -> None:
        self.app = app
        self.policy = policy
        self.max_body_bytes = max_body_bytes
        self.refusals = RateLimitedLog(_LOGGER)  # anyone who can connect can cause these: a line a minute per kind

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        client = scope.get("client")
        host = client[0] if client else None
        path = scope.get("path", "")
        if not self.policy.ip_allowed(host):
            self.refusals.warning(
                "403-ip", "http: refused %s %s from %s (not in http.allow_ips)", scope.get("method"), path, host
            )
            await _error(send, 403, "client", f"address {host} is not in http.allow_ips")
            return
        handout = path.startswith("/handout/")  # a media player on another host fetches these
        if not self.policy.auth_required and not handout and not is_loopback(_host_name(headers.get("host", ""))):
            await _error(
                send,
                403,
                "host",
                "without http.tokens the API answers only to a loopback Host (localhost, 127.0.0.1, [::1])",
            )
            return
        if not is_public(path):
            try:
                scope[USER_KEY] = self.policy.authenticate(headers.get("authorization"))
            except AuthError as exc:
                self.refusals.warning("401", "http: 401 %s %s from %s: %s", scope.get("method"), path, host, exc)
                await _error(
                    send,
                    401,
                    "authorization",
                    str(exc),
                    extra_headers=[(b"www-authenticate", b'Bearer realm="announcer"')],
                )
                return
        if scope.get("method") in ("POST", "PUT", "PATCH"):
            ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if ctype != "application/json":
                await _error(send, 415, "content-type", "send the body as application/json")
                return
            length = headers.get("content-length")
            if length is not None:
                if not length.isdigit():
                    await _error(send, 400, "content-length", "not a number")
                    return
                if int(length) > self.max_body_bytes:
                    await _error(send, 413, "body", f"{length} bytes is over the limit of {self.max_body_bytes} bytes")
                    return
            try:
                body = await self._read_body(receive)
            except BodyTooLarge:
                await _error(send, 413, "body", f"over the limit of {self.max_body_bytes} bytes")
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BodyTooLarge()
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _error(
    send: Send, status: int, field: str, error: str, extra_headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps(
        {"status": "error", "field": field, "error": error}, ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra_headers or [])})
    await send({"type": "http.response.body", "body": body})


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
    "connect-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class SecurityHeaders:
    """Adds a strict Content-Security-Policy and the usual hardening headers to every response."""

    HEADERS: ClassVar[list[tuple[bytes, bytes]]] = [
        (b"content-security-policy", CSP.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"cross-origin-resource-policy", b"same-origin"),
    ]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + self.HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)
