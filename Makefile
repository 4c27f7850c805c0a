# otel-audit — the two commands the README promises: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The venv is refreshed whenever the project's dependency list changes.
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-16)

.PHONY: test lint typecheck unit e2e-deps demo bench clean

include mk/build.mk
include mk/compat.mk

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)

PY_SOURCES := otel_audit tests examples bench

lint: $(STAMP)
	$(BIN)/ruff check $(PY_SOURCES)
	$(BIN)/ruff format --check $(PY_SOURCES)

typecheck: $(STAMP)
	$(BIN)/mypy

# What the end-to-end tests run: the collector, VictoriaLogs, Jaeger and Chromium.
e2e-deps: collector
	@$(MAKE) --no-print-directory backends OTEL_AUDIT_BACKENDS="victoria-logs jaeger"
	@bash scripts/install-browser.sh

unit: $(STAMP) e2e-deps
	$(BIN)/pytest -q

test: lint typecheck unit compat

# `exec`: the demo must be make's own child, never behind a shell, because make passes a
# SIGTERM sent to it alone (`timeout make demo`, a service manager) on to its children, and
# a shell in between would die of it without passing it on. SIGINT and SIGHUP are not passed
# on by make: a terminal sends those to the whole foreground process group, demo included.
demo: $(STAMP) collector
	@$(MAKE) --no-print-directory backends OTEL_AUDIT_BACKENDS="victoria-logs jaeger"
	exec $(BIN)/python -m examples.demo $(ARGS)

# wrk is the load generator (Debian package); installed on demand where we are root.
bench: $(STAMP)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq wrk; } \
		|| { echo "bench needs wrk: apt-get install wrk" >&2; exit 1; }
	$(BIN)/python -m bench.run $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
