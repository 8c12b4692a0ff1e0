# The two commands a newcomer needs: `make run` and `make test`. See README.md.
#
#   make install   .venv with requirements-dev.txt, npm packages, static/build (stamp files: a second
#                  run does nothing unless requirements*.txt or package*.json changed)
#   make run       the whole platform on http://127.0.0.1:8000 with the embedded defaults (no root)
#   make test      system services (root, apt, only when missing) + the suite against real PostgreSQL,
#                  Redis and SeaweedFS S3 (tests/harness.py) + lint
#   make test-unit the tests that need no service, without the harness, in under a minute
#   make lint      ruff check, ruff format --check and mypy; make pytest PYTEST_ARGS="tests/x -x": the suite only
#   make manifests the Kubernetes manifests of deploy/kubernetes/overlays/production on stdout
#                  (OVERLAY=overlays/production/migrate: the migration Job; docs/kubernetes.md)
#   make image     the container image (deploy/container/Containerfile, podman or docker); prints its size
#   make lock      requirements.lock (every runtime package pinned with hashes) from requirements.txt
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# collectstatic ignores dotfiles, so this stamp never reaches STATIC_ROOT.
STATIC_STAMP := static/build/.built
PYTEST_ARGS ?=
RUN_ARGS ?=
comma := ,
# Debian packages the suite needs (`make run` needs none of them). prometheus brings promtool, which
# unit-tests the alert rules; openssl makes the runbook test's certificate; podman (with runc) builds
# and runs the image, mmdebstrap makes the Debian base image the image test builds on (no registry).
SYSTEM_PACKAGES := postgresql redis-server nginx chromium prometheus openssl podman runc mmdebstrap
# The container image: `make image IMAGE=registry.example.edu/lessons:1.2`. CA_BUNDLE is a PEM file of
# certificate authorities that pip and npm inside the build must trust (a proxy that re-signs TLS);
# it defaults to the one pip is told about here (PIP_CERT, or SSL_CERT_FILE) and is handed to the build
# as a secret, so it is in no layer. IMAGE_BUILD_ARGS: more arguments, e.g. --build-arg BASE_IMAGE=...
IMAGE ?= lessons:latest
CONTAINER_ENGINE ?= $(shell command -v podman || command -v docker)
CA_BUNDLE ?= $(or $(PIP_CERT),$(SSL_CERT_FILE))
IMAGE_BUILD_ARGS ?=

.PHONY: help install python-deps frontend system-deps secret-files collectstatic run test test-unit pytest lint manifests clean image lock

help:
	@sed -n '3,11p' Makefile | sed 's/^# \{0,1\}//'

install: python-deps frontend

