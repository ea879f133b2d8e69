"""Config loading: every mistake reported at once with its key path and line; env substitution."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from announcer.config import ConfigError, load_config, parse_config

pytestmark = pytest.mark.unit  # the fast lane (make check)

ROOT = Path(__file__).resolve().parent.parent


def errors_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, env=env or {})
    return info.value.errors


def test_example_and_demo_configs_are_valid() -> None:
    example = (ROOT / "config" / "announcer.example.yaml").read_text()
    cfg = parse_config(
        example,
        base_dir=ROOT / "config",  # where its clip (clips/bell.flac) is, as when loaded from the file
        env={"MQTT_PASSWORD": "s3cret", "ANNOUNCER_HTTP_TOKEN": "t" * 20, "HA_TOKEN": "ha"},
    )
    assert set(cfg.schedules) == {"shift-bell", "visiting"} and cfg.templates["code_blue"].repeat == 3
    assert cfg.http.token_pairs() == [("token #1", "t" * 20)]
    assert cfg.mqtt.password == "s3cret"
    assert set(cfg.engines) == {"kokoro-zh", "kokoro-en"} and cfg.default_engine == "kokoro-zh"
    assert cfg.languages == {"zh": "kokoro-zh", "en": "kokoro-en"}
    assert cfg.expand_targets(["ward-3", "lobby", "bus"]) == ("lobby", "archive", "bus")
    demo = parse_config((ROOT / "config" / "demo.yaml").read_text(), env={"DEMO_MQTT_PORT": "1884", "DEMO_DIR": "/x"})
    assert demo.mqtt.port == 1884 and str(demo.speakers["wav"].directory) == "/x/wav"


def test_the_readme_recipes_are_valid_configs(tmp_path: Path) -> None:
    """The three site recipes of the README (factory, hospital, daily reminder) load as they are."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    recipes = readme.split("### Three site recipes", 1)[1].split("\n## ", 1)[0]
    blocks = [b.split("```", 1)[0] for b in recipes.split("```yaml\n")[1:]]
    blocks = [b for b in blocks if b.startswith("timezone:")]  # the configs (not the Home Assistant action)
    assert len(blocks) == 3
    tone = tmp_path / "code-tone.wav"
    tone.write_bytes((ROOT / "config" / "clips" / "bell.flac").read_bytes())  # soundfile reads by content
    env = {"NURSE_STATION_3_TOKEN": "n" * 24}
    factory, hospital, reminder = (
        parse_config(b.replace("/etc/announcer/clips/bell.flac", str(ROOT / "config/clips/bell.flac"))
                     .replace("/etc/announcer/clips/code-tone.wav", str(tone)), env=env)
        for b in blocks
    )  # fmt: skip
    assert set(factory.schedules) == {"shift-change", "break"}
    assert factory.schedules["break"].holidays == factory.schedules["shift-change"].holidays != ()
    assert hospital.templates["code_blue"].repeat == 3 and hospital.http.token_pairs()[0][0] == "nurse-station-3"
    assert reminder.schedules["morning-safety"].play_within == 600


def test_empty_file_gives_working_defaults() -> None:
    cfg = parse_config("")
    assert cfg.engines["zh"].type == "embedded-zh"
    assert cfg.speakers["default"].type == "sounddevice"
    assert cfg.default_targets == ("default",)
    assert cfg.mqtt.topic_prefix == "announcer" and cfg.limits.max_text_chars == 2000


def test_every_error_reported_at_once_with_paths_and_lines() -> None:
    errs = errors_of("""\
mqtt:
  port: 70000
speakers:
  a: {type: file, directory: /tmp/x}
  b: {type: nope}
  c: {type: file, directorx: 1}
defaults: {emotion: weird, speed: 5}
foo: 1
""")
    joined = "\n".join(errs)
    assert "mqtt.port:" in joined and "(line 2)" in joined
    assert any(e.startswith("speakers.b:") and "sounddevice" in e and "(line 5)" in e for e in errs)
    assert any(e.startswith("speakers.c.directorx: unknown key") for e in errs)
    assert any(e.startswith("speakers.c.directory:") for e in errs)
    assert any(e.startswith("defaults.emotion:") and "neutral, happy" in e for e in errs)
    assert any(e.startswith("defaults.speed:") for e in errs)
    assert any(e.startswith("foo: unknown key") and "(line 8)" in e for e in errs)
    assert len(errs) == 7


