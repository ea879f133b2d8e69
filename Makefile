# The README's two commands: `make demo` and `make check test test-slow`. Each target sets up what it needs.
.PHONY: setup demo check test test-slow bench lock clean

setup:
	sh scripts/setup.sh

demo: setup
	.venv/bin/python scripts/demo.py

# the fast lane (about a minute): lint, format, types, and the unit tests (marker `unit`)
check: setup
	.venv/bin/ruff check announcer tests bench scripts container ha-addon
	.venv/bin/ruff format --check announcer tests bench scripts container ha-addon
	.venv/bin/mypy
	.venv/bin/python -m pytest -q -m unit

# the full suite but the slow lane (real broker, daemon, devices, reliability faults)
test: setup
	.venv/bin/python -m pytest -q -m "not slow"

# the slow lane: end-to-end runs of several minutes each (exit 5: none collected, fine)
test-slow: setup
	.venv/bin/python -m pytest -q -m slow; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

# refresh requirements/*.lock (uv, hashed, universal) from pyproject.toml's dependencies and extras
lock: setup
	.venv/bin/python scripts/lock.py

bench: setup
	.venv/bin/python -m bench

clean:
	rm -rf .venv demo-out .pytest_cache .mypy_cache .ruff_cache
