"""Config reload (SIGHUP, ``systemctl reload``): read the new file, build the new pieces, report.

``Daemon.reload`` owns the order (``RELOADING=1``, read, apply, ``READY=1``); this module
holds the steps:

* ``read_config``: an invalid file is logged, every error on its own line, and changes nothing.
* ``keep_restart_sections``: sections a running daemon cannot apply (``RESTART_SECTIONS``)
  keep their running values, with a warning that names them (for ``mqtt``: which settings).
* ``rebuild``: the new ``Runtime`` is built before anything is swapped, so a
  failure (e.g. a chime file that cannot be read) leaves the running daemon untouched. An
  unchanged engine (same config, same cache directory) or speaker keeps its object; the
  cache is kept when its section is unchanged.
* ``close_engines`` (after the swap) and ``log_applied``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ..audio.chimes import ChimeLibrary
from ..audio.clips import ClipLibrary
from ..config import Config, ConfigError, load_config
from ..engines.base import Engine, create_engine
from ..playback.clause_cache import ClauseCache
from ..playback.runtime import Runtime
from ..sinks.base import Sink, SinkContext, create_sink

# logged under the daemon's name, as before this module was split out of it (log filters and
# caplog(logger="announcer.daemon") keep matching)
_LOGGER = logging.getLogger(__name__)

# sections a reload cannot apply (the connection, the spool file, servers and bridges built at start)
RESTART_SECTIONS = ("mqtt", "spool", "homeassistant", "hermes", "wyoming", "http", "site", "fleet", "pair")


def read_config(path: Path) -> Config | None:
    """The config in ``path``, or None when it is invalid (every error logged)."""
    _LOGGER.info("reload: reading %s", path)
    try:
        return load_config(path)
    except ConfigError as exc:
        _LOGGER.error("reload: %s is invalid (%d error(s)); the running config stays in force", path, len(exc.errors))
        for line in exc.errors:
            _LOGGER.error("reload: %s", line)
        return None


def keep_restart_sections(old: Config, new: Config) -> Config:
    """``new`` with the running values of the ``RESTART_SECTIONS`` that changed (each one warned about)."""
    kept = [s for s in RESTART_SECTIONS if getattr(old, s) != getattr(new, s)]
    if "mqtt" in kept:
        changed = sorted(k for k in type(old.mqtt).model_fields if getattr(old.mqtt, k) != getattr(new.mqtt, k))
        _LOGGER.warning(
            "reload: mqtt settings changed (%s): they need a restart (systemctl restart "
            "announcer); keeping the current connection",
            ", ".join(changed),
        )
    others = [s for s in kept if s != "mqtt"]
    if others:
        _LOGGER.warning("reload: %s changed: applied at the next restart, not now", ", ".join(others))
    if kept:  # what the running daemon uses stays; everything else comes from the new file
        new = new.model_copy(update={s: getattr(old, s) for s in kept})
    return new


@dataclass
class Rebuilt:
    """A reloaded config's runtime, built but not yet in use, and what it means for the engines."""

    runtime: Runtime
    fresh: dict[str, Engine]  # engines created for the new config: still to be started
    dropped: list[Engine]  # running engines the new config no longer uses: closed after the swap


def rebuild(old: Runtime, new: Config, sink_context: SinkContext | None) -> Rebuilt:
    """Build the runtime ``new`` needs, reusing the running engines, cache and sinks where their
    config did not change. May raise; nothing running is touched."""
    cfg, synth, sinks = old.config, old.synth, old.sinks
    cache = synth.cache if new.cache == cfg.cache else ClauseCache.from_config(new.cache)
    engines: dict[str, Engine] = {}
    fresh: dict[str, Engine] = {}
    for name, ecfg in new.engines.items():
        current = synth.engines.get(name)
        if current is not None and cfg.engines.get(name) == ecfg and new.cache.directory == cfg.cache.directory:
            engines[name] = current  # unchanged: reused, not loaded again
        else:
            engines[name] = fresh[name] = create_engine(name, ecfg, new.cache.directory)
    new_sinks: dict[str, Sink] = {}
    for name, scfg in new.speakers.items():
        same = name in sinks and cfg.speakers.get(name) == scfg
        new_sinks[name] = sinks[name] if same else create_sink(name, scfg, sink_context)
    dropped = [eng for name, eng in synth.engines.items() if engines.get(name) is not eng]
    clips = ClipLibrary.from_config(new)  # decoded when the config was checked: taken from there
    runtime = Runtime(new, synth.with_engines(engines, cache, clips), new_sinks, ChimeLibrary.from_config(new))
    return Rebuilt(runtime, fresh, dropped)


def close_engines(engines: list[Engine]) -> None:
    for eng in engines:
        try:
            eng.close()  # managed engine process: stopped; others: nothing to do
        except Exception:
            _LOGGER.warning("reload: closing engine %s failed", eng.name, exc_info=True)


def log_applied(old: Config, new: Config, rebuilt: Rebuilt) -> None:
    added = [n for n in new.speakers if n not in old.speakers]
    removed = [n for n in old.speakers if n not in new.speakers]
    changed = [n for n in new.speakers if n in old.speakers and old.speakers[n] != new.speakers[n]]
    _LOGGER.info(
        "reload: applied (speakers added: %s; removed: %s; changed: %s; engines loaded: %s; kept: %s)",
        ", ".join(added) or "none",
        ", ".join(removed) or "none",
        ", ".join(changed) or "none",
        ", ".join(rebuilt.fresh) or "none",
        ", ".join(n for n in rebuilt.runtime.synth.engines if n not in rebuilt.fresh) or "none",
    )