python-deps: $(PY_STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(PY_STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# The front end is optional until package.json exists; without node, say so instead of failing later.
ifneq ($(wildcard package.json),)
$(NODE_STAMP): package.json $(wildcard package-lock.json)
	@command -v npm >/dev/null || { echo "npm is missing: apt-get install -y npm (or any Node.js 18+)" >&2; exit 1; }
	if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; \
	else npm install --no-audit --no-fund --loglevel=error; fi
	touch $@

$(STATIC_STAMP): $(NODE_STAMP) $(wildcard scripts/build_static.mjs)
	npm run --silent --if-present build
	mkdir -p $(@D)
	touch $@

frontend: $(STATIC_STAMP)
else
frontend:
	@echo "no package.json yet: skipping the front-end build"
endif

# Root only (CI is root): install what is missing, never touching what is there.
system-deps:
	@missing=""; \
	[ -x /usr/lib/postgresql/15/bin/postgres ] || missing="$$missing postgresql"; \
	[ -x /usr/bin/redis-server ] || missing="$$missing redis-server"; \
	[ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -x /usr/bin/promtool ] || missing="$$missing prometheus"; \
	[ -x /usr/bin/openssl ] || missing="$$missing openssl"; \
	[ -x /usr/bin/podman ] || missing="$$missing podman"; \
	[ -x /usr/sbin/runc ] || missing="$$missing runc"; \
	[ -x /usr/bin/mmdebstrap ] || missing="$$missing mmdebstrap"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages:$$missing (run make test as root once)" >&2; exit 1; fi; \
	  echo "installing:$$missing"; \
	  apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

collectstatic: install secret-files
	$(BIN)/python manage.py collectstatic --noinput -v 0

run: install
	$(BIN)/python scripts/run.py $(RUN_ARGS)

# The suite alone, e.g. `make pytest PYTEST_ARGS="tests/playback -x"`. pytest's exit code 5 (no test
# collected) fails like any other non-zero code; the harness names it.
pytest: install system-deps secret-files
	$(BIN)/python manage.py makemigrations --check --dry-run >/dev/null || \
	  { echo "make test: a model change has no migration (python manage.py makemigrations)" >&2; exit 1; }
	$(BIN)/python tests/harness.py -- $(BIN)/python -m pytest $(PYTEST_ARGS)

test: pytest
	$(MAKE) --no-print-directory lint

# The embedded default's secret files under VAR_DIR (config/secret_files.py; existing ones are kept):
# the settings only read them, and manage.py, mypy's Django plugin and collectstatic load the settings.
secret-files: python-deps
	$(BIN)/python -m config.secret_files >/dev/null

# The fast loop: every test that needs no service (no database, Redis, S3, browser, worker, encode),
# without the harness, in under a minute. Redis points at a closed port so a test that needs it and
# is not marked fails here instead of touching a developer's own Redis (tests/conftest.py). One
# pytest-xdist worker per core: these tests share nothing, so they may run side by side.
test-unit: python-deps
	TESTS_TIER=unit REDIS_URL=redis://127.0.0.1:9/0 VAR_DIR=$$(mktemp -d) $(BIN)/python -m pytest -q -n auto $(PYTEST_ARGS)

lint: python-deps secret-files
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# `kubectl kustomize` when kubectl is installed, else the small renderer of our own (the same objects:
# tests/deploy/test_kubernetes.py). Only the YAML goes to stdout: `make -s manifests | kubectl apply -f -`.
OVERLAY ?= overlays/production
manifests: python-deps
	@$(BIN)/python scripts/render_manifests.py deploy/kubernetes/$(OVERLAY)

# The image, built from this checkout. Build time and size are printed; docs/adr/0024 has the figures.
image:
	@[ -n "$(CONTAINER_ENGINE)" ] || { echo "make image: neither podman nor docker is installed" >&2; exit 1; }
	$(CONTAINER_ENGINE) build -f deploy/container/Containerfile -t $(IMAGE) \
	  $(if $(CA_BUNDLE),--secret id=ca_bundle$(comma)src=$(CA_BUNDLE)) $(IMAGE_BUILD_ARGS) .
	@$(CONTAINER_ENGINE) image inspect --format '{{.Size}}' $(IMAGE) | \
	  awk '{ printf "make image: $(IMAGE) is %.0f MB\n", $$1 / 1000000 }'

# requirements.lock from requirements.txt, with pip-tools in a throwaway venv. Run after changing
# requirements.txt. Markers are resolved for the Python that runs pip-compile, so it is the image's:
# Debian 12's /usr/bin/python3 (3.11.2; redis, for one, needs a package more before 3.11.3).
LOCK_PYTHON ?= /usr/bin/python3
lock:
	rm -rf var/lock-venv
	$(LOCK_PYTHON) -m venv var/lock-venv
	var/lock-venv/bin/pip install --quiet pip-tools==7.6.2
	CUSTOM_COMPILE_COMMAND="make lock" var/lock-venv/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	  --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
	  --output-file requirements.lock requirements.txt
	rm -rf var/lock-venv

clean:
	rm -rf $(VENV) node_modules static/build var
