"""``announcer speakers``: every configured speaker with its type and whether it can be reached now.

What "reachable" means depends on the type (each sink's ``probe``): ``sounddevice`` the
device is there; ``file`` the directory can be written; ``mqtt`` not checked (it needs the
daemon's broker connection); ``rtp`` the host has a route to the address (UDP gets no
answer: nothing tells that a speaker listens); ``snapcast`` snapserver answers on its
control port and has the stream and the groups; ``homeassistant`` Home Assistant accepts the
token and has the entity, available and able to play media. ``--sdp NAME`` prints an rtp
speaker's session description instead.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

from ..config import Config
from ..sinks.base import Reachability, SinkContext, create_sink

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
PROBE_TIMEOUT = 15.0


def _context(cfg: Config) -> SinkContext:
    return SinkContext(homeassistant_url=cfg.homeassistant.url, homeassistant_token=cfg.homeassistant.token)


def _probe(cfg: Config, name: str) -> Reachability:
    sink = create_sink(name, cfg.speakers[name], _context(cfg))
    try:
        return sink.probe()
    except Exception as exc:  # noqa: BLE001  # one speaker's probe must not hide the others
        return Reachability(False, f"{type(exc).__name__}: {exc}")
    finally:
        sink.close()


def print_speakers(cfg: Config) -> int:
    """One line per speaker: name, type, reachable/unreachable/unchecked, detail; exit 1 if one is unreachable."""
    names = list(cfg.speakers)
    with ThreadPoolExecutor(max_workers=min(8, max(1, len(names)))) as pool:
        results = list(pool.map(lambda n: _probe(cfg, n), names))
    width = max((len(n) for n in names), default=0)
    for name, result in zip(names, results):
        scfg = cfg.speakers[name]
        word = {True: "reachable", False: "unreachable", None: "unchecked"}[result.reachable]
        display = f" ({scfg.name})" if scfg.name and scfg.name != name else ""
        zones = [z for z, members in cfg.zones.items() if name in members]
        in_zones = f" [zones: {', '.join(zones)}]" if zones else ""
        print(f"{name:<{width}}  {scfg.type:<13}  {word:<11}  {result.detail}{display}{in_zones}")
    return EXIT_FAIL if any(r.reachable is False for r in results) else EXIT_OK


def print_sdp(cfg: Config, name: str) -> int:
    rtp = [n for n, s in cfg.speakers.items() if s.type == "rtp"]
    if name not in rtp:
        print(f"error: {name!r} is not an rtp speaker (rtp speakers: {', '.join(rtp) or 'none'})", file=sys.stderr)
        return EXIT_USAGE
    sdp = create_sink(name, cfg.speakers[name]).session_description()
    sys.stdout.write(sdp or "")
    return EXIT_OK
