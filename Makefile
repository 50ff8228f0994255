# The README commands: `make demo`, `make test` and `make test-fast`. Each sets everything up first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := ffmpeg espeak-ng libespeak-ng1 fonts-noto-cjk
TEST_APT_PACKAGES := chromium
TORCH := torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Where settings read this machine's signing key when SECRET_KEY is not set (batchvideo/settings.py).
SECRET_KEY_FILE ?= $(or $(BATCHVIDEO_VAR_DIR),var)/secret_key

# Parallel test workers (pytest-xdist): three per CPU, since much of the suite waits on the worker,
# server and ffmpeg processes it starts (on 2 cores: 19 min of CPU in a 20-minute run with one per
# CPU); tests/conftest.py hands out the files that start processes first. A test file stays on one
# worker, so its module-scoped fixtures (tiny models, renders) are built once. At most 16: each
# worker has a Redis database of its own, and Redis has 16.
TEST_WORKERS ?= $(shell n=$$(( $$(nproc) * 3 )); echo $$(( n < 16 ? n : 16 )))
# The slow tiers (markers in pyproject.toml) that `make test-fast` leaves out.
SLOW_TIERS := slow or browser or processes

.PHONY: setup demo test test-fast lint apt

setup: apt $(VENV)/.installed $(SECRET_KEY_FILE)
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py seed_presets

# Debian packages, installed only when missing.
apt:
	@missing=$$(for p in $(APT_PACKAGES) $(EXTRA_APT); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing $$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing python3-venv >/dev/null; \
	fi

# torch first, as the CPU build, so nothing pulls the multi-GB CUDA one (its own
# dependencies come with requirements.txt).
$(VENV)/.installed: requirements.txt
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	if $(PY) -c "import urllib.request; urllib.request.urlopen('$(TORCH_INDEX)/torch/', timeout=10)" 2>/dev/null; \
	then $(PY) -m pip install -q --no-deps --index-url $(TORCH_INDEX) $(TORCH); \
	else echo "PyTorch's CPU index is unreachable: taking $(TORCH) from the configured index"; \
		$(PY) -m pip install -q --no-deps $(TORCH); fi
	$(PY) -m pip install -q -r requirements.txt
	touch $@

# What only the tests use (requirements-test.txt includes requirements.txt), after the runtime.
$(VENV)/.installed-test: requirements-test.txt requirements.txt $(VENV)/.installed
	$(PY) -m pip install -q -r requirements-test.txt
	touch $@

# A random signing key for this machine, written once and readable by its owner only. Production sets
# SECRET_KEY instead; without either, nothing starts.
$(SECRET_KEY_FILE):
	mkdir -p $(@D)
	umask 077 && $(PYTHON) -c "import secrets; print(secrets.token_urlsafe(50))" > $@.part && mv $@.part $@

demo: setup
	$(PY) manage.py demo

# Tests run where PostgreSQL and Redis answer on 127.0.0.1 against them (and say so); elsewhere on
# SQLite, skipping only the tests that need Redis. Each parallel worker gets its own test database
# (pytest-django) and its own Redis database, counting down from REDIS_URL's (tests/conftest.py).
RUN_PYTEST = \
	if [ -z "$$DATABASE_URL" ] && $(PY) -c "import socket; socket.create_connection(('127.0.0.1', 5432), 1)" 2>/dev/null; then \
		export DATABASE_URL=postgres://postgres@127.0.0.1:5432/batchvideo; echo "Tests on PostgreSQL at 127.0.0.1:5432"; \
	else echo "Tests on $${DATABASE_URL:-SQLite}"; fi; \
	if [ -z "$$REDIS_URL" ] && $(PY) -c "import socket; socket.create_connection(('127.0.0.1', 6379), 1)" 2>/dev/null; then \
		export REDIS_URL=redis://127.0.0.1:6379/15; echo "Redis at 127.0.0.1:6379"; \
	else echo "No Redis at 127.0.0.1:6379: its tests are skipped"; fi; \
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

# Lint and format check first, then the whole suite.
test: EXTRA_APT = $(TEST_APT_PACKAGES)
test: setup $(VENV)/.installed-test lint
	@$(RUN_PYTEST) $(PYTEST_ARGS)

# The edit-test loop: the same, less the slow tiers (renders, the browser, servers and workers in
# processes of their own); a few minutes.
test-fast: setup $(VENV)/.installed-test lint
	@$(RUN_PYTEST) -m "not ($(SLOW_TIERS))" $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
