# `make compat`: the unit tests that exercise FastAPI and Starlette internals, run on the OLDEST
# FastAPI that pyproject.toml allows (the main venv, .venv, has the newest). Included from the
# top Makefile (`include mk/compat.mk`); `make test` runs it.
#
# The venv's folder name is a hash of pyproject.toml and the constraints file, so a change to
# either builds a fresh venv (and removes the stale ones), and a second run installs nothing.
# The stamp has no prerequisites on purpose: its name already encodes their content, and an
# mtime-only change (a checkout, a touch) must not cost a reinstall.

COMPAT_CONSTRAINTS := constraints/fastapi-oldest.txt
COMPAT_VENV := .cache/venv-fastapi-oldest-$(shell cat pyproject.toml $(COMPAT_CONSTRAINTS) | sha256sum | cut -c1-16)
COMPAT_STAMP := $(COMPAT_VENV)/.installed

# Everything that builds an app, routes a request or reads a FastAPI/Starlette/SDK internal.
# Left out: tests that touch no framework (archive, config, policy matching, redaction, the
# OTLP JSON oracle, collector and compose files) and e2e. The full-stack example (routers in
# routers, OAuth2 + JWT dependency, SQLite, zero-code) runs on both FastAPIs.
COMPAT_TESTS := \
	tests/test_compat.py \
	tests/test_http.py \
	tests/test_websocket.py \
	tests/test_record.py \
	tests/test_actor.py \
	tests/test_policy_pipeline.py \
	tests/test_spans.py \
	tests/test_body.py \
	tests/test_audit_router.py \
	tests/test_concurrency.py \
	tests/test_failure_isolation.py \
	tests/test_forwarding.py \
	tests/test_fuzz.py \
	tests/test_memory.py \
	tests/test_pipeline_drops.py \
	tests/test_exported_members.py \
	tests/test_zero_code.py \
	tests/test_fullstack_example.py \
	tests/test_transport.py

# Known deprecations of old Starlette running on new httpx, anyio and python-multipart (see the
# constraints file); anything else still shows.
COMPAT_PYTEST_FLAGS := -q -p no:cacheprovider -m 'not e2e' \
	-W 'ignore::DeprecationWarning:httpx._client' \
	-W 'ignore::DeprecationWarning:starlette.testclient' \
	-W 'ignore::PendingDeprecationWarning:starlette.formparsers'

.PHONY: compat

$(COMPAT_STAMP):
	@rm -rf $(wildcard .cache/venv-fastapi-oldest-*)
	$(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(COMPAT_VENV)/bin/python -m pip install --quiet -c $(COMPAT_CONSTRAINTS) -e '.[dev]'
	@touch $@

compat: $(COMPAT_STAMP)
	@$(COMPAT_VENV)/bin/python -c 'import fastapi, starlette, httpx, pydantic; \
		print(f"compat: FastAPI {fastapi.__version__}, Starlette {starlette.__version__}, " \
		f"httpx {httpx.__version__}, pydantic {pydantic.VERSION}")'
	$(COMPAT_VENV)/bin/pytest $(COMPAT_PYTEST_FLAGS) $(COMPAT_TESTS)
