#!/usr/bin/env bash
# The chat example's page in headless Debian Chromium, driven by
# playwright-core (which never downloads a browser of its own).
# Installs what it needs on a fresh Debian machine (chromium, redis-server),
# starts on free loopback ports one chat node alone, a redis-server with
# two chat nodes sharing it (--redis), and the TLS example; runs
# chat.test.mjs and tls.test.mjs against them, and stops them all however
# it ends.
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

missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
command -v redis-server >/dev/null || missing="$missing redis-server"
if [ -n "$missing" ]; then
    as_root apt-get update
    # shellcheck disable=SC2086
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y $missing
fi
(cd "$here" && npm ci --no-audit --no-fund)

if [ -z "${CHAT_BIN:-}" ]; then
    (cd "$root" && cargo build --release -p wsroute-examples --example chat --example tls)
    CHAT_BIN="$root/target/release/examples/chat"
    TLS_BIN="$root/target/release/examples/tls"
fi
TLS_BIN="${TLS_BIN:-$(dirname "$CHAT_BIN")/tls}"

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# Redis on a free loopback port (asked of the kernel, then released: a
# port taken in between makes redis-server exit, and we try another),
# keeping nothing on disk.
redis_url=""
for _ in 1 2 3; do
    port="$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')"
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
        --dir "$work" >"$work/redis.out" 2>&1 &
    redis=$!
    pids+=("$redis")
    for _ in $(seq 50); do
        if grep -q "Ready to accept connections" "$work/redis.out"; then redis_url="redis://127.0.0.1:$port"; break; fi
        kill -0 "$redis" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$redis_url" ] && break
done
[ -n "$redis_url" ] || { cat "$work/redis.out" >&2; echo "browser test: redis-server did not start" >&2; exit 1; }
echo "redis-server at $redis_url (pid $redis)"

# start_chat NAME [ARGS...]: a chat node on a free port (port 0: the kernel
# picks, the example prints which); sets $url.
start_chat() {
    local name="$1"; shift
    "$CHAT_BIN" --addr 127.0.0.1:0 "$@" >"$work/$name.out" 2>"$work/$name.err" &
    local pid=$!
    pids+=("$pid")
    url=""
    for _ in $(seq 100); do
        url="$(sed -n 's|^chat on \(http://[^ ]*\).*$|\1|p' "$work/$name.out")"
        [ -n "$url" ] && break
        kill -0 "$pid" 2>/dev/null || { cat "$work/$name.err" >&2; echo "browser test: chat $name exited" >&2; exit 1; }
        sleep 0.1
    done
    [ -n "$url" ] || { echo "browser test: chat $name printed no address in 10 s" >&2; exit 1; }
    echo "chat $name at $url (pid $pid)"
}
# The TLS example with a certificate made at start-up, on a free port.
"$TLS_BIN" --self-signed --addr 127.0.0.1:0 >"$work/tls.out" 2>"$work/tls.err" &
pids+=("$!")
url_tls=""
for _ in $(seq 100); do
    url_tls="$(sed -n 's|^serving \(https://[^ ]*\) .*$|\1|p' "$work/tls.out")"
    [ -n "$url_tls" ] && break
    sleep 0.1
done
[ -n "$url_tls" ] || { cat "$work/tls.err" >&2; echo "browser test: the TLS example printed no address in 10 s" >&2; exit 1; }
echo "tls example at $url_tls"

start_chat alone; url_alone="$url"
start_chat node-a --redis "$redis_url"; url_a="$url"
start_chat node-b --redis "$redis_url"; url_b="$url"

status=0
CHAT_URL="$url_alone" CHAT_URL_A="$url_a" CHAT_URL_B="$url_b" SCREENSHOT_DIR="${SCREENSHOT_DIR:-$here/screenshots}" \
    timeout --kill-after=10 120 node "$here/chat.test.mjs" || status=$?
if [ "$status" = 124 ]; then echo "browser test: FAILED, over the 120 s limit" >&2; fi
tls_status=0
TLS_URL="$url_tls" timeout --kill-after=10 60 node "$here/tls.test.mjs" || tls_status=$?
if [ "$tls_status" = 124 ]; then echo "browser test: TLS FAILED, over the 60 s limit" >&2; fi
[ "$status" = 0 ] && status="$tls_status"
for name in alone node-a node-b tls; do
    if [ -s "$work/$name.err" ]; then echo "--- chat $name stderr:"; cat "$work/$name.err"; fi
done
exit "$status"
