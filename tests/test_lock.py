"""The locks cover pyproject.toml: every dependency of every extra a lock is made for is pinned,
inside pyproject's range, with hashes, and nothing machine-specific is written into them.

Generic: the extras come from pyproject.toml and ``[tool.announcer.lock]`` as they are now
(scripts/lock.py ``lock_sets``), so an extra added without ``make lock`` fails here with the
names that are missing.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import tomllib
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _lock_script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("lock_script", ROOT / "scripts" / "lock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_lock(path: Path) -> dict[str, list[tuple[str, str, int]]]:
    """{name: [(version, marker, hash count)]}; fails on any option line (--index-url, --find-links ...)."""
    pins: dict[str, list[tuple[str, str, int]]] = {}
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip() if not line.startswith("#") else ""
        if not line:
            continue
        assert not line.startswith("-"), f"{path.name}: option line {line!r} (machine-specific; run make lock)"
        m = re.match(r"([A-Za-z0-9_.\-]+)==(\S+)\s*(?:;\s*(.*?))?\s*((?:--hash=\S+\s*)*)$", line)
        assert m, f"{path.name}: not a pin with hashes: {line!r}"
        name, version, marker, hashes = m.groups()
        pins.setdefault(canonicalize_name(name), []).append((version, marker or "", hashes.count("--hash=sha256:")))
    return pins


def _applies(marker: str) -> bool:
    return not marker or Requirement(f"x; {marker}").marker.evaluate()  # type: ignore[union-attr]


@pytest.mark.parametrize("lock_name", ["dev", "runtime"])
def test_lock_pins_every_dependency_of_its_extras_with_hashes(lock_name: str) -> None:
    extras = _lock_script().lock_sets()[lock_name]
    pins = parse_lock(ROOT / "requirements" / f"{lock_name}.lock")
    project = PYPROJECT["project"]
    wanted = [(r, "dependencies") for r in project["dependencies"]]
    wanted += [(r, f"extra {e}") for e in extras for r in project["optional-dependencies"][e]]
    env = default_environment()
    problems = []
    for text, where in wanted:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        here = [(v, n) for v, m, n in pins.get(canonicalize_name(req.name), []) if _applies(m)]
        if not here:
            problems.append(f"{req.name} ({where}) is not pinned")
        elif not all(req.specifier.contains(v, prereleases=True) for v, _ in here):
            problems.append(f"{req.name} ({where}): pinned {[v for v, _ in here]} outside {req.specifier}")
    assert not problems, f"requirements/{lock_name}.lock is stale against pyproject.toml; run make lock: {problems}"
    assert all(n >= 1 for entries in pins.values() for _, _, n in entries)


def test_every_extra_is_locked_unless_declared_to_run_elsewhere() -> None:
    sets = _lock_script().lock_sets()
    skip = set(PYPROJECT["tool"]["announcer"]["lock"]["skip"])
    assert set(PYPROJECT["project"]["optional-dependencies"]) - skip == set(sets["dev"])
    assert set(sets["runtime"]) <= set(sets["dev"])


def test_runtime_lock_installs_on_this_python_without_resolving() -> None:
    """Complete: every package a locked one requires is locked too (pip runs with --no-deps)."""
    from importlib.metadata import PackageNotFoundError, requires

    pins = parse_lock(ROOT / "requirements" / "runtime.lock")
    missing = []
    for name in pins:
        try:
            reqs = requires(name) or []
        except PackageNotFoundError:
            continue  # not in this environment (another platform's or Python's branch)
        for text in reqs:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({**default_environment(), "extra": ""}):
                continue
            if canonicalize_name(req.name) not in pins:
                missing.append(f"{name} needs {req.name}")
    assert not missing, missing


def test_voice_lock_matches_the_catalogue() -> None:
    from announcer.voices.catalogue import CATALOGUE, PipWheels

    pins = parse_lock(ROOT / "requirements" / "voice.lock")
    wheels = {
        canonicalize_name(w.project): w
        for v in CATALOGUE.values()
        if isinstance(v.source, PipWheels)
        for w in v.source.wheels
    }
    assert set(pins) == set(wheels)
    text = (ROOT / "requirements" / "voice.lock").read_text(encoding="utf-8")
    for name, w in wheels.items():
        assert pins[name][0][0] == w.version and f"sha256:{w.sha256}" in text


def test_setup_installs_from_the_lock() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    assert "--require-hashes --no-deps" in setup and "-r requirements/dev.lock" in setup
    assert "announcer voices install baker" in setup
    assert sys.prefix != sys.base_prefix  # the tests run in the set-up environment (.venv)
