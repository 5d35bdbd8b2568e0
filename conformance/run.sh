#!/usr/bin/env bash
# Autobahn WebSocket conformance run (wstest fuzzingclient, cases 1.* - 13.*:
# all 517, permessage-deflate's 12.* and 13.* included).
#
#   bash conformance/run.sh
#
# By default builds and starts the project's echo example, runs wstest against
# it, stops it, and summarises conformance/reports/<mode>/index.json.
#
# Environment:
#   WS_URL           test an already-running server (ws://host:port/path); no build/start
#   CARGO_FEATURES   passed to the cargo build as --features (e.g. wsroute/enforce-ws-spec)
#   PORT             port for the echo example (default 9001, or a free one if taken)
#   WSTEST_TIMEOUT   seconds before wstest is killed (default 900)
#   CONFORMANCE_MODE name of the report folder (default: "default", the features, or "external")
#   CASES            space-separated case patterns (default "1.* 2.* ... 13.*")
#   EXCLUDE_CASES    space-separated case patterns to skip (none by default)
#   AGENT            agent name in the reports (default wsroute)
#
# Exit status 0 only if every expected case is OK/INFORMATIONAL in both
# behavior and behaviorClose, wstest finished in time and the server survived.
# The last line printed is "N passed, M failed".
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
PREFIX="${AUTOBAHN_PREFIX:-$HERE/.autobahn}"

log() { echo "[conformance] $*" >&2; }
die() { echo "[conformance] ERROR: $*" >&2; exit 1; }

WSTEST_TIMEOUT="${WSTEST_TIMEOUT:-900}"
AGENT="${AGENT:-wsroute}"
CASES="${CASES:-1.* 2.* 3.* 4.* 5.* 6.* 7.* 8.* 9.* 10.* 12.* 13.*}"
EXCLUDE_CASES="${EXCLUDE_CASES:-}"
[[ "$WSTEST_TIMEOUT" =~ ^[0-9]+$ ]] || die "WSTEST_TIMEOUT must be a number of seconds"

if [[ -n "${CONFORMANCE_MODE:-}" ]]; then
    MODE="$CONFORMANCE_MODE"
elif [[ -n "${WS_URL:-}" ]]; then
    MODE=external
elif [[ -n "${CARGO_FEATURES:-}" ]]; then
    MODE="$(printf '%s' "$CARGO_FEATURES" | tr -cs 'A-Za-z0-9_.-' '-' | sed 's/^-*//; s/-*$//')"
else
    MODE=default
fi
[[ "$MODE" =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad report folder name '$MODE'"
OUT="$HERE/reports/$MODE"

# --- 1. the testsuite --------------------------------------------------------
bash "$HERE/install.sh" </dev/null
WSTEST="$PREFIX/bin/wstest"
PY2="$PREFIX/bin/python2.7"

rm -rf "$OUT"
mkdir -p "$OUT"

# --- 2. the server ------------------------------------------------------------
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ -n "${WSTEST_PID:-}" ]] && kill -0 "$WSTEST_PID" 2>/dev/null; then
        kill "$WSTEST_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
port_free() {
    python3 -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)' "$1"
}

SERVER_STARTED=1
if [[ -n "${WS_URL:-}" ]]; then
    log "using the running server at $WS_URL (no build)"
    read -r HOST PORT < <(python3 -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1])
if p.scheme not in ("ws", "wss") or not p.hostname:
    sys.exit("WS_URL must look like ws://host:port/path")
print(p.hostname, p.port or (443 if p.scheme == "wss" else 80))' "$WS_URL") \
        || die "bad WS_URL '$WS_URL'"
    if ! port_open "$HOST" "$PORT"; then
        log "nothing accepts connections at $HOST:$PORT"
        SERVER_STARTED=0
    fi
else
    FEATURE_ARGS=()
    [[ -n "${CARGO_FEATURES:-}" ]] && FEATURE_ARGS=(--features "$CARGO_FEATURES")
    log "cargo build --release -p wsroute-examples --example echo ${FEATURE_ARGS[*]}"
    (cd "$REPO" && cargo build --release -p wsroute-examples --example echo "${FEATURE_ARGS[@]}" \
        --message-format=json-render-diagnostics </dev/null >"$OUT/cargo-build.json") \
        || die "cargo build of the echo example failed"
    ECHO_BIN="$(python3 -c 'import json, sys
exe = None
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "echo":
        exe = m["executable"]
