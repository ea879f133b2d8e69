"""``python -m bench cli``: the command line's start-up, against the code before issue 20.

Figures, per variant, over ``--cli-runs`` runs each (after one untimed run that fills the
clause cache and writes the ``.pyc`` files):

* ``announcer --help`` (target ≤ 0.3 s wall);
* ``announcer say --out x.wav`` of one sentence whose clauses are in the cache (the usual
  case: a repeated announcement; target ≤ 0.8 s wall on a quiet machine);
* the same with the clause cache off (every clause synthesized);
* whether LiteRT's ``INFO: Created TensorFlow Lite XNNPACK delegate`` line reached stderr.

Wall time is the minimum and p50 over the runs; CPU time (user + system of the child, from
``getrusage``) is reported beside it because it holds steady on a shared, loaded machine where
wall time does not. The peer is the same commands on ``--cli-baseline`` (default: the commit
this work started from), checked out with ``git worktree add`` into a temporary directory and
run by the same Python, so only the code differs. Both run as the ``announcer`` script does
(``console()`` now, ``main()`` before).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import REPO_ROOT, BenchError, figure, percentile, progress

NAME = "cli"
BASELINE = "1d5ef96"  # main before issue 20: eager imports, warm-up, LiteRT's banner
SENTENCE = "请3号病房的李医生到护士站"
BANNER = "Created TensorFlow Lite XNNPACK delegate"


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--cli-runs", type=int, default=7, help="timed runs per command (default 7)")
    group.add_argument("--cli-baseline", default=BASELINE, help=f"the peer's commit (default {BASELINE})")


def _launcher(tree: Path, entry: str) -> list[str]:
    code = f"import sys; sys.path.insert(0, {str(tree)!r}); from announcer.service.cli import {entry}; "
    code += f"sys.argv[0] = 'announcer'; sys.exit({entry}())"
    return [sys.executable, "-c", code]


def _time(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall s, CPU s of the child, its stderr)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise BenchError(f"cli: {' '.join(cmd[-4:])} failed ({r.returncode}): {r.stderr.strip()[-300:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), r.stderr


def _variant(label: str, tree: Path, entry: str, tmp: Path, runs: int) -> dict[str, dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # .pyc as an install has
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "announcer")], env=env, check=True)
    cfgs = {}
    for cache in ("on", "off"):
        cfg = tmp / f"{label}-cache-{cache}.yaml"
        enabled = "true" if cache == "on" else "false"
        cfg.write_text(f"cache:\n  enabled: {enabled}\n  directory: {tmp / label / 'cache'}\n", encoding="utf-8")
        cfgs[cache] = cfg
    base = _launcher(tree, entry)
    out = tmp / f"{label}.wav"
    commands = {
        "--help": [*base, "--help"],
        "say --out, cached": [*base, "say", "-c", str(cfgs["on"]), "--out", str(out), SENTENCE],
        "say --out, cache off": [*base, "say", "-c", str(cfgs["off"]), "--out", str(out), SENTENCE],
    }
    results: dict[str, dict[str, Any]] = {}
    for what, cmd in commands.items():
        progress(f"cli: {label}: {what} x {runs}")
        _time(cmd, env)  # fills the clause cache, loads the files into the page cache
        walls, cpus, banner = [], [], False
        for _ in range(runs):
            wall, cpu, err = _time(cmd, env)
            walls.append(wall)
            cpus.append(cpu)
            banner |= BANNER in err
        results[what] = {"walls": walls, "cpus": cpus, "banner": banner}
    return results


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    runs = max(1, getattr(args, "cli_runs", 7))
    baseline = getattr(args, "cli_baseline", BASELINE)
    figures: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp_name:
        tmp = Path(tmp_name)
        peer_tree = tmp / "baseline"
        r = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", str(peer_tree), baseline],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            raise BenchError(f"cli: cannot check out the baseline {baseline}: {r.stderr.strip()}")
        try:
            now = _variant("now", REPO_ROOT, "console", tmp, runs)
            before = _variant("baseline", peer_tree, "main", tmp, runs)
        finally:
            subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force", str(peer_tree)], check=False)
    targets = {"--help": 0.3, "say --out, cached": 0.8, "say --out, cache off": 0.8}
    for what, target in targets.items():
        a, b = now[what], before[what]
        wall, peer_wall = min(a["walls"]), min(b["walls"])
        cpu, peer_cpu = min(a["cpus"]), min(b["cpus"])
        figures.append(
            figure(
                NAME,
                f"{what}: wall",
                wall,
                "s",
                a["walls"],
                peer=peer_wall,
                ratio=wall / peer_wall,
                target=target,
                met=wall <= target,
                note=f"min of {runs}; peer = {baseline}, p50 {percentile(b['walls'], 50):.3f} s",
            )
        )
        figures.append(
            figure(
                NAME,
                f"{what}: CPU",
                cpu,
                "s",
                a["cpus"],
                peer=peer_cpu,
                ratio=cpu / peer_cpu,
                note="user+sys of the process, min (steady under load)",
            )
        )
    say = "say --out, cached"
    figures.append(
        figure(
            NAME,
            "LiteRT banner on stderr (runs with it)",
            float(now[say]["banner"]),
            "bool",
            peer=float(before[say]["banner"]),
            target=0.0,
            met=not now[say]["banner"],
        )
    )
    return figures
