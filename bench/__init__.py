"""Benchmarks for announcer: ``python -m bench [names...]`` (``make bench``).

Each benchmark is a module ``bench/<name>.py`` that exposes ``run(args) -> list[dict]``
(one dict per figure, built with ``bench.common.figure``) and, optionally,
``add_arguments(group)`` for its own command-line options. ``bench/__main__.py`` finds
the modules, runs the ones asked for (all by default) and prints a table plus one JSON
line per figure. Shared helpers live in ``bench/common.py``.
"""
