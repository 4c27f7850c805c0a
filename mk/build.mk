# Build-side targets, included from the top Makefile (`include mk/build.mk`).
# Everything is built from source on this machine and pinned in scripts/versions.env;
# the scripts own the caching (.cache/ and the machine-level cache), so these targets
# are phony and a second run is a no-op that takes well under a second.
#   make collector    -> .cache/bin/otelcol-audit   (ocb, collector-config/builder-config.yaml)
#   make backends     -> .cache/bin/victoria-logs, .cache/bin/jaeger
#   make telemetrygen -> .cache/bin/telemetrygen
#   make tools        -> all three
# Set OTEL_AUDIT_BUILD_CACHE to move the machine-level cache (default ~/.cache/otel-audit).

# Resolved at include time, so the targets work whatever folder make runs from.
OTEL_AUDIT_BUILD_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)
# Which backends `make backends` installs; a subset can be asked for on the command line,
# e.g. `make backends OTEL_AUDIT_BACKENDS=victoria-logs`.
OTEL_AUDIT_BACKENDS ?= victoria-logs jaeger

.PHONY: collector backends telemetrygen tools

collector:
	@bash $(OTEL_AUDIT_BUILD_ROOT)/scripts/build-collector.sh

backends:
	@bash $(OTEL_AUDIT_BUILD_ROOT)/scripts/install-backends.sh $(OTEL_AUDIT_BACKENDS)

telemetrygen:
	@bash $(OTEL_AUDIT_BUILD_ROOT)/scripts/install-backends.sh telemetrygen

tools: collector backends telemetrygen