def test_cross_references_are_checked() -> None:
    errs = errors_of("""\
speakers:
  a: {type: file, directory: /tmp/x}
zones:
  z: [a, ghost]
  a: [a]
defaults: {engine: nope, targets: [nowhere]}
hermes: {sites: {kitchen: ghost}}
""")
    joined = "\n".join(errs)
    for expected in (
        "zones.z.1: 'ghost' is not a speaker",
        "zones.a: a speaker already has this name",
        "defaults.engine: 'nope' is not an engine",
        "defaults.targets.0: 'nowhere'",
        "hermes.sites.kitchen: 'ghost'",
    ):
        assert expected in joined


def test_env_substitution_and_unset_variable() -> None:
    cfg = parse_config("mqtt: {host: '${BROKER}', password: 'p-${PW}'}", env={"BROKER": "mq.lan", "PW": "x"})
    assert cfg.mqtt.host == "mq.lan" and cfg.mqtt.password == "p-x"
    errs = errors_of("mqtt:\n  password: ${NOT_SET}\n")
    assert errs == ["mqtt.password: environment variable NOT_SET is not set (line 2)"]


def test_names_must_be_slugs_and_yaml_errors_are_reported() -> None:
    errs = errors_of("speakers:\n  大厅: {type: file, directory: /tmp/x}\n")
    assert any(e.startswith("speakers.大厅") for e in errs)
    errs = errors_of("mqtt: [unclosed\n")
    assert errs[0].startswith("<yaml>:") and "line" in errs[0]
    assert errors_of("- a\n- b\n")[0].startswith("<root>: the config file must be a mapping")


def test_config_is_frozen(tmp_path: Path) -> None:
    p = tmp_path / "a.yaml"
    p.write_text("mqtt: {host: h}\n")
    cfg = load_config(p)
    with pytest.raises(ValidationError):  # frozen
        cfg.mqtt.host = "other"  # type: ignore[misc]
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "missing.yaml")
    assert "cannot read" in info.value.errors[0]


def test_fleet_examples_are_valid() -> None:
    site = parse_config((ROOT / "config" / "fleet-site.example.yaml").read_text())
    assert site.site is not None and site.site.name == "b3" and site.pair is not None and site.pair.peer == "b3-b"
    assert site.mqtt.topic_prefix == "announcer-fleet/sites/b3" and site.mqtt.client_id == "b3-a"
    console = parse_config((ROOT / "config" / "fleet-console.example.yaml").read_text(), env={"MQTT_PASSWORD": "x"})
    assert console.fleet.prefix == "announcer-fleet" and console.site is None


def test_site_fleet_and_pair() -> None:
    cfg = parse_config(
        "site: {name: b3, display: 三号楼}\nmqtt: {topic_prefix: announcer-fleet/sites/b3, client_id: b3-a}\n"
        "pair: {peer: b3-b, role: primary, peer_timeout: 5}\n"
    )
    assert cfg.site is not None and (cfg.site.name, cfg.site.display) == ("b3", "三号楼")
    assert cfg.fleet.prefix == "announcer-fleet"
    assert cfg.pair is not None and (cfg.pair.peer, cfg.pair.role, cfg.pair.peer_timeout) == ("b3-b", "primary", 5)
    assert parse_config("").site is None and parse_config("").pair is None
    errs = errors_of("site: {name: 三号楼}\npair: {peer: 'b 3', role: boss, peer_timeout: 0}\nfleet: {prefix: 'a/#'}\n")
    for key in ("site.name:", "pair.peer:", "pair.role:", "pair.peer_timeout:", "fleet.prefix:"):
        assert any(e.startswith(key) for e in errs), (key, errs)


def test_fleet_and_pair_cross_checks() -> None:
    errs = errors_of(
        "site: {name: b3}\nmqtt: {topic_prefix: announcer-fleet, client_id: 'b3 a', session_expiry: 0}\n"
        "pair: {peer: 'b3-b'}\n"
    )
    joined = "\n".join(errs)
    assert "mqtt.topic_prefix: 'announcer-fleet' collides with the fleet topics" in joined
    assert "use e.g. announcer-fleet/sites/b3" in joined
    assert "mqtt.client_id: 'b3 a' cannot name a pair member in topics" in joined
    assert "mqtt.session_expiry: a pair member needs a session the broker keeps" in joined
    errs = errors_of("mqtt: {client_id: b3-a}\npair: {peer: b3-a}\nsite: {name: b3}\nfleet: {prefix: x}\n")
    assert errs == ["pair.peer: must be the other member's mqtt.client_id, not this one's ('b3-a') (line 2)"]
    errs = errors_of("site: {name: b3}\nmqtt: {topic_prefix: announcer-fleet/say/b3}\n")
    assert errs[0].startswith("mqtt.topic_prefix:")
