"""Command line: argument parsing and sub-commands only (the work lives in other modules).

Imports are lazy: ``announcer --help`` and ``--version`` load nothing but argparse, and each
command imports what it uses (the config models, numpy and the text front end cost a few
tenths of a second). ``console`` (the ``announcer`` script) ends a one-shot command with
``os._exit`` once its output is flushed: tearing down the interpreter (LiteRT, the pinyin
dictionaries) would otherwise add ~0.2 s to every ``say``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from ..config import Config

_LOGGER = logging.getLogger(__name__)

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # usage errors exit 2 with one clear line
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


class _Version(argparse.Action):
    """``--version``: the installed distribution's version, looked up only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kw: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kw)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> NoReturn:
        from .. import __version__

        print(f"announcer {__version__}")
        parser.exit()


def _announcement_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", nargs="?", help="what to say (use - to read standard input); or --template / --clip")
    p.add_argument("--template", help="a configured template (templates:) instead of text")
    p.add_argument("--var", action="append", dest="vars", metavar="NAME=VALUE", help="a template variable (repeatable)")
    p.add_argument("--clip", help="a configured recorded clip (clips:) instead of text")
    p.add_argument("--emotion", help="neutral happy sad angry fearful surprised (or an alias)")
    p.add_argument("--intensity", type=float, help="0 .. 2 (default 1)")
    p.add_argument("--speed", type=float, help="0.5 .. 2.0 (2.0 = twice as fast)")
    p.add_argument("--volume", type=float, help="0 .. 1")
    p.add_argument("--priority", help="low normal high emergency")
    p.add_argument("--to", action="append", dest="targets", metavar="TARGET", help="speaker or zone (repeatable)")
    p.add_argument("--engine", help="a configured engine name")
    p.add_argument("--voice", help="a voice of the engine")
    p.add_argument("--lang", help="the text's language (with `languages` in the config it picks the engine)")
    p.add_argument(
        "--translation",
        action="append",
        metavar="LANG=TEXT",
        help="the announcement in another language, spoken after the text by that language's engine (repeatable)",
    )
    p.add_argument("--chime", help="chime name for this announcement")
    p.add_argument("--no-chime", action="store_true", help="no chime")
    p.add_argument("--repeat", type=int, help="1 .. 10")
    p.add_argument("--id", help="correlation id")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="announcer", description="Self-hosted voice announcements over MQTT.")
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c",
        "--config",
        help="config file (default: $ANNOUNCER_CONFIG, ./announcer.yaml, /etc/announcer/announcer.yaml)",
    )
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser_class: type[argparse.ArgumentParser] = _Parser  # so the sub-commands take the plain ``common`` as parent
    sub = parser.add_subparsers(dest="command", required=True, parser_class=parser_class)

    sub.add_parser("run", parents=[common], help="run the daemon")

    say = sub.add_parser("say", parents=[common], help="synthesize locally (no broker)")
    _announcement_options(say)
    say.add_argument("--out", type=Path, help="write a PCM-16 WAV here and play nothing")

    sub.add_parser("check-config", parents=[common], help="validate the config")

    norm = sub.add_parser("normalize", parents=[common], help="show the text front end")
    norm.add_argument("text")
    norm.add_argument("--json", action="store_true", help="one JSON object")

    sub.add_parser("engines", parents=[common], help="list configured engines")
    sub.add_parser("devices", parents=[common], help="list audio output devices")
    speakers = sub.add_parser("speakers", parents=[common], help="list speakers with their type and reachability")
    speakers.add_argument("--sdp", metavar="NAME", help="print the SDP of rtp speaker NAME instead")

    voices = sub.add_parser(
        "voices", parents=[common], help="list the installable voices; `voices install NAME...` installs them"
    )
    voices_sub = voices.add_subparsers(dest="voices_command", parser_class=parser_class)
    install = voices_sub.add_parser("install", help="install voices (hash-checked), with what they need")
    install.add_argument("names", nargs="+", metavar="NAME", help="a voice, a group (kokoro, kokoro-zh) or a pattern")
    install.add_argument(
        "--from", dest="source_dir", type=Path, metavar="DIR", help="from the files in DIR, no registry"
    )

    send = sub.add_parser("send", parents=[common], help="publish an announcement to the broker")
    _announcement_options(send)
    send.add_argument("--wait", action="store_true", help="wait for the terminal event; exit 0 only if finished")
    send.add_argument("--timeout", type=float, default=120.0, help="seconds to wait (default 120)")
    where = send.add_mutually_exclusive_group()
    where.add_argument("--site", action="append", dest="sites", metavar="SITE", help="a fleet's site (repeatable)")
    where.add_argument("--all-sites", action="store_true", help="every site of the fleet")

    fleet = sub.add_parser("fleet", parents=[common], help="list the fleet's sites (at the central broker)")
    fleet.add_argument("--json", action="store_true", help="one JSON object")
    fleet.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the broker (default 10)")

    sched = sub.add_parser("schedules", parents=[common], help="list the schedules' next firings")
    sched.add_argument("--count", type=int, default=1, help="firings per schedule (default 1)")

    hist = sub.add_parser("history", parents=[common], help="what was announced (from the spool's history)")
    hist.add_argument("--since", help="ISO date or time (site timezone unless it has an offset), inclusive")
    hist.add_argument("--until", help="ISO date or time, exclusive")
    hist.add_argument("--target", help="a speaker or zone")
    hist.add_argument("--source", help="mqtt, http, schedule, hermes or cli")
    hist.add_argument("--state", help="finished, failed, rejected, mixed, ... (the announcement's state)")
    hist.add_argument(
        "--limit", type=int, help="at most this many announcements (default 1000; with --csv or --json 100000)"
    )
    hist.add_argument("--oldest-first", action="store_true", help="in time order (default: newest first)")
    fmt = hist.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV: one row per announcement and speaker")
    fmt.add_argument("--json", action="store_true", help="JSON: a list of records with their events")
    return parser


