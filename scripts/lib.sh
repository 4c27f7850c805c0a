# shellcheck shell=bash
# Helpers shared by build-collector.sh and install-backends.sh (sourced, not run).
# The caller sets SCRIPT_NAME (for messages) and MACHINE_CACHE before sourcing.

die() { echo "$SCRIPT_NAME: $*" >&2; exit 1; }

# A platform tag that needs no Go (so the cached paths work without a toolchain).
# shellcheck disable=SC2034 # used by the scripts that source this file
platform="$(uname -s | tr '[:upper:]' '[:lower:]')-$(uname -m)"

# Go is only needed for a real build; say so in one line when it is missing or too old.
# $1 names what needs it ("the collector", "the backends").
go_checked=0
require_go() {
    [[ $go_checked == 1 ]] && return 0
    local what="$1" need="$GO_MIN_VERSION" have
    local hint="install it from your package manager (Debian: golang-go from trixie or bookworm-backports) or from go.dev/dl"
    command -v go >/dev/null 2>&1 || die "Go >= $need is required to build $what: $hint"
    have="$(GOTOOLCHAIN=local go env GOVERSION 2>/dev/null)" || die "Go >= $need is required to build $what: 'go env' failed; $hint"
    have="${have#go}"
    have="${have%% *}"
    if [[ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n1)" != "$need" ]]; then
        die "Go >= $need is required to build $what (found $have): $hint"
    fi
    # Never let an old local Go try to download a newer toolchain.
    export GOTOOLCHAIN=local
    go_checked=1
}

# Put a cached binary in place: hard link when on the same filesystem (no copy, no
# space), a copy otherwise; via a temporary name so a half-written file is never run.
install_binary() {
    local src="$1" dst="$2" tmp="$2.tmp.$$"
    mkdir -p "$(dirname "$dst")"
    ln -f "$src" "$tmp" 2>/dev/null || cp -f "$src" "$tmp"
    mv -f "$tmp" "$dst"
}

# Save into the machine-level cache; a failure here (read-only HOME, full disk) only
# costs the next clone a rebuild, so it warns instead of failing the build.
save_to_machine_cache() {
    local src="$1" dir="$2" name="$3" tmp
    [[ -x "$dir/$name" ]] && return 0
    if mkdir -p "$MACHINE_CACHE" 2>/dev/null && tmp="$(mktemp -d "$MACHINE_CACHE/.tmp.XXXXXX" 2>/dev/null)"; then
        if cp -f "$src" "$tmp/$name" && chmod 0755 "$tmp" && mv -T "$tmp" "$dir" 2>/dev/null; then
            return 0
        fi
        rm -rf "$tmp"
        [[ -x "$dir/$name" ]] && return 0 # another build won the race: same key, same content
    fi
    echo "$SCRIPT_NAME: warning: could not save $name to the machine cache $MACHINE_CACHE" >&2
}
