"""The checks across sections of a config: each returns its problems, one ``key.path: message`` each.

A check reads a validated ``Config`` (every section is already well-formed) and looks at
how the sections refer to each other: names of engines, speakers, zones, chimes, clips and
templates. ``clips`` also decodes every clip file (once; ``announcer.audio.clips`` keeps it),
so a missing or undecodable file is a config error at load, never a failure at play time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..audio.chimes import BUILTIN_CHIMES
from ..audio.clips import ClipError, load_clip
from ..core.errors import InputError

if TYPE_CHECKING:
    from ..schedule.model import ScheduleConfig
    from .models import Config
    from .templates import TemplateConfig


def mqtt_password(cfg: Config) -> list[str]:
    if cfg.mqtt.password_file is None:
        return []
    errors = []
    if cfg.mqtt.password is not None:
        errors.append("mqtt.password_file: set either mqtt.password or mqtt.password_file, not both")
    try:
        if not cfg.mqtt.read_password():
            errors.append(f"mqtt.password_file: {cfg.mqtt.password_file} is empty")
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or type(exc).__name__
        errors.append(f"mqtt.password_file: cannot read {cfg.mqtt.password_file}: {why}")
    return errors


def engines(cfg: Config) -> list[str]:
    errors = []
    if not cfg.engines:
        errors.append("engines: at least one engine is needed")
    if cfg.defaults.engine is not None and cfg.defaults.engine not in cfg.engines:
        errors.append(f"defaults.engine: {cfg.defaults.engine!r} is not an engine (have: {', '.join(cfg.engines)})")
    for lang, engine in cfg.languages.items():
        if engine not in cfg.engines:
            errors.append(f"languages.{lang}: {engine!r} is not an engine (have: {', '.join(cfg.engines)})")
    for name, ecfg in cfg.engines.items():  # supervised engines (sambert): who speaks while they are down
        fallback = getattr(ecfg, "fallback", None)
        if fallback is not None and (fallback == name or fallback not in cfg.engines):
            others = ", ".join(n for n in cfg.engines if n != name) or "none"
            errors.append(f"engines.{name}.fallback: {fallback!r} is not another engine (have: {others})")
    return errors


def zones(cfg: Config) -> list[str]:
    errors = [f"zones.{name}: a speaker already has this name" for name in sorted(set(cfg.speakers) & set(cfg.zones))]
    for zone, members in cfg.zones.items():
        if not members:
            errors.append(f"zones.{zone}: a zone needs at least one speaker")
        for i, m in enumerate(members):
            if m not in cfg.speakers:
                errors.append(f"zones.{zone}.{i}: {m!r} is not a speaker (have: {', '.join(cfg.speakers)})")
    for zone in cfg.zone_names:
        if zone not in cfg.zones:
            errors.append(f"zone_names.{zone}: not a zone (have: {', '.join(cfg.zones) or 'none'})")
    return errors


def targets(cfg: Config) -> list[str]:
    known = set(cfg.speakers) | set(cfg.zones)
    errors = [
        f"defaults.targets.{i}: {t!r} is not a speaker or zone"
        for i, t in enumerate(cfg.defaults.targets)
        if t not in known
    ]
    errors += [
        f"hermes.sites.{site}: {t!r} is not a speaker or zone" for site, t in cfg.hermes.sites.items() if t not in known
    ]
    for qi, q in enumerate(cfg.quiet_hours):
        errors += [
            f"quiet_hours.{qi}.speakers.{si}: {s!r} is not a speaker"
            for si, s in enumerate(q.speakers)
            if s not in cfg.speakers
        ]
    return errors


def chimes(cfg: Config) -> list[str]:
    names = set(cfg.chimes) | set(BUILTIN_CHIMES)
    named = [("defaults.chime", cfg.defaults.chime), ("audio.end_chime", cfg.audio.end_chime)]
    named += [(f"audio.priority_chimes.{k}", v) for k, v in cfg.audio.priority_chimes.items()]
    return [
        f"{key}: {name!r} is not a chime (have: {', '.join(sorted(names))})"
        for key, name in named
        if isinstance(name, str) and name not in names
    ]


def homeassistant_speakers(cfg: Config) -> list[str]:
    """A ``homeassistant`` speaker needs Home Assistant's URL and token, and the HTTP server its player fetches from."""
    names = [n for n, s in cfg.speakers.items() if s.type == "homeassistant"]
    if not names:
        return []
    which = f"speakers {', '.join(names)} (type homeassistant)"
    errors = []
    if cfg.homeassistant.url is None:
        errors.append(
            f"homeassistant.url: required by {which}: Home Assistant's address, e.g. http://homeassistant.local:8123"
        )
    if cfg.homeassistant.token is None:
        errors.append(f"homeassistant.token: required by {which}: a long-lived access token, e.g. token: ${{HA_TOKEN}}")
    if not cfg.http.enabled:
        errors.append(
            f"http.enabled: must be true for {which}: media players fetch the audio from announcer's HTTP server"
        )
    elif cfg.http.base_url is None:
        errors.append(
            f"http.public_url: required by {which} when http.bind is {cfg.http.bind}: the URL media players "
            "reach this server at, e.g. http://192.168.1.5:8080"
        )
    return errors