def _setup_logging(verbose: bool, cfg: Config | None = None) -> None:
    """The daemon logs at the configured level; one-shot commands only warn unless -v."""
    level = logging.DEBUG if verbose else getattr(logging, cfg.logging.level if cfg else "WARNING")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _load(args: argparse.Namespace, required: bool) -> Config:
    from ..config import find_config_path, load_config

    path = find_config_path(args.config)
    return load_config(path, required=required)


def _raw_fields(args: argparse.Namespace) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    if args.text is not None:
        raw["text"] = sys.stdin.read() if args.text == "-" else args.text
    if args.vars:
        from ..core.errors import InputError

        raw["vars"] = {}
        for item in args.vars:
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise InputError("vars", f"--var {item!r}: write NAME=VALUE (e.g. --var ward=3)")
            raw["vars"][name] = value
    for name in (
        "template",
        "clip",
        "emotion",
        "intensity",
        "speed",
        "volume",
        "priority",
        "engine",
        "voice",
        "lang",
        "repeat",
        "id",
    ):
        value = getattr(args, name, None)
        if value is not None:
            raw[name] = value
    if args.targets:
        raw["targets"] = args.targets
    if args.translation:
        translations: dict[str, str] = {}
        for item in args.translation:
            lang, sep, said = item.partition("=")
            if not sep or not lang.strip():
                raise InputError("translations", f"--translation takes LANG=TEXT, got {item[:40]!r}")
            translations[lang.strip()] = said
        raw["translations"] = translations
    if args.no_chime:
        raw["chime"] = False
    elif args.chime:
        raw["chime"] = args.chime
    return raw


def cmd_check_config(args: argparse.Namespace) -> int:
    from ..config import find_config_path, load_config

    path = find_config_path(args.config)
    cfg = load_config(path, required=True)
    print(
        f"{path}: ok — {len(cfg.engines)} engine(s) ({', '.join(cfg.engines)}), "
        f"{len(cfg.speakers)} speaker(s), {len(cfg.zones)} zone(s), broker {cfg.mqtt.host}:{cfg.mqtt.port}, "
        f"prefix {cfg.mqtt.topic_prefix!r}"
    )
    return EXIT_OK


def cmd_normalize(args: argparse.Namespace) -> int:
    from ..text import frontend

    result = frontend(args.text)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(f"normalized: {result['normalized']}")
        for clause, phones in zip(result["clauses"], result["phonemes"]):
            print(f"  {clause}  |  {' '.join(phones)}")
    return EXIT_OK


def cmd_engines(args: argparse.Namespace) -> int:
    from ..core.errors import EngineUnavailable
    from ..engines.base import create_engine

    cfg = _load(args, required=False)
    for name, ecfg in cfg.engines.items():
        eng = create_engine(name, ecfg, cfg.cache.directory)
        d = eng.describe()
        default = " (default)" if name == cfg.default_engine else ""
        try:
            eng.load()
            state = "ready"
        except EngineUnavailable as exc:
            state = f"unavailable: {exc}"
        print(
            f"{name}{default}: type={d['type']} sample_rate={d['sample_rate']} "
            f"languages={','.join(d['languages'])} voices={','.join(d['voices'])} "
            f"emotions={','.join(d['emotions'])} emotion_controls={','.join(d['emotion_controls']) or 'none'} "
            f"[{state}]"
        )
    return EXIT_OK


