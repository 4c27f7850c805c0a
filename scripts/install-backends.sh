#!/usr/bin/env bash
# Install pinned Go programs the tests and benchmarks run, from the Go module proxy,
# into .cache/bin/<name>:
#   victoria-logs    VictoriaLogs single-node server          (VICTORIALOGS_VERSION)
#   jaeger           Jaeger v2 (traces backend, memory store) (JAEGER_VERSION)
#   telemetrygen     OpenTelemetry load generator             (TELEMETRYGEN_VERSION)
# Usage: scripts/install-backends.sh [name...]   (default: victoria-logs jaeger)
#
# How a program is built: its go.mod at the pin is read first (`go mod download -json`).
# Without `replace` lines it is `go install module/pkg@version`. With them, `go install
# pkg@version` refuses the module, so the module's source tree (the zip the module proxy
# serves, copied out of the module cache) is built with `go build -mod=mod`, which
# honours the replace lines. Both only ever fetch from the module proxy.
#
# Caching, so that a second run builds nothing: the key is name + version (+ recipe
# revision and platform); .cache/tools/<name>.key records the key of .cache/bin/<name>,
# and ${OTEL_AUDIT_BUILD_CACHE:-$HOME/.cache/otel-audit}/<key>/<name> keeps a
# machine-level copy that fresh clones on the same machine link instead of rebuilding.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source-path=SCRIPTDIR source=versions.env
source "$ROOT/scripts/versions.env"

BIN_DIR="$ROOT/.cache/bin"
STAMP_DIR="$ROOT/.cache/tools"
MACHINE_CACHE="${OTEL_AUDIT_BUILD_CACHE:-$HOME/.cache/otel-audit}"
# VictoriaMetrics programs print this variable for -version; the release Makefiles set it
# the same way.
VM_BUILDINFO="github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version"

SCRIPT_NAME=install-backends
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$ROOT/scripts/lib.sh"
now_ns() { date +%s%N; }
seconds_since() { awk -v s="$1" -v e="$(now_ns)" 'BEGIN { printf "%.2f", (e - s) / 1e9 }'; }

# name -> module, package inside the module, version, extra -ldflags.
describe() {
    case "$1" in
    victoria-logs)
        module=github.com/VictoriaMetrics/VictoriaLogs
        pkg=./app/victoria-logs
        version="$VICTORIALOGS_VERSION"
        ldflags="-X $VM_BUILDINFO=victoria-logs-$version"
        ;;
    jaeger)
        # The module keeps its v1 tags; the v2 binary reports the v2 release it belongs
        # to (`jaeger version`), as upstream's build-jaeger target sets it.
        module=github.com/jaegertracing/jaeger
        pkg=./cmd/jaeger
        version="$JAEGER_VERSION"
        ldflags="-X github.com/jaegertracing/jaeger/internal/version.latestVersion=v$JAEGER_RELEASE"
        ;;
    telemetrygen)
        module=github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen
        pkg=.
        version="v$TELEMETRYGEN_VERSION"
        ldflags=""
        ;;
    *) die "unknown program '$1' (known: victoria-logs jaeger telemetrygen)" ;;
    esac
}

# A top-level string field of `go mod download -json` output (paths need no unescaping).
json_field() { sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}\$/\1/p" <<<"$2" | head -n1; }

# Build $module@$version's $pkg into $1 (a file path).
build_from_proxy() {
    local out="$1" info err gomod dir src
    require_go "the backends"
    # Reads the go.mod (and fetches the source zip) from the module proxy.
    info="$(go mod download -json "$module@$version" 2>&1)" || true
    err="$(json_field Error "$info")"
    gomod="$(json_field GoMod "$info")"
    dir="$(json_field Dir "$info")"
    err="${err//\\n/ }"  # the JSON escapes of the proxy's multi-line message
    err="${err//\\t/}"
    if [[ -n "$err" || ! -f "$gomod" || ! -d "$dir" ]]; then
        die "$module@$version is not available from the Go module proxy (GOPROXY=$(go env GOPROXY)): ${err:-$info}"
    fi
    local flags=(-trimpath -ldflags "-s -w $ldflags")
    if grep -Eq '^[[:space:]]*replace([[:space:]]|\()' "$gomod"; then
        # A replace to a local path cannot be satisfied from the proxy at all.
        if grep -Eq '=>[[:space:]]*(\.|/)' "$gomod"; then
            die "$module@$version replaces a module with a local path; it cannot be built from the module proxy"
        fi
        echo "$name: go.mod at $version has replace lines; building inside the module source"
        src="$ROOT/.cache/tools/src/$name-$version"
        rm -rf "$src"
        mkdir -p "$src"
        cp -R "$dir/." "$src/"
        chmod -R u+w "$src" # the module cache is read-only
        (cd "$src" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build "${flags[@]}" -o "$out" "$pkg")
        rm -rf "$src"
    else
        local gobin target="$module"
        [[ "$pkg" == "." ]] || target="$module/${pkg#./}"
        gobin="$(mktemp -d "$STAMP_DIR/gobin.XXXXXX")"
        GOBIN="$gobin" GOFLAGS=-mod=mod CGO_ENABLED=0 go install "${flags[@]}" "$target@$version"
        mv -f "$gobin/$(basename "$target")" "$out"
        rm -rf "$gobin"
    fi
}

install_one() {
    local name="$1" module pkg version ldflags key machine_dir start dest stamp
    describe "$name"
    start="$(now_ns)"
    dest="$BIN_DIR/$name"
    stamp="$STAMP_DIR/$name.key"
    key="$name-$version-$platform-r$BUILD_RECIPE_REV"
    machine_dir="$MACHINE_CACHE/$key"

    if [[ -x "$dest" && "$(cat "$stamp" 2>/dev/null)" == "$key" ]]; then
        echo "$name: up to date ($key), $(seconds_since "$start")s"
        return 0
    fi
    if [[ -x "$machine_dir/$name" ]]; then
        install_binary "$machine_dir/$name" "$dest"
        echo "$key" >"$stamp"
        echo "$name: reused the machine cache $machine_dir, $(seconds_since "$start")s"
        return 0
    fi

    echo "$name: building $module@$version (cold builds take minutes)"
    local out="$STAMP_DIR/$name.new"
    rm -f "$out"
    build_from_proxy "$out"
    save_to_machine_cache "$out" "$machine_dir" "$name"
    if [[ -x "$machine_dir/$name" ]]; then
        install_binary "$machine_dir/$name" "$dest"
        rm -f "$out"
    else
        mv -f "$out" "$dest"
    fi
    echo "$key" >"$stamp"
    echo "$name: built $dest ($key) in $(seconds_since "$start")s"
}

mkdir -p "$BIN_DIR" "$STAMP_DIR"

if [[ $# -eq 0 ]]; then
    set -- victoria-logs jaeger
fi
# Install every requested program even if one fails, then report all failures.
failed=()
for name in "$@"; do
    # A subshell, so that a failure in one program does not stop the others; not in an
    # `if` condition, because bash ignores `set -e` inside conditions.
    set +e
    (
        set -e
        # Two runs in one clone must not build the same program at once; a lock per
        # program, so that a cold Jaeger build does not hold up a VictoriaLogs install.
        exec 9>"$STAMP_DIR/.lock-$name"
        flock 9
        install_one "$name"
    )
    rc=$?
    set -e
    [[ $rc == 0 ]] || failed+=("$name")
done
if [[ ${#failed[@]} -gt 0 ]]; then
    die "failed: ${failed[*]}"
fi
