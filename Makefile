# The two README commands: `make demo` and `make test`. Both set everything up first.
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

.PHONY: setup demo test apt test-apt

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

# A random signing key for this machine, written once and readable by its owner only. Production sets
# SECRET_KEY instead; without either, nothing starts.
$(SECRET_KEY_FILE):
	mkdir -p $(@D)
	umask 077 && $(PYTHON) -c "import secrets; print(secrets.token_urlsafe(50))" > $@.part && mv $@.part $@

demo: setup
	$(PY) manage.py demo

# The whole suite. Where PostgreSQL and Redis answer on 127.0.0.1 it runs against them
# (and says so); elsewhere on SQLite, skipping only the tests that need Redis.
test: EXTRA_APT = $(TEST_APT_PACKAGES)
test: setup
	@if [ -z "$$DATABASE_URL" ] && $(PY) -c "import socket; socket.create_connection(('127.0.0.1', 5432), 1)" 2>/dev/null; then \
		export DATABASE_URL=postgres://postgres@127.0.0.1:5432/batchvideo; echo "Tests on PostgreSQL at 127.0.0.1:5432"; \
	else echo "Tests on $${DATABASE_URL:-SQLite}"; fi; \
	if [ -z "$$REDIS_URL" ] && $(PY) -c "import socket; socket.create_connection(('127.0.0.1', 6379), 1)" 2>/dev/null; then \
		export REDIS_URL=redis://127.0.0.1:6379/15; echo "Redis at 127.0.0.1:6379"; \
	else echo "No Redis at 127.0.0.1:6379: its tests are skipped"; fi; \
	$(PY) -m pytest $(PYTEST_ARGS)
