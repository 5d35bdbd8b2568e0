#!/usr/bin/env bash
# Idempotent installer of the Autobahn testsuite (`wstest`, Python 2.7 only)
# into a private prefix: conformance/.autobahn/ (override with AUTOBAHN_PREFIX).
#
# Debian bookworm ships no Python 2.7, so python2.7 and the two libraries it
# needs that bookworm lacks (libssl1.1, libffi7) are downloaded from Debian
# bullseye with a private apt configuration and unpacked with `dpkg -x` into
# the prefix. Nothing is installed into the system except, when missing, a few
# ordinary bookworm packages (gcc, libc6-dev, python3-pip, ...).
#
# Every step records a stamp under $PREFIX/stamps/; a step whose stamp matches
# is skipped, so a second run only re-checks `wstest --help` (about a second).
#
# Result: $PREFIX/bin/wstest and $PREFIX/bin/python2.7 (wrappers that set
# LD_LIBRARY_PATH, PYTHONHOME and PYTHONUSERBASE).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PREFIX="${AUTOBAHN_PREFIX:-$HERE/.autobahn}"
REQS="$HERE/requirements-py2.txt"

PIP_VERSION=20.3.4
SETUPTOOLS_VERSION=44.1.1
WHEEL_VERSION=0.37.1
DEB_PKGS=(python2.7 python2.7-minimal libpython2.7-minimal libpython2.7-stdlib
          libssl1.1 libffi7 python2.7-dev libpython2.7-dev)
# bookworm packages providing the shared libraries that bullseye's python2.7
# stdlib extension modules link against (same sonames in bookworm).
RUNTIME_LIBS=(zlib1g libbz2-1.0 libexpat1 libsqlite3-0 libdb5.3 libncursesw6
              libtinfo6 libreadline8 libcrypt1)

export DEBIAN_FRONTEND=noninteractive

log() { echo "[conformance/install] $*" >&2; }
die() { echo "[conformance/install] ERROR: $*" >&2; exit 1; }

T0=$SECONDS