def cmd_devices(args: argparse.Namespace) -> int:
    from ..sinks.sounddevice_sink import list_output_devices

    devices = list_output_devices()
    if not devices:
        print("no audio output devices found (is libportaudio2 installed, and is there a sound card or ALSA device?)")
    for d in devices:
        mark = "*" if d["default"] else " "
        print(f"{mark}{d['index']:3d}  {d['name']}  ({d['channels']} ch, {d['default_samplerate']:.0f} Hz)")
    return EXIT_OK


def cmd_speakers(args: argparse.Namespace) -> int:
    from .speakers import print_sdp, print_speakers

    cfg = _load(args, required=False)
    return print_sdp(cfg, args.sdp) if args.sdp else print_speakers(cfg)


def cmd_say(args: argparse.Namespace) -> int:
    from .say import say

    cfg = _load(args, required=False)
    return say(cfg, _raw_fields(args), out=args.out)


def cmd_send(args: argparse.Namespace) -> int:
    from ..intake.parse import build, check_schema
    from ..mqtt.send import send

    cfg = _load(args, required=True)
    raw = _raw_fields(args)
    if args.sites or args.all_sites:
        from ..mqtt.fleet_send import fleet_send

        check_schema(raw)  # the sites check their own targets, engines and chimes
        targets = raw.pop("targets", None)
        sites = None if args.all_sites else list(dict.fromkeys(args.sites))
        return fleet_send(
            cfg, raw, sites, targets, wait=args.wait, timeout=args.timeout, out=sys.stdout, err=sys.stderr
        )
    build(raw, cfg)  # validate locally first: the user learns about a typo before anything is published
    targets = raw.pop("targets", None)
    code, event = send(cfg, raw, targets, wait=args.wait, timeout=args.timeout)
    if event is not None:
        print(json.dumps(event, ensure_ascii=False))
    return code


def cmd_schedules(args: argparse.Namespace) -> int:
    from .reports import print_schedules

    return print_schedules(_load(args, required=True), max(1, args.count))


def cmd_history(args: argparse.Namespace) -> int:
    from .reports import print_history

    return print_history(_load(args, required=True), args)


def cmd_fleet(args: argparse.Namespace) -> int:
    from ..mqtt.fleet import fleet_command

    cfg = _load(args, required=True)
    return fleet_command(cfg, args.json, args.timeout, sys.stdout, sys.stderr)


def cmd_voices(args: argparse.Namespace) -> int:
    from ..voices.install import InstallError, install, listing

    if args.voices_command != "install":
        print("\n".join(listing()))
        return EXIT_OK
    try:
        install(args.names, source_dir=args.source_dir)
    except InstallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from ..config import find_config_path
    from .run import run

    cfg = _load(args, required=True)
    _setup_logging(args.verbose, cfg)
    return run(cfg, config_path=find_config_path(args.config))


COMMANDS = {
    "run": cmd_run,
    "say": cmd_say,
    "check-config": cmd_check_config,
    "normalize": cmd_normalize,
    "engines": cmd_engines,
    "devices": cmd_devices,
    "speakers": cmd_speakers,
    "send": cmd_send,
    "schedules": cmd_schedules,
    "history": cmd_history,
    "fleet": cmd_fleet,
    "voices": cmd_voices,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "run":
        _setup_logging(args.verbose)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        code = _expected_error(args.command, exc)
        if code is None:
            raise
        return code


_NEEDS_CONFIG = ("check-config", "run", "send", "schedules", "history", "fleet")


def _expected_error(command: str, exc: Exception) -> int | None:
    """The exit code of an expected error, printed as one line each; None for a bug."""
    from ..core.errors import EngineUnavailable, InputError

    if "announcer.config" in sys.modules:  # a ConfigError needs the config, which not every command loads
        from ..config.errors import ConfigError

        if isinstance(exc, ConfigError):
            for line in exc.errors:
                print(line, file=sys.stderr)
            return EXIT_FAIL if command in _NEEDS_CONFIG else EXIT_USAGE
    if isinstance(exc, InputError):
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(exc, EngineUnavailable):
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAIL
    return None


def console() -> NoReturn:
    """The ``announcer`` script: ``main``, then a fast exit for one-shot commands (see the module doc)."""
    try:
        code = main()
    except BrokenPipeError:  # `announcer voices | head`
        code = EXIT_OK
    if sys.argv[1:2] == ["run"]:
        sys.exit(code)  # the daemon has stopped cleanly; a normal exit costs nothing next to that
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    console()