def clips(cfg: Config) -> list[str]:
    errors = []
    for name, path in cfg.clips.items():
        try:
            load_clip(path)
        except ClipError as exc:
            errors.append(f"clips.{name}: {exc}")
    return errors


def _refs(cfg: Config, key: str, item: TemplateConfig | ScheduleConfig) -> list[str]:
    """What a template or schedule names that does not exist: clips, targets, a chime, an engine, a
    language of its translations."""
    errors = []
    known = set(cfg.speakers) | set(cfg.zones)
    for field in ("before", "after", "clip"):
        name = getattr(item, field, None)
        if name is not None and name not in cfg.clips:
            errors.append(f"{key}.{field}: {name!r} is not a clip (have: {', '.join(cfg.clips) or 'none'})")
    for i, t in enumerate(getattr(item, "targets", None) or ()):
        if t not in known:
            errors.append(f"{key}.targets.{i}: {t!r} is not a speaker or zone")
    chime = getattr(item, "chime", None)
    if isinstance(chime, str) and chime not in set(cfg.chimes) | set(BUILTIN_CHIMES):
        errors.append(
            f"{key}.chime: {chime!r} is not a chime (have: {', '.join(sorted({*cfg.chimes, *BUILTIN_CHIMES}))})"
        )
    engine = getattr(item, "engine", None)
    if engine is not None and engine not in cfg.engines:
        errors.append(f"{key}.engine: {engine!r} is not an engine (have: {', '.join(cfg.engines)})")
    for lang in getattr(item, "translations", None) or {}:
        if lang not in cfg.languages:
            have = ", ".join(cfg.languages) or "none"
            errors.append(f"{key}.translations.{lang}: no engine for this language (languages: {have})")
    return errors


def templates(cfg: Config) -> list[str]:
    return [line for name, tpl in cfg.templates.items() for line in _refs(cfg, f"templates.{name}", tpl)]


def schedules(cfg: Config) -> list[str]:
    errors = []
    for name, sched in cfg.schedules.items():
        key = f"schedules.{name}"
        errors += _refs(cfg, key, sched)
        if sched.template is None:
            continue
        tpl = cfg.templates.get(sched.template)
        if tpl is None:
            have = ", ".join(cfg.templates) or "none"
            errors.append(f"{key}.template: {sched.template!r} is not a template (have: {have})")
            continue
        try:
            tpl.expand(sched.template, sched.vars)
        except InputError as exc:
            errors.append(f"{key}.{exc.field}: {exc.message}")
    return errors


_MEMBER = re.compile(r"[A-Za-z0-9_-]{1,64}")


def fleet(cfg: Config) -> list[str]:
    """A site's own prefix must not sit where the fleet's say/stop topics are."""
    if cfg.site is None:
        return []
    own, shared = cfg.mqtt.topic_prefix.rstrip("/"), cfg.fleet.prefix.rstrip("/")
    if own == shared or any(own == f"{shared}/{k}" or own.startswith(f"{shared}/{k}/") for k in ("say", "stop")):
        return [
            f"mqtt.topic_prefix: {own!r} collides with the fleet topics under fleet.prefix {shared!r} "
            f"(use e.g. {shared}/sites/{cfg.site.name})"
        ]
    return []


def pair(cfg: Config) -> list[str]:
    """A pair member's client id names it in topics; it needs a session the broker keeps."""
    if cfg.pair is None:
        return []
    errors = []
    member = cfg.mqtt.client_id
    if not _MEMBER.fullmatch(member):
        errors.append(
            f"mqtt.client_id: {member!r} cannot name a pair member in topics (allowed: letters, digits, _ and -)"
        )
    if cfg.pair.peer == member:
        errors.append(f"pair.peer: must be the other member's mqtt.client_id, not this one's ({member!r})")
    if cfg.mqtt.session_expiry == 0:
        errors.append(
            "mqtt.session_expiry: a pair member needs a session the broker keeps (> 0): "
            "it learns from it what its peer played while it was away"
        )
    return errors


CROSS_CHECKS: tuple[Callable[[Config], list[str]], ...] = (
    mqtt_password,
    engines,
    zones,
    targets,
    chimes,
    homeassistant_speakers,
    clips,
    templates,
    schedules,
    fleet,
    pair,
)
