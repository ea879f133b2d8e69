"""The new speaker types' pure parts: G.711 against ``audioop``, RTP headers and SDP, config errors,
Snapcast group choice, handed-out URLs. The receivers and servers are in their own test files."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from announcer.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from announcer.config import ConfigError, parse_config
from announcer.http.handouts import Handouts
from announcer.sinks.rtp_codecs import CODECS, RtpState, parse_header, session_description
from announcer.sinks.snapcast_sink import choose_groups

pytestmark = pytest.mark.unit


def test_g711_is_bit_exact_with_audioop_on_every_input() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop  # the Sun/ITU reference, still in Python 3.11-3.12
    every = np.arange(-32768, 32768, dtype=np.int16)
    raw = every.astype("<i2").tobytes()
    assert ulaw_encode(every).tobytes() == audioop.lin2ulaw(raw, 2)
    assert alaw_encode(every).tobytes() == audioop.lin2alaw(raw, 2)
    codes = np.arange(256, dtype=np.uint8)
    assert ulaw_decode(codes).astype("<i2").tobytes() == audioop.ulaw2lin(codes.tobytes(), 2)
    assert alaw_decode(codes).astype("<i2").tobytes() == audioop.alaw2lin(codes.tobytes(), 2)


def test_rtp_talkspurts_keep_the_session_and_advance_over_the_idle_time() -> None:
    s = RtpState(payload_type=0, clock_rate=8000)
    s.start_talkspurt(100.0)
    first = [parse_header(s.packet(b"\xff" * 160, 160, marker=i == 0)) for i in range(3)]
    s.ended_at = 100.06
    s.start_talkspurt(101.06)  # one second later
    second = parse_header(s.packet(b"\xff" * 160, 160, marker=True))
    assert [h["marker"] for h in first] == [1, 0, 0] and second["marker"] == 1
    assert second["seq"] == (first[-1]["seq"] + 1) % 65536 and second["ssrc"] == first[0]["ssrc"]
    assert (second["timestamp"] - first[-1]["timestamp"]) % 2**32 == 160 + 8000
    assert {h["version"] for h in first} == {2} and second["payload_type"] == 0


def test_sdp_for_ipv4_multicast_ipv6_and_g722() -> None:
    v4 = session_description("hall", "239.1.1.10", 5004, CODECS["pcmu"], 8000, 0, 4, 20)
    assert "c=IN IP4 239.1.1.10/4\r\n" in v4 and "m=audio 5004 RTP/AVP 0\r\n" in v4 and "a=rtpmap:0 PCMU/8000" in v4
    v6 = session_description("hall", "ff15::1:10", 5006, CODECS["l16"], 24000, 97, 4, 20)
    assert "c=IN IP6 ff15::1:10\r\n" in v6 and "a=rtpmap:97 L16/24000/1" in v6
    g722 = session_description("hall", "192.168.1.50", 5004, CODECS["g722"], 16000, 9, 1, 20)
    assert "c=IN IP4 192.168.1.50\r\n" in g722 and "a=rtpmap:9 G722/8000" in g722


def errors_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, env=env or {})
    return info.value.errors


def test_speaker_config_errors_name_the_key_and_the_allowed_values() -> None:
    errs = "\n".join(
        errors_of("""\
speakers:
  a: {type: rtp, address: paging.local}
  b: {type: rtp, address: 239.1.1.10, codec: opus}
  c: {type: rtp, address: 239.1.1.10, codec: l16, sample_rate: 12345}
  d: {type: snapcast, groups: []}
  e: {type: homeassistant, entity_id: light.kitchen}
""")
    )
    assert "speakers.a.address" in errs and "is not an IP address" in errs
    assert "speakers.b.codec" in errs and "'pcmu', 'pcma', 'l16' or 'g722'" in errs
    assert "speakers.c.sample_rate" in errs and "16000" in errs
    assert "speakers.d.groups" in errs
    assert "speakers.e.entity_id" in errs


def test_a_homeassistant_speaker_needs_the_url_the_token_and_the_http_server() -> None:
    speaker = "speakers: {kitchen: {type: homeassistant, entity_id: media_player.kitchen}}\n"
    errs = errors_of(speaker)
    assert any(e.startswith("homeassistant.url: required by speakers kitchen") for e in errs)
    assert any(e.startswith("homeassistant.token: required") for e in errs)
    assert any(e.startswith("http.enabled: must be true") for e in errs)
    errs = errors_of(
        speaker + "homeassistant: {url: 'http://ha:8123', token: '${T}'}\n"
        "http: {enabled: true, bind: 0.0.0.0, tokens: [aaaaaaaaaaaaaaaaaaaa]}\n",
        env={"T": "x"},
    )
    assert len(errs) == 1 and errs[0].startswith("http.public_url: required")
    cfg = parse_config(
        speaker + "homeassistant: {url: 'http://ha:8123', token: '${T}'}\nhttp: {enabled: true, port: 8099}\n",
        env={"T": "secret"},
    )
    assert cfg.homeassistant.token == "secret" and "secret" not in repr(cfg.homeassistant)
    assert cfg.http.base_url == "http://127.0.0.1:8099"


def test_snapcast_groups_by_id_name_or_client() -> None:
    groups = [
        {"id": "g1", "name": "downstairs", "clients": [{"id": "kitchen", "config": {"name": ""}, "host": {}}]},
        {"id": "g2", "name": "", "clients": [{"id": "c2", "config": {"name": "bedroom"}, "host": {}}]},
    ]
    assert choose_groups(groups, ("all",)) == (groups, [])
    assert choose_groups(groups, ("downstairs", "bedroom")) == (groups, [])
    assert choose_groups(groups, ("kitchen", "attic")) == ([groups[0]], ["attic"])


def test_handed_out_audio_is_gone_once_revoked_or_expired() -> None:
    now = [0.0]
    h = Handouts("http://192.168.1.5:8080/", clock=lambda: now[0])
    url, revoke = h.offer(b"RIFF...", "audio/wav", 60)
    name = url.rsplit("/", 1)[1]
    assert url.startswith("http://192.168.1.5:8080/handout/") and name.endswith(".wav") and len(name) == 47
    assert h.get(name) == (b"RIFF...", "audio/wav")
    revoke()
    assert h.get(name) is None
    url2, _ = h.offer(b"x", "audio/wav", 60)
    now[0] = 61
    assert h.get(url2.rsplit("/", 1)[1]) is None and len(h) == 0