print(exe or "")' "$OUT/cargo-build.json")"
    [[ -n "$ECHO_BIN" && -x "$ECHO_BIN" ]] || die "cargo build did not report an 'echo' executable"

    HOST=127.0.0.1
    if [[ -n "${PORT:-}" ]]; then
        port_free "$PORT" || die "PORT=$PORT is already in use"
    elif port_free 9001; then
        PORT=9001
    else
        PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    fi
    WS_URL="ws://$HOST:$PORT"
    log "starting ${ECHO_BIN#"$REPO/"} --addr $HOST:$PORT (log: ${OUT#"$REPO/"}/server.log)"
    "$ECHO_BIN" --addr "$HOST:$PORT" </dev/null >"$OUT/server.log" 2>&1 &
    SERVER_PID=$!
    deadline=$((SECONDS + 30))
    until port_open "$HOST" "$PORT"; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            wait "$SERVER_PID" && rc=0 || rc=$?
            log "the echo server exited (status $rc) before accepting connections:"
            tail -n 20 "$OUT/server.log" >&2 || true
            SERVER_STARTED=0
            break
        fi
        if (( SECONDS >= deadline )); then
            log "the echo server did not accept connections on $HOST:$PORT within 30s"
            SERVER_STARTED=0
            break
        fi
        sleep 0.1
    done
fi

# --- 3. spec + expected cases -----------------------------------------------------
python3 - "$OUT" "$AGENT" "$WS_URL" "$CASES" "$EXCLUDE_CASES" >"$OUT/spec.json" <<'PY'
import json, sys
outdir, agent, url, cases, exclude = sys.argv[1:6]
print(json.dumps({
    "outdir": outdir,
    "servers": [{"agent": agent, "url": url}],
    "cases": cases.split(),
    "exclude-cases": exclude.split(),
    "exclude-agent-cases": {},
    "options": {"failByDrop": False, "openHandshakeTimeout": 10},
}, indent=2))
PY

# The expected case ids, from wstest's own case list and pattern matching.
"$PY2" - "$OUT/spec.json" >"$OUT/expected.json" <<'PY' || die "could not compute the expected case list"
import json, sys
from autobahntestsuite.caseset import CaseSet
from autobahntestsuite.case import Cases, CaseCategories, CaseSubCategories, CaseSetname, CaseBasename
spec = json.load(open(sys.argv[1]))
cs = CaseSet(CaseSetname, CaseBasename, Cases, CaseCategories, CaseSubCategories)
print(json.dumps(cs.parseSpecCases(spec)))
PY
python3 -c 'import json, sys; sys.exit(0 if json.load(open(sys.argv[1])) else 1)' "$OUT/expected.json" \
    || die "no test case matches CASES='$CASES' (minus EXCLUDE_CASES)"

# --- 4. wstest ------------------------------------------------------------------
WSTEST_RC=0
if [[ $SERVER_STARTED -eq 1 ]]; then
    log "wstest -m fuzzingclient against $WS_URL: cases $CASES (timeout ${WSTEST_TIMEOUT}s, log: ${OUT#"$REPO/"}/wstest.log)"
    T0=$SECONDS
    (cd "$OUT" && PYTHONUNBUFFERED=1 exec timeout --kill-after=10 "$WSTEST_TIMEOUT" \
        "$WSTEST" -m fuzzingclient -s "$OUT/spec.json" </dev/null >"$OUT/wstest.log" 2>&1) &
    WSTEST_PID=$!
    wait "$WSTEST_PID" && WSTEST_RC=0 || WSTEST_RC=$?
    WSTEST_PID=""
    log "wstest finished in $((SECONDS - T0))s with status $WSTEST_RC"
    if [[ $WSTEST_RC -ne 0 ]]; then
        tail -n 15 "$OUT/wstest.log" >&2 || true
    fi
fi

SERVER_ALIVE=1
if [[ $SERVER_STARTED -eq 1 ]]; then
    if [[ -n "$SERVER_PID" ]] && ! kill -0 "$SERVER_PID" 2>/dev/null; then
        wait "$SERVER_PID" && rc=0 || rc=$?
        log "the echo server died during the run (exit status $rc); last lines of server.log:"
        tail -n 20 "$OUT/server.log" >&2 || true
        SERVER_ALIVE=0
    elif ! port_open "$HOST" "$PORT"; then
        log "the server no longer accepts connections at $HOST:$PORT"
        SERVER_ALIVE=0
    fi
fi
cleanup
SERVER_PID=""