# ---------------------------------------------------------------------------
# System prerequisites (bookworm packages, installed only when missing)
# ---------------------------------------------------------------------------
APT_UPDATED=0
apt_install() {
    [[ $# -gt 0 ]] || return 0
    [[ $(id -u) -eq 0 ]] || die "need root to apt-get install: $*"
    if [[ $APT_UPDATED -eq 0 ]]; then
        log "apt-get update (system)"
        apt-get update -qq </dev/null >&2 || die "apt-get update failed"
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    apt-get install -y -qq --no-install-recommends "$@" </dev/null >&2 \
        || die "apt-get install $* failed"
}

deb_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

ensure_system_deps() {
    local missing=()
    command -v apt-get >/dev/null || die "apt-get not found (this installer targets Debian)"
    command -v dpkg >/dev/null || die "dpkg not found (this installer targets Debian)"
    command -v flock >/dev/null || missing+=(util-linux)
    command -v gcc >/dev/null || missing+=(gcc)
    [[ -e /usr/include/stdio.h ]] || missing+=(libc6-dev)
    command -v python3 >/dev/null || missing+=(python3)
    [[ -e /usr/share/keyrings/debian-archive-keyring.gpg ]] || missing+=(debian-archive-keyring)
    [[ -e /etc/ssl/certs/ca-certificates.crt ]] || missing+=(ca-certificates)
    local p
    for p in "${RUNTIME_LIBS[@]}"; do
        deb_installed "$p" || missing+=("$p")
    done
    apt_install "${missing[@]}"
    if ! python3 -m pip --version >/dev/null 2>&1; then
        apt_install python3-pip
    fi
}

# ---------------------------------------------------------------------------
# Stamps
# ---------------------------------------------------------------------------
stamp_ok() { [[ -f "$PREFIX/stamps/$1" && "$(cat "$PREFIX/stamps/$1")" == "$2" ]]; }
stamp_set() { mkdir -p "$PREFIX/stamps"; printf '%s' "$2" >"$PREFIX/stamps/$1"; }

# ---------------------------------------------------------------------------
# Step 1: python2.7 from Debian bullseye, unpacked into $PREFIX/root
# ---------------------------------------------------------------------------
detect_mirror() {
    # First ".../debian" URI of the machine's own apt sources (one-line or
    # deb822 format); the same host serves bullseye.
    local f uri=""
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [[ -r "$f" ]] || continue
        uri="$(grep -hE '^[[:space:]]*(deb[[:space:]]|URIs:)' "$f" 2>/dev/null \
               | grep -oE '(https?|file)://[^[:space:]]*/debian/?([[:space:]]|$)' \
               | head -n1 | tr -d '[:space:]' || true)"
        [[ -n "$uri" ]] && break
    done
    printf '%s' "${uri%/}"
}

APTDIR="$PREFIX/apt"
APT_OPTS=()
apt_private() {
    # apt-get with a private sources list, lists, cache and (empty) status:
    # never touches the system's package state.
    apt-get -q \
        -oDir::Etc::SourceList="$APTDIR/sources.list" \
        -oDir::Etc::SourceParts=/dev/null \
        -oDir::State::Lists="$APTDIR/lists" \
        -oDir::Cache="$APTDIR/cache" \
        -oDir::State::status="$APTDIR/status" \
        -oAcquire::IndexTargets::deb::DEP-11::DefaultEnabled=false \
        -oAcquire::Languages=none \
        -oAPT::Sandbox::User=root \
        -oAPT::Architecture="$ARCH" \
        "${APT_OPTS[@]}" "$@" </dev/null
}

install_python2() {
    local key="pkgs=${DEB_PKGS[*]};arch=$ARCH"
    if stamp_ok python2 "$key" && [[ -x "$ROOT/usr/bin/python2.7" ]]; then
        log "python2.7: already unpacked in $ROOT"
        return 0
    fi
    log "python2.7: fetching Debian bullseye packages into $PREFIX"
    rm -rf "$APTDIR"
    mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$APTDIR/debs"
    : >"$APTDIR/status"

    local signed="" mirrors=() m ok=0
    [[ -e /usr/share/keyrings/debian-archive-keyring.gpg ]] \
        && signed="[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
    if [[ -n "${BULLSEYE_MIRROR:-}" ]]; then
        mirrors+=("${BULLSEYE_MIRROR%/}")
    else
        m="$(detect_mirror)"
        [[ -n "$m" ]] && mirrors+=("$m")
        [[ "$m" == "http://deb.debian.org/debian" ]] || mirrors+=("http://deb.debian.org/debian")
        # bullseye moves to the archive once its LTS ends
        mirrors+=("http://archive.debian.org/debian")
    fi
    for m in "${mirrors[@]}"; do
        log "apt-get update (private, bullseye) from $m"
        echo "deb ${signed}$m bullseye main" >"$APTDIR/sources.list"
        APT_OPTS=()
        [[ "$m" == *archive.debian.org* ]] && APT_OPTS=(-oAcquire::Check-Valid-Until=false)
        rm -rf "$APTDIR/lists"; mkdir -p "$APTDIR/lists/partial"
        if apt_private update >"$APTDIR/update.log" 2>&1 \
            && compgen -G "$APTDIR/lists/*bullseye*_Packages*" >/dev/null; then
            ok=1
            break
        fi
        log "  failed (see below); trying next mirror"
        tail -n 5 "$APTDIR/update.log" >&2 || true
    done
    [[ $ok -eq 1 ]] || die "could not fetch the bullseye package lists (see $APTDIR/update.log)"

    log "apt-get download ${DEB_PKGS[*]}"
    (cd "$APTDIR/debs" && apt_private download "${DEB_PKGS[@]}") >"$APTDIR/download.log" 2>&1 \
        || { tail -n 20 "$APTDIR/download.log" >&2; die "apt-get download failed"; }

    log "unpacking with dpkg -x into $ROOT"
    rm -rf "$ROOT" "$ROOT.tmp"
    mkdir -p "$ROOT.tmp"
    local deb
    for deb in "$APTDIR"/debs/*.deb; do
        dpkg -x "$deb" "$ROOT.tmp"
    done
    mv "$ROOT.tmp" "$ROOT"
    # The .deb files and lists are no longer needed.
    rm -rf "$APTDIR/lists" "$APTDIR/cache"
    [[ -x "$ROOT/usr/bin/python2.7" ]] || die "python2.7 missing after unpacking"
    stamp_set python2 "$key"
}

# ---------------------------------------------------------------------------
# Wrappers: $PREFIX/bin/python2.7 and $PREFIX/bin/wstest
# ---------------------------------------------------------------------------
write_wrappers() {
    mkdir -p "$PREFIX/bin"
    cat >"$PREFIX/bin/python2.7.tmp" <<EOF
#!/usr/bin/env bash
# Generated by conformance/install.sh: runs the private (bullseye) python2.7.
P="\$(cd "\$(dirname "\${BASH_SOURCE[0]}")/.." && pwd)"
export LD_LIBRARY_PATH="\$P/root/usr/lib/$MA:\$P/root/lib/$MA\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export PYTHONHOME="\$P/root/usr"
export PYTHONUSERBASE="\$P/user"
export PYTHONWARNINGS="ignore:Python 2 is no longer supported"
export PIP_NO_PYTHON_VERSION_WARNING=1
unset PYTHONPATH PYTHONNOUSERSITE PYTHONSTARTUP PYTHONSAFEPATH PIP_REQUIRE_VIRTUALENV
exec "\$P/root/usr/bin/python2.7" "\$@"
EOF
    cat >"$PREFIX/bin/wstest.tmp" <<'EOF'
#!/usr/bin/env bash
# Generated by conformance/install.sh: Autobahn testsuite on the private python2.7.
B="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$B/python2.7" "$B/../user/bin/wstest" "$@"
EOF
    chmod +x "$PREFIX/bin/python2.7.tmp" "$PREFIX/bin/wstest.tmp"
    mv "$PREFIX/bin/python2.7.tmp" "$PREFIX/bin/python2.7"
    mv "$PREFIX/bin/wstest.tmp" "$PREFIX/bin/wstest"
}

# ---------------------------------------------------------------------------
# Step 2: pip 20.3.4 + pinned requirements into $PREFIX/user (PYTHONUSERBASE)
# ---------------------------------------------------------------------------
install_python_packages() {
    local key
    key="pip=$PIP_VERSION;setuptools=$SETUPTOOLS_VERSION;wheel=$WHEEL_VERSION;reqs=$(sha256sum <"$REQS" | cut -d' ' -f1);prefix=$PREFIX"
    if stamp_ok pip "$key" && [[ -f "$PREFIX/user/bin/wstest" ]]; then
        log "python packages: already installed (requirements unchanged)"
        return 0
    fi
    local PY2="$PREFIX/bin/python2.7"
    export PIP_CACHE_DIR="${PIP_CACHE_DIR:-$PREFIX/pip-cache}"
    export PIP_DISABLE_PIP_VERSION_CHECK=1

    # Start from an empty user site so nothing unpinned lingers.
    rm -rf "$PREFIX/user"
    local wheeldir="$PREFIX/wheels" whl
    mkdir -p "$wheeldir"
    whl="$(compgen -G "$wheeldir/pip-$PIP_VERSION-*.whl" | head -n1 || true)"
    if [[ -z "$whl" ]]; then
        log "downloading pip==$PIP_VERSION wheel with python3's pip"
        python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
            "pip==$PIP_VERSION" -d "$wheeldir" </dev/null >&2 \
            || die "python3 -m pip download pip==$PIP_VERSION failed"
        whl="$(compgen -G "$wheeldir/pip-$PIP_VERSION-*.whl" | head -n1 || true)"
        [[ -n "$whl" ]] || die "pip wheel not found in $wheeldir"
    fi

    log "bootstrapping pip==$PIP_VERSION setuptools==$SETUPTOOLS_VERSION wheel==$WHEEL_VERSION"
    "$PY2" "$whl/pip" install -q --user --no-warn-script-location --no-input \
        "pip==$PIP_VERSION" "setuptools==$SETUPTOOLS_VERSION" "wheel==$WHEEL_VERSION" </dev/null >&2 \
        || die "pip bootstrap failed"

    # wsaccel and zope.interface compile C extensions: point the compiler at the
    # unpacked headers (pyconfig.h includes <$MA/python2.7/pyconfig.h>).
    local inc="$ROOT/usr/include"
    export CFLAGS="-I$inc -I$inc/python2.7 -I$inc/$MA/python2.7${CFLAGS:+ $CFLAGS}"
    if ! command -v "$MA-gcc" >/dev/null 2>&1; then
        export CC="${CC:-gcc}" LDSHARED="${LDSHARED:-gcc -pthread -shared}"
    fi
    log "pip install -r $(basename "$REQS") (compiles wsaccel and zope.interface)"
    # --no-build-isolation: build with the pinned setuptools/wheel above rather
    # than whatever PEP 517 isolation would fetch.
    "$PY2" -m pip install -q --user --no-warn-script-location --no-input \
        --no-build-isolation -r "$REQS" </dev/null >&2 \
        || die "pip install -r $REQS failed"
    "$PY2" -m pip check >&2 || die "pip check reports broken requirements"

    # Every installed distribution must be pinned in requirements-py2.txt.
    local unpinned
    unpinned="$("$PY2" -m pip freeze --all --user 2>/dev/null | python3 -c '
import re, sys
norm = lambda s: re.sub(r"[-_.]+", "-", s).lower()
pins = set()
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if "==" in line:
        pins.add(norm(line.split("==")[0]) + "==" + line.split("==")[1].strip())
for line in sys.stdin:
    line = line.strip()
    if "==" in line and norm(line.split("==")[0]) + "==" + line.split("==")[1] not in pins:
        print(line)
' "$REQS")"
    [[ -z "$unpinned" ]] || die "installed but not pinned in $REQS: $(echo $unpinned)"
    stamp_set pip "$key"
}

# ---------------------------------------------------------------------------
main() {
    ensure_system_deps
    mkdir -p "$PREFIX"
    # Serialise concurrent runs on the same prefix.
    exec 9>"$PREFIX/.lock"
    flock 9

    ARCH="$(dpkg --print-architecture)"
    MA="$(gcc -print-multiarch 2>/dev/null || true)"
    if [[ -z "$MA" ]]; then
        case "$ARCH" in
            amd64) MA=x86_64-linux-gnu ;;
            arm64) MA=aarch64-linux-gnu ;;
            *) die "unsupported architecture $ARCH" ;;
        esac
    fi
    ROOT="$PREFIX/root"

    install_python2
    write_wrappers
    if ! "$PREFIX/bin/python2.7" -c 'import ssl, zlib, hashlib, ctypes, pyexpat, bz2'; then
        log "the unpacked python2.7 does not work; unpacking it again"
        rm -f "$PREFIX/stamps/python2" "$PREFIX/stamps/pip"
        install_python2
        "$PREFIX/bin/python2.7" -c 'import ssl, zlib, hashlib, ctypes, pyexpat, bz2' \
            || die "the unpacked python2.7 does not work (missing shared libraries?)"
    fi
    install_python_packages

    if ! "$PREFIX/bin/wstest" --help >/dev/null 2>"$PREFIX/wstest-help.err"; then
        cat "$PREFIX/wstest-help.err" >&2
        rm -f "$PREFIX/stamps/pip"
        die "wstest --help fails; rerun to reinstall the Python packages"
    fi
    log "ready: $PREFIX/bin/wstest ($("$PREFIX/bin/wstest" -a 2>/dev/null | tr '\n' ' ')) in $((SECONDS - T0))s"
}

main "$@"
