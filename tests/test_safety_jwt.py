"""Issue 15, finding 11: JWT edges. A token whose ``exp``/``nbf`` is not a finite number never
expires (or is never "not yet valid"), and a signature with junk appended still verified because
base64url was decoded leniently. Both are refused now."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from announcer.http.security import AccessPolicy, AuthError, sign_jwt_hs256, verify_jwt_hs256

pytestmark = pytest.mark.unit  # the fast lane (make check)

SECRET = "jwt-secret-0123456789abcdef-0123456789"
NOW = 1_700_000_000.0


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def raw_token(payload_json: str, secret: str = SECRET) -> str:
    """A correctly signed token whose payload is exactly ``payload_json`` (e.g. a literal 1e999)."""
    head = b64(b'{"alg":"HS256","typ":"JWT"}')
    body = b64(payload_json.encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


@pytest.mark.parametrize(
    "payload",
    [
        '{"exp": 1e999}',  # json reads it as inf: never expires
        '{"exp": -1e999}',
        '{"exp": NaN}',  # NaN compares false with everything: never "expired"
        '{"exp": Infinity}',
        '{"exp": "9999999999"}',
        '{"exp": 1700000100, "nbf": NaN}',
        '{"exp": 1700000100, "nbf": -1e999}',
        '{"exp": 1700000100, "nbf": "0"}',
        '{"exp": 1700000100, "nbf": true}',
    ],
)
def test_non_finite_or_non_numeric_time_claims_are_refused(payload: str) -> None:
    with pytest.raises(AuthError):
        verify_jwt_hs256(raw_token(payload), SECRET, now=NOW)


def test_a_finite_token_still_verifies() -> None:
    token = raw_token('{"exp": 1700000100, "nbf": 1699999000}')
    assert verify_jwt_hs256(token, SECRET, now=NOW)["exp"] == 1700000100


@pytest.mark.parametrize("junk", ["!!", "==", "=", " ", "\n", "A", "*"])
def test_a_signature_with_junk_appended_is_refused(junk: str) -> None:
    token = sign_jwt_hs256({"sub": "ha", "exp": NOW + 60}, SECRET)
    assert verify_jwt_hs256(token, SECRET, now=NOW)["sub"] == "ha"
    with pytest.raises(AuthError):
        verify_jwt_hs256(token + junk, SECRET, now=NOW)
    if junk.strip():  # (an HTTP header value's surrounding whitespace is not part of it)
        policy = AccessPolicy(jwt_secret=SECRET, clock=lambda: NOW)
        with pytest.raises(AuthError):
            policy.authenticate(f"Bearer {token}{junk}")


def test_a_non_canonical_signature_encoding_is_refused() -> None:
    # 32 bytes = 43 base64url characters whose last one carries 4 unused bits: flipping them
    # decodes to the same bytes, and a lenient decoder would accept the altered token
    token = sign_jwt_hs256({"exp": NOW + 60}, SECRET)
    head, body, sig = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(sig[-1])
    other = alphabet[last ^ 0b0001]
    altered = f"{head}.{body}.{sig[:-1]}{other}"
    assert base64.urlsafe_b64decode(sig + "=") == base64.urlsafe_b64decode(sig[:-1] + other + "=")
    with pytest.raises(AuthError):
        verify_jwt_hs256(altered, SECRET, now=NOW)


def test_claims_with_junk_in_the_payload_part_are_refused() -> None:
    token = sign_jwt_hs256({"exp": NOW + 60}, SECRET)
    head, body, sig = token.split(".")
    with pytest.raises(AuthError):
        verify_jwt_hs256(f"{head}.{body}!.{sig}", SECRET, now=NOW)
    assert json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["exp"] == NOW + 60
