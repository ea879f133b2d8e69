"""Command line: argument parsing and sub-commands only (the work lives in other modules)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from .. import __version__
from ..config import Config, ConfigError, find_config_path, load_config
from ..core.errors import EngineUnavailable, InputError

_LOGGER = logging.getLogger(__name__)

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # usage errors exit 2 with one clear line
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _announcement_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", help="what to say (use - to read standard input)")
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
    parser.add_argument("--version", action="version", version=f"announcer {__version__}")
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

    send = sub.add_parser("send", parents=[common], help="publish an announcement to the broker")
    _announcement_options(send)
    send.add_argument("--wait", action="store_true", help="wait for the terminal event; exit 0 only if finished")
    send.add_argument("--timeout", type=float, default=120.0, help="seconds to wait (default 120)")
    return parser


def _setup_logging(verbose: bool, cfg: Config | None = None) -> None:
    """The daemon logs at the configured level; one-shot commands only warn unless -v."""
    level = logging.DEBUG if verbose else getattr(logging, cfg.logging.level if cfg else "WARNING")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _load(args: argparse.Namespace, required: bool) -> Config:
    path = find_config_path(args.config)
    return load_config(path, required=required)


def _raw_fields(args: argparse.Namespace) -> dict[str, Any]:
    text = sys.stdin.read() if args.text == "-" else args.text
    raw: dict[str, Any] = {"text": text}
    for name in ("emotion", "intensity", "speed", "volume", "priority", "engine", "voice", "lang", "repeat", "id"):
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


def cmd_say(args: argparse.Namespace) -> int:
    from .say import say

    cfg = _load(args, required=False)
    return say(cfg, _raw_fields(args), out=args.out)


def cmd_send(args: argparse.Namespace) -> int:
    from ..intake.parse import build
    from ..mqtt.send import send

    cfg = _load(args, required=True)
    raw = _raw_fields(args)
    build(raw, cfg)  # validate locally first: the user learns about a typo before anything is published
    targets = raw.pop("targets", None)
    code, event = send(cfg, raw, targets, wait=args.wait, timeout=args.timeout)
    if event is not None:
        print(json.dumps(event, ensure_ascii=False))
    return code


def cmd_run(args: argparse.Namespace) -> int:
    from .daemon import run

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
    "send": cmd_send,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "run":
        _setup_logging(args.verbose)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        return EXIT_FAIL if args.command in ("check-config", "run", "send") else EXIT_USAGE
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except EngineUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
