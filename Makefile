# One target per habit. Everything installs into .venv at the repo root; Temporal is obtained by
# tether/temporal_server.py (PATH -> cached build -> Go build -> the SDK's download).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Exact versions with hashes, every extra (dev, postgres); written by `make lock` from
# pyproject.toml. The image installs requirements-production.lock (no dev tools), same versions.
LOCK := requirements.lock
# uv installs the lock in seconds (pip takes minutes); where uv is not on PATH, it is put into
# the venv first (one wheel from PyPI), so every machine installs the same way.
UV ?= $(or $(shell command -v uv 2>/dev/null),$(VENV)/bin/uv)

.PHONY: install lock lock-check lint typecheck test test-fast bench demo temporal clean

$(STAMP): pyproject.toml $(LOCK) requirements-overrides.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Tether needs Python >= 3.11")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	test -x $(UV) || $(PY) -m pip install --quiet uv
	$(UV) pip sync --quiet --python $(PY) $(LOCK)
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	touch $(STAMP)

# After a change to the dependencies in pyproject.toml. Versions already locked stay unless
# asked: `make lock LOCK_ARGS=--upgrade` (or `--upgrade-package NAME`).
LOCK_COMPILE = $(UV) pip compile pyproject.toml --universal --python-version 3.11 \
	--generate-hashes --quiet --custom-compile-command "make lock" \
	--override requirements-overrides.txt $(LOCK_ARGS)
lock: $(STAMP)
	$(LOCK_COMPILE) --all-extras -o $(LOCK)
	$(LOCK_COMPILE) --extra postgres --constraint $(LOCK) -o requirements-production.lock

# Fails when pyproject.toml asks for something the locks do not hold (a dependency added without
# `make lock`); locking again changes nothing otherwise.
lock-check: lock
	git diff --exit-code -- $(LOCK) requirements-production.lock

# Bytecode for the project's own modules even under PYTHONDONTWRITEBYTECODE=1 (as in this
# machine's image): Temporal's sandbox imports a workflow's module afresh for every run, and
# without a .pyc that means compiling its source every time.
install: $(STAMP) temporal
	@$(PY) -m compileall -q tether workflows activities policies review_ui

temporal: $(STAMP)
	@$(PY) -m tether.temporal_server ensure

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The integration tests need a headless Chromium and PostgreSQL; scripts/test-services installs
# (Debian packages) and starts what is missing, then pytest runs against the real things.
test: install
	bash scripts/test-services.sh $(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -q -m "not integration and not browser and not postgres" $(PYTEST_ARGS)

bench: install
	$(PY) -m bench.bench_engine
	$(PY) -m bench.bench_review
	$(PY) -m bench.bench_guards
	$(PY) -m bench.bench_pages
	$(PY) -m bench.bench_routing
	$(PY) -m bench.bench_limits
	$(PY) -m bench.bench_pii_step
	$(PY) -m bench.bench_observability
	$(PY) -m bench.bench_cache
	$(PY) -m bench.bench_retention
	$(PY) -m bench.bench_workload

demo: install
	$(VENV)/bin/tether dev $(DEMO_ARGS)

clean:
	rm -rf .tether test-output bench/results
