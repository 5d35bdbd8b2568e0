#!/usr/bin/env bash
# The chat example's page in headless Debian Chromium, driven by
# playwright-core (which never downloads a browser of its own).
# Installs what it needs on a fresh Debian machine, starts the chat example
# on a free loopback port, runs chat.test.mjs against it, stops the server.
#
#   bash examples/browser/run.sh            # screenshots in examples/browser/screenshots/
#   SCREENSHOT_DIR=/tmp/shots bash examples/browser/run.sh
#   CHAT_BIN=/path/to/chat bash examples/browser/run.sh   # test another build
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else echo "browser test: need root (or sudo) to run: $*" >&2; exit 1
    fi
}

if [ ! -x /usr/bin/chromium ]; then
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi
(cd "$here" && npm ci --no-audit --no-fund)

if [ -z "${CHAT_BIN:-}" ]; then
    (cd "$root" && cargo build --release -p wsroute-examples --example chat)
    CHAT_BIN="$root/target/release/examples/chat"
fi

work="$(mktemp -d)"
server=""
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# Port 0: the kernel picks a free port, and the example prints which.
"$CHAT_BIN" --addr 127.0.0.1:0 >"$work/server.out" 2>"$work/server.err" &
server=$!
url=""
for _ in $(seq 100); do
    url="$(sed -n 's|^chat on \(http://[^ ]*\)$|\1|p' "$work/server.out")"
    [ -n "$url" ] && break
    kill -0 "$server" 2>/dev/null || { cat "$work/server.err" >&2; echo "browser test: the chat server exited" >&2; exit 1; }
    sleep 0.1
done
[ -n "$url" ] || { echo "browser test: the chat server printed no address in 10 s" >&2; exit 1; }
echo "chat server at $url (pid $server)"

status=0
CHAT_URL="$url" SCREENSHOT_DIR="${SCREENSHOT_DIR:-$here/screenshots}" \
    timeout --kill-after=10 120 node "$here/chat.test.mjs" || status=$?
if [ "$status" = 124 ]; then echo "browser test: FAILED, over the 120 s limit" >&2; fi
if [ -s "$work/server.err" ]; then echo "--- chat server stderr:"; cat "$work/server.err"; fi
exit "$status"
