# Two commands (see README): `make run` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
PORT ?= 8501
# Two pytest workers, one test file each at a time (module fixtures stay in one process); the
# costliest file left goes next and Spark tests share one worker (tests/conftest.py, schedule.py).
PYTEST_ARGS ?= -n 2 --dist loadgroup
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: run test setup setup-test demo lint bench clean-venv

# The serving check runs first: a non-local LTREC_ADDRESS without sign-in stops here (exit 2),
# before the demo shop is built; its flags carry the address and the server's upload limit.
run: setup  ## set up, check the address, build the demo shop if missing, start the app
	@flags="$$($(PY) -m ltrec.app.serving)" || exit 2; \
	$(MAKE) --no-print-directory demo && \
	exec $(VENV)/bin/streamlit run app.py --server.port $(PORT) $$flags

# The type check (one thread, about a minute on a fresh clone) runs beside pytest, whose two
# workers leave about a quarter of two cores idle; its report follows pytest's, and either
# failing fails the target.
test: setup-test  ## install test dependencies and run every test
	$(PY) -m ruff check ltrec app.py app_pages tests benchmarks
	$(VENV)/bin/lint-imports
	@echo "$(PY) -m mypy (beside pytest) && $(PY) -m pytest $(PYTEST_ARGS)"
	@$(PY) -m mypy > $(VENV)/mypy.out 2>&1 & types=$$!; \
	trap 'kill $$types 2>/dev/null' INT TERM; \
	$(PY) -m pytest $(PYTEST_ARGS); tests=$$?; \
	wait $$types; typed=$$?; \
	echo "mypy:"; cat $(VENV)/mypy.out; \
	if [ $$tests -ne 0 ]; then exit $$tests; fi; exit $$typed

setup: $(VENV)/.runtime-installed

$(VENV)/.runtime-installed: requirements.txt requirements-nodeps.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip setuptools wheel
	$(PIP) install -r requirements.txt
	$(PIP) install --no-deps -r requirements-nodeps.txt
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $@

setup-test: setup $(VENV)/.test-installed $(VENV)/.system-installed

$(VENV)/.test-installed: requirements-dev.txt $(VENV)/.runtime-installed
	$(PIP) install -r requirements-dev.txt
	touch $@

# Debian packages the tests need: Chromium for the browser suite (Playwright cannot download
# browsers here) and a Java runtime for the local Spark session.
$(VENV)/.system-installed:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v java >/dev/null || missing="$$missing openjdk-17-jre-headless"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	touch $@

demo: setup  ## build data/demo.duckdb unless it exists
	@if [ -f "$${LTREC_DATA_DIR:-data}/demo.duckdb" ]; then echo "demo shop present"; \
	else $(VENV)/bin/ltrec demo; fi

lint: setup-test
	$(PY) -m ruff check ltrec app.py app_pages tests benchmarks

bench: setup-test  ## every benchmark; results in benchmarks/results/
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
