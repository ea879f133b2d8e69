# The two commands of the README: `make demo` and `make test`. Both set up what they need.
.PHONY: setup demo test bench clean

setup:
	sh scripts/setup.sh

demo: setup
	.venv/bin/python scripts/demo.py

test: setup
	.venv/bin/python -m pytest -q

bench: setup
	.venv/bin/python -m bench

clean:
	rm -rf .venv demo-out .pytest_cache
