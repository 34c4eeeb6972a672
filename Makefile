# computer-agent: `make run` starts a private desktop and the agent; `make test` runs every check.
# Both install what they need on a fresh Debian 12 machine (apt packages, then .venv).

SHELL := /bin/bash
PYTHON_SYSTEM := /usr/bin/python3
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian packages: the desktop the agent drives, the apps and observers the tests use.
APT_PACKAGES := \
	python3 python3-venv python3-dev python3-gi python3-pyatspi gir1.2-atspi-2.0 gir1.2-gtk-3.0 \
	xvfb xauth x11-utils x11-apps x11-xserver-utils x11-xkb-utils xkbset xdotool xterm xclip \
	xfwm4 openbox wmctrl xfconf dbus dbus-x11 at-spi2-core \
	zenity gtk-3-examples scrot imagemagick x11vnc \
	xfonts-base fonts-dejavu-core fonts-noto-cjk fonts-noto-color-emoji \
	gcc make git curl ca-certificates \
	systemd shellcheck openssl \
	xfce4-session xfce4-panel xfdesktop4 xfce4-settings \
	chromium

# What `make bench` needs on top: tkinter for cua's computer-server, the peer it runs beside ours.
BENCH_APT_PACKAGES := python3-tk

# What `make test-system` needs on top: a Debian root, a container to boot it in, the linter.
SYSTEM_APT_PACKAGES := debootstrap systemd-container lintian util-linux procps

.PHONY: all deps venv run test test-system lint complexity typecheck unit bench bench-episode openapi sdk docs clean deb lock test-image

all: test

deps: .stamps/apt venv

.stamps/apt: Makefile
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(APT_PACKAGES)"
	@mkdir -p .stamps && touch $@

.stamps/apt-bench: Makefile
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(BENCH_APT_PACKAGES)"
	@mkdir -p .stamps && touch $@

.stamps/apt-system: Makefile
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(SYSTEM_APT_PACKAGES)"
	@mkdir -p .stamps && touch $@

.PHONY: apt-install
apt-install:
	@missing=$$(for p in $(PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "apt-get install:" $$missing; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml .stamps/apt
	[ -x $(PY) ] || $(PYTHON_SYSTEM) -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

run: deps
	$(VENV)/bin/computer-agent dev --port $${PORT:-8000}

lint: venv complexity
	$(VENV)/bin/ruff check agent tests bench
	$(VENV)/bin/ruff format --check agent tests bench

# ruff's C901 caps each function's branches (pyproject.toml); radon's rank must stay D or better.
complexity: venv
	@worse=$$($(VENV)/bin/radon cc -s -n E agent); \
	if [ -n "$$worse" ]; then echo "radon cc: ranked worse than D (split them):"; echo "$$worse"; exit 1; fi

typecheck: venv
	$(VENV)/bin/mypy

unit: deps
	$(PY) -m pytest -m unit -q

test: deps lint typecheck
	$(PY) -m pytest -q

bench: deps .stamps/apt-bench
	$(PY) -m bench

bench-episode: deps  # one agent episode: fixed 2 s sleeps vs act-then-observe (also part of `bench`)
	$(PY) bench/bench_episode.py

openapi: venv
	$(VENV)/bin/computer-agent openapi > tests/snapshots/openapi.json

# The SDK's typed methods and exceptions, from the registry (tests/unit/test_client_generated.py).
sdk: venv
	$(PY) -m agent.codegen.sdk

# docs/api.md, the HTTP contract, from the OpenAPI document (tests/unit/test_api_docs.py).
docs: venv
	$(PY) -m agent.codegen.docs

# dist/computer-agent_<version>_<arch>.deb: a venv with the agent inside /usr/lib/computer-agent,
# exactly the versions and hashes of packaging/*.lock (`make lock` re-resolves them).
deb: .stamps/apt
	bash packaging/build-deb.sh

lock: .stamps/apt
	bash packaging/lock.sh

# The package under a real systemd (tests/system/run.sh): booted in systemd-nspawn from a Debian 12
# root cached in /var/cache/computer-agent-test, under /tmp/agent-xtest.lock while it boots. Needs
# root; prints SKIP where it cannot boot. Then the container image (test-image).
test-system: .stamps/apt .stamps/apt-system
	$(SUDO) bash tests/system/run.sh
	@$(MAKE) --no-print-directory test-image

# The container image under Debian's own dockerd (tests/system/test_image.py): a cached
# debootstrap root as the base image, classic and BuildKit builds, healthcheck, screenshot, token,
# docker stop, size. Needs root; skips (with the reason) where dockerd cannot start.
IMAGE_APT_PACKAGES := docker.io debootstrap

.stamps/apt-image: Makefile
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(IMAGE_APT_PACKAGES)"
	@mkdir -p .stamps && touch $@

test-image: deb venv .stamps/apt-image
	$(SUDO) env COMPUTER_AGENT_SYSTEM_TEST=1 flock /tmp/agent-xtest.lock \
		$(PY) -m pytest tests/system/test_image.py -s -rA -p no:cacheprovider

clean:
	rm -rf $(VENV) .stamps .pytest_cache .mypy_cache .ruff_cache
