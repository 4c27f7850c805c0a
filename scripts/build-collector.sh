#!/usr/bin/env bash
# Build the otelcol-audit collector distribution with the official OpenTelemetry
# Collector Builder (ocb) from collector-config/builder-config.yaml, into
# .cache/bin/otelcol-audit.
#
# Caching, so that a second run builds nothing:
#   - the build is keyed by a hash of the manifest, the sources of the local components
#     it builds from collector-components/ (not their tests), the builder version, this
#     recipe's revision and the platform; .cache/otelcol-audit/key records the key of
#     the binary in .cache/bin, and a matching key means there is nothing to do;
#   - a machine-level copy lives in ${OTEL_AUDIT_BUILD_CACHE:-$HOME/.cache/otel-audit}/<key>/,
#     so a fresh clone on the same machine (CI clones fresh) links it instead of
#     spending minutes in the Go compiler.
# The fast paths do not need Go at all; only a real build does.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source-path=SCRIPTDIR source=versions.env
source "$ROOT/scripts/versions.env"

MANIFEST="collector-config/builder-config.yaml"
BIN_DIR="$ROOT/.cache/bin"
WORK_DIR="$ROOT/.cache/otelcol-audit"
DEST="$BIN_DIR/otelcol-audit"
MACHINE_CACHE="${OTEL_AUDIT_BUILD_CACHE:-$HOME/.cache/otel-audit}"
BUILDER_MODULE="go.opentelemetry.io/collector/cmd/builder"
BUILDER_VERSION="v$OTELCOL_VERSION"

start_ns=$(date +%s%N)
elapsed() { # seconds since start, with two decimals: the brief asks for build timings
    awk -v s="$start_ns" -v e="$(date +%s%N)" 'BEGIN { printf "%.2f", (e - s) / 1e9 }'
}
SCRIPT_NAME=build-collector
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$ROOT/scripts/lib.sh"

# Refuse a manifest whose versions drift from the single pin in versions.env: every
# component must come from the same collector release.
check_manifest_pins() {
    local line version bad=0
    while IFS= read -r line; do
        version="${line##* }"
        if [[ "$version" != "v$OTELCOL_VERSION" && "$version" != "v$OTELCOL_STABLE_VERSION" ]]; then
            echo "build-collector: $MANIFEST: '$line' is not pinned to v$OTELCOL_VERSION (or v$OTELCOL_STABLE_VERSION for stable core modules)" >&2
            bad=1
        fi
    done < <(sed -n 's/^[[:space:]]*-\{0,1\}[[:space:]]*gomod:[[:space:]]*//p' "$MANIFEST" | sed 's/[[:space:]]*$//')
    [[ $bad == 0 ]] || exit 1
}

check_manifest_pins

# The local components' files that end up in the binary: Go sources and module files,
# not tests or test data (a new fuzz corpus entry must not cost a rebuild), one
# "<sha256>  <path>" line each, in a fixed order.
component_sources() {
    find collector-components -type f \( -name go.mod -o -name go.sum -o \( -name '*.go' ! -name '*_test.go' \) \) \
        ! -path '*/testdata/*' -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
}

# The cache key: what decides the binary's content.
key="otelcol-audit-$({
    cat "$MANIFEST"
    component_sources
    echo "builder=$BUILDER_MODULE@$BUILDER_VERSION"
    echo "recipe=$BUILD_RECIPE_REV"
    echo "platform=$platform"
} | sha256sum | cut -c1-16)"
machine_dir="$MACHINE_CACHE/$key"

mkdir -p "$WORK_DIR" "$BIN_DIR"
# Two `make collector` runs in one clone must not build into the same folder at once.
exec 9>"$WORK_DIR/.lock"
flock 9

if [[ -x "$DEST" && "$(cat "$WORK_DIR/key" 2>/dev/null)" == "$key" ]]; then
    echo "otelcol-audit: up to date ($key), $(elapsed)s"
    exit 0
fi

if [[ -x "$machine_dir/otelcol-audit" ]]; then
    install_binary "$machine_dir/otelcol-audit" "$DEST"
    echo "$key" >"$WORK_DIR/key"
    echo "otelcol-audit: reused the machine cache $machine_dir, $(elapsed)s"
    exit 0
fi

require_go "the collector"
# Never let an old local Go try to download a newer toolchain: fail with the message above.
export GOTOOLCHAIN=local

# The builder is a small Go program; keep it per version in the machine cache too.
builder_dir="$MACHINE_CACHE/ocb-$BUILDER_VERSION-$platform-r$BUILD_RECIPE_REV"
builder="$builder_dir/builder"
if [[ ! -x "$builder" ]]; then
    echo "otelcol-audit: installing the builder $BUILDER_MODULE@$BUILDER_VERSION"
    gobin="$(mktemp -d "$WORK_DIR/gobin.XXXXXX")"
    GOBIN="$gobin" go install "$BUILDER_MODULE@$BUILDER_VERSION"
    save_to_machine_cache "$gobin/builder" "$builder_dir" builder
    if [[ ! -x "$builder" ]]; then # no machine cache: use it from the work folder
        builder="$WORK_DIR/builder-$BUILDER_VERSION"
        mv -f "$gobin/builder" "$builder"
    fi
    rm -rf "$gobin"
fi

# ocb writes sources and the binary to dist.output_path (relative to this folder).
output_path="$(sed -n 's/^[[:space:]]*output_path:[[:space:]]*//p' "$MANIFEST" | sed 's/[[:space:]]*$//')"
dist_name="$(sed -n 's/^[[:space:]]*name:[[:space:]]*//p' "$MANIFEST" | head -n1 | sed 's/[[:space:]]*$//')"
[[ "$output_path" == ./.cache/* ]] || die "$MANIFEST: dist.output_path must be under ./.cache/ (got '$output_path')"
[[ -n "$dist_name" ]] || die "$MANIFEST: dist.name is missing"
# Start from an empty output folder so no generated file of an older manifest survives.
rm -rf "$output_path"
mkdir -p "$(dirname "$output_path")"

echo "otelcol-audit: building with ocb $BUILDER_VERSION (cold builds take minutes; log: $WORK_DIR/build.log)"
# -mod=mod: the generated module resolves and records its dependencies itself.
# --skip-strict-versioning=false: fail if any component drags in another core release.
# CGO_ENABLED=0 is what ocb sets anyway; the official releases are static binaries too.
if ! GOFLAGS=-mod=mod CGO_ENABLED=0 "$builder" \
    --config "$MANIFEST" \
    --skip-compilation=false \
    --skip-strict-versioning=false >"$WORK_DIR/build.log" 2>&1; then
    tail -n 40 "$WORK_DIR/build.log" >&2
    die "ocb failed after $(elapsed)s (full log: $WORK_DIR/build.log)"
fi

built="$output_path/$dist_name"
[[ -x "$built" ]] || die "ocb finished but $built is missing (see $WORK_DIR/build.log)"
save_to_machine_cache "$built" "$machine_dir" otelcol-audit
if [[ -x "$machine_dir/otelcol-audit" ]]; then
    install_binary "$machine_dir/otelcol-audit" "$DEST"
else
    install_binary "$built" "$DEST"
fi
echo "$key" >"$WORK_DIR/key"
echo "otelcol-audit: built $DEST ($key) in $(elapsed)s"
