"""``python -m bench [names...]``: run benchmarks (all by default), print a table and JSON lines.

A benchmark is any module ``bench/<name>.py`` (not ``common``, not starting with ``_``)
that defines ``run(args) -> list[dict]``; it may define ``add_arguments(group)`` for its
own options (prefix them with its name to avoid clashes). Output on stdout: per
benchmark a table, then one JSON line per figure (``--json``: only the JSON lines).
Progress goes to stderr. Exit status 1 if a benchmark cannot run, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
import time
from types import ModuleType
from typing import Any

import bench

from .common import (
    BenchError,
    json_line,
    load_average,
    machine_summary,
    print_table,
    progress,
    warn_if_busy,
)

_NOT_BENCHMARKS = frozenset({"common", "soak"})  # soak: a script of its own (bench/soak.py --minutes N)
# slow ones (many minutes): run only when named, never by a plain ``python -m bench``
_ONLY_NAMED = frozenset({"intelligibility"})
# run before the others: ``engine``'s peak-RSS figures are cumulative for this process
# (``ru_maxrss``) and only mean something before another benchmark loads an engine here
_FIRST = ("engine",)


def _order(name: str) -> tuple[int, str]:
    return (_FIRST.index(name) if name in _FIRST else len(_FIRST), name)


def discover() -> dict[str, ModuleType]:
    """Benchmark modules by name: ``engine`` first, then the rest in alphabetical order."""
    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda i: _order(i.name)):
        if info.name.startswith("_") or info.name in _NOT_BENCHMARKS:
            continue
        module = importlib.import_module(f"bench.{info.name}")
        if callable(getattr(module, "run", None)):
            found[info.name] = module
    return found


def build_parser(benchmarks: dict[str, ModuleType]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Benchmarks for announcer: a table and one JSON line per figure."
    )
    parser.add_argument(
        "names", nargs="*", metavar="name", help=f"benchmarks to run (default: all of {', '.join(benchmarks)})"
    )
    parser.add_argument(
        "--corpus",
        metavar="PATH",
        help="tab-separated corpus: emotion, priority, text (default: the shared public corpus)",
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON lines")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the engines' log messages")
    for name, module in benchmarks.items():
        add = getattr(module, "add_arguments", None)
        if add is not None:
            add(parser.add_argument_group(f"{name} benchmark"))
    return parser


def main(argv: list[str] | None = None) -> int:
    benchmarks = discover()
    parser = build_parser(benchmarks)
    args = parser.parse_args(argv)
    if args.list:
        for name, module in benchmarks.items():
            summary = (module.__doc__ or "").strip().splitlines()
            print(f"{name}: {summary[0] if summary else ''}")
        return 0
    unknown = [n for n in args.names if n not in benchmarks]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)} (have: {', '.join(benchmarks)})")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )

    if not args.json:
        print(f"machine: {machine_summary()}")
    warn_if_busy()
    results: list[dict[str, Any]] = []
    for name in sorted(args.names, key=_order) if args.names else [n for n in benchmarks if n not in _ONLY_NAMED]:
        progress(f"running {name}")
        started = time.perf_counter()
        try:
            figures = benchmarks[name].run(args)
        except BenchError as exc:
            print(f"bench {name}: {exc}", file=sys.stderr)
            return 1
        progress(f"{name} done in {time.perf_counter() - started:.1f} s")
        if not args.json:
            print(f"\n== {name} ==")
            print_table(figures)
        results.extend(figures)
    load = load_average()
    progress(f"load average now {'?' if load is None else f'{load:.2f}'}")
    if not args.json:
        print()
    for fig in results:
        print(json_line(fig))
    return 0


if __name__ == "__main__":
    sys.exit(main())