# --- 5. summary -------------------------------------------------------------------
set +e
python3 - "$OUT" "$AGENT" "$WS_URL" "$MODE" "$SERVER_STARTED" "$SERVER_ALIVE" "$WSTEST_RC" "$WSTEST_TIMEOUT" <<'PY'
import collections, json, os, re, sys

outdir, agent, url, mode = sys.argv[1:5]
started, alive, wstest_rc, timeout_s = (int(x) for x in sys.argv[5:9])
GOOD = ("OK", "INFORMATIONAL")
BEHAVIORS = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]
key = lambda cid: tuple(int(p) for p in cid.split("."))

expected = sorted(json.load(open(os.path.join(outdir, "expected.json"))), key=key)
results = {}
index = os.path.join(outdir, "index.json")
if os.path.exists(index):
    try:
        data = json.load(open(index))
        results = data.get(agent) or (next(iter(data.values())) if len(data) == 1 else {})
    except (ValueError, StopIteration) as e:
        print("could not parse %s: %s" % (index, e))

groups = collections.OrderedDict()
for cid in expected:
    groups.setdefault(cid.split(".")[0], []).append(cid)

problems = []
passed = failed = 0
beh_total = collections.Counter()
close_total = collections.Counter()
rows = []
for g, ids in groups.items():
    c = collections.Counter()
    for cid in ids:
        r = results.get(cid)
        if r is None:
            c["MISSING"] += 1
            beh_total["MISSING"] += 1
            failed += 1
            problems.append((cid, "MISSING", "-", "no result (wstest stopped early or the server died)"))
            continue
        b, bc = r.get("behavior", "?"), r.get("behaviorClose", "?")
        c[b if b in BEHAVIORS else "other"] += 1
        beh_total[b] += 1
        close_total[bc] += 1
        if bc not in GOOD:
            c["close!OK"] += 1
        if b in GOOD and bc in GOOD:
            passed += 1
        else:
            failed += 1
            detail = "remoteCloseCode=%s" % r.get("remoteCloseCode")
            if r.get("reportfile"):
                detail += "  report: %s" % r["reportfile"].replace(".json", ".html")
            problems.append((cid, b, bc, detail))
    rows.append([g, len(ids)] + [c[b] for b in BEHAVIORS] + [c["other"], c["MISSING"], c["close!OK"]])

print()
print("Autobahn fuzzingclient results: %s (%s), report: %s" % (
    url, mode, os.path.relpath(os.path.join(outdir, "index.html"))))
hdr = ["group", "cases"] + BEHAVIORS + ["other", "MISSING", "close!OK"]
tot = ["all", len(expected)] + [sum(r[i] for r in rows) for i in range(2, len(hdr))]
w = [max(len(str(x)) for x in col) for col in zip(hdr, tot, *rows)]
for r in [hdr] + rows + [tot]:
    print("  " + "  ".join(str(x).rjust(n) for x, n in zip(r, w)))
print("behavior:      " + ", ".join("%s=%d" % kv for kv in sorted(beh_total.items())))
print("behaviorClose: " + ", ".join("%s=%d" % kv for kv in sorted(close_total.items())))
extra = sorted(set(results) - set(expected), key=key)
if extra:
    print("note: %d results for cases outside the expected list were ignored" % len(extra))

fatal = []
if not started:
    fatal.append("the server never accepted connections at %s" % url)
if wstest_rc == 124 or wstest_rc == 137:
    fatal.append("wstest timed out after %ds (WSTEST_TIMEOUT)" % timeout_s)
    try:
        running = re.findall(r"Running test case ID (\S+)", open(os.path.join(outdir, "wstest.log")).read())
        if running:
            fatal.append("last case started: %s" % running[-1])
    except OSError:
        pass
elif wstest_rc != 0:
    fatal.append("wstest exited with status %d (see wstest.log)" % wstest_rc)
if started and not alive:
    fatal.append("the server died during the run")

if problems:
    print()
    print("Cases not OK (%d):" % len(problems))
    shown = 0
    missing = [p for p in problems if p[1] == "MISSING"]
    for p in problems:
        if p[1] == "MISSING" and len(missing) > 20:
            continue
        print("  %-9s behavior=%-13s behaviorClose=%-13s %s" % p)
    if len(missing) > 20:
        print("  %d cases MISSING (no result), from %s to %s" % (len(missing), missing[0][0], missing[-1][0]))
if fatal:
    print()
    for f in fatal:
        print("FAILURE: " + f)
print()
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if (failed or fatal) else 0)
PY
rc=$?
exit $rc
