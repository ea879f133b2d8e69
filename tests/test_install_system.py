"""``scripts/install-system.sh``: staged under a root directory (``--root``: no user, no systemctl),
twice. It creates the versioned environment with the voice, points ``current`` at it, writes the
config and secrets file once (an operator's edits survive a second run), and installs a unit that
``systemd-analyze verify`` accepts with its ExecStart pointing into that environment.

Slow lane: the environment is installed from the runtime lock (a minute or more).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import tomllib

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
ANALYZE = shutil.which("systemd-analyze") or "systemd-analyze"


def _install(stage: Path) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        ["sh", "scripts/install-system.sh", "--root", str(stage)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_install_system_is_idempotent_and_its_unit_verifies(tmp_path: Path) -> None:
    stage = tmp_path / "root"
    first = _install(stage)
    venv = stage / "opt" / "announcer" / VERSION
    assert f"announcer {VERSION} in {venv} (current)" in first.stdout
    assert (stage / "opt" / "announcer" / "current").resolve() == venv.resolve()
    exe = stage / "opt" / "announcer" / "current" / "bin" / "announcer"
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    assert version.stdout.strip() == f"announcer {VERSION}"
    voices = subprocess.run([str(exe), "voices"], capture_output=True, text=True).stdout
    assert re.search(r"^baker\s.*\byes\b", voices, flags=re.M), voices
    assert re.search(r"^zf_xiaoyi\s.*\byes\b", voices, flags=re.M), voices  # what the example config speaks with

    conf = stage / "etc" / "announcer"
    assert stat.S_IMODE((conf / "announcer.env").stat().st_mode) == 0o600
    assert stat.S_IMODE((conf / "announcer.yaml").stat().st_mode) == 0o640
    secrets = {"MQTT_PASSWORD": "s3cret", "ANNOUNCER_HTTP_TOKEN": "t" * 20, "HA_TOKEN": "ha"}
    checked = subprocess.run(
        [str(exe), "check-config", "-c", str(conf / "announcer.yaml")],
        capture_output=True,
        text=True,
        env={**os.environ, **secrets},
    )
    assert checked.returncode == 0 and ": ok" in checked.stdout, checked.stdout + checked.stderr
    (conf / "announcer.yaml").write_text("# the operator's own\n", encoding="utf-8")
    installed = (venv / ".installed").stat().st_mtime_ns

    _install(stage)  # again: nothing reinstalled, nothing of the operator's overwritten
    assert (venv / ".installed").stat().st_mtime_ns == installed
    assert (conf / "announcer.yaml").read_text(encoding="utf-8") == "# the operator's own\n"

    unit = stage / "etc" / "systemd" / "system" / "announcer.service"
    text = unit.read_text(encoding="utf-8")
    assert re.search(
        r"^ExecStart=/opt/announcer/current/bin/announcer run -c /etc/announcer/announcer.yaml$", text, re.M
    )
    staged = tmp_path / "announcer.service"  # as on the machine: ExecStart resolves to the staged program
    staged.write_text(text.replace("ExecStart=/opt/announcer/current", f"ExecStart={exe.parent.parent}"))
    r = subprocess.run([ANALYZE, "verify", str(staged)], capture_output=True, text=True)
    problems = [line for line in r.stderr.splitlines() if staged.name in line and "network-online" not in line]
    assert r.returncode == 0 and not problems, r.stderr
