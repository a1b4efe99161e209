#!/usr/bin/env bash
# The README's first command, scripts/demo.sh, run as a user runs it (with the
# programs of this build, in a folder of its own): every program starts, the
# live feed shows the simulated schools' events, pages are delivered, minors'
# data is sealed in the broker's store, and SIGTERM stops everything cleanly,
# leaving a log that verifies. With REPLICATED=1 the demo runs replicated
# (three nats-servers, a leader and a hot standby): the leader is killed with
# kill -9 once the feed runs, the standby takes over, the feed and the pages go
# on through it, and its store verifies.
#
#   [REPLICATED=1] tests/demo/smoke.sh BIN_DIR
set -euo pipefail
BIN_DIR=$(cd "$1" && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/pingan-demo-XXXXXX)
RUN=$WORK/demo
pid=
cleanup() {
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
    echo "demo smoke: $*" >&2
    echo "---- demo output" >&2; tail -n 30 "$WORK/out" >&2 || true
    echo "---- demo errors" >&2; tail -n 30 "$WORK/err" >&2 || true
    for l in "$RUN"/logs/*.log; do
        echo "---- $l" >&2; tail -n 5 "$l" >&2 || true
    done
    exit 1
}

REPLICATED=${REPLICATED:-0}
SKIP_BUILD=1 BIN_DIR="$BIN_DIR" RUN="$RUN" SCHOOLS=20 SPEED=1200 CONSOLE_PASSWORD=smoke-test-1 \
    REPLICATED="$REPLICATED" \
    "$SRC/scripts/demo.sh" >"$WORK/out" 2>"$WORK/err" &
pid=$!

# The feed: lines after the banner; at least 20 within 180 s (a sanitizer
# build is several times slower than a release one).
feed_lines() { sed -n '/^demo: live feed below/,$p' "$WORK/out" | tail -n +2 | grep -c . || true; }
for _ in $(seq 1 1800); do
    [ "$(feed_lines)" -ge 20 ] && break
    kill -0 "$pid" 2>/dev/null || fail "the demo ended by itself"
    sleep 0.1
done
[ "$(feed_lines)" -ge 20 ] || fail "fewer than 20 live feed lines in 180 s"
for name in broker hazard drill canteen wellbeing notify console; do
    grep -q "^demo: $name listening " "$WORK/out" || fail "$name did not start"
done
grep -q "web console: http://127.0.0.1:[0-9]*/   user demo, password smoke-test-1" "$WORK/out" ||
    fail "no console address"
# Pages reach the file channel (the simulated day brings incidents in seconds).
for _ in $(seq 1 1200); do
    [ -s "$RUN/pages.log" ] && break
    sleep 0.1
done
[ -s "$RUN/pages.log" ] || fail "no page delivered in 120 s"
grep -q "minors' data sealed at rest with the keys in $RUN/keys/at-rest" "$RUN/logs/broker.log" ||
    fail "the broker does not seal minors' data"
if grep -q "no --keys" "$RUN/logs/broker.log"; then fail "the broker runs without --keys"; fi

store=$RUN/broker
if [ "$REPLICATED" = 1 ]; then
    grep -q "replication: leader holds the leadership lease of stream PINGAN" "$RUN/logs/broker.log" ||
        fail "the leader does not hold the lease"
    grep -q "standby: following stream PINGAN" "$RUN/logs/standby.log" || fail "no standby"
    leader=$(sed -n 's/.*kill -9 \([0-9]*\).*/\1/p' "$WORK/out" | head -n1)
    [ -n "$leader" ] || fail "no leader pid in the demo's output"
    before=$(feed_lines)
    kill -9 "$leader"
    for _ in $(seq 1 600); do
        grep -q '^listening ' "$RUN/logs/standby.out" && break
        sleep 0.1
    done
    grep -q '^listening ' "$RUN/logs/standby.out" || fail "the standby did not take over in 60 s"
    grep -q "taking over" "$RUN/logs/standby.log" || fail "the standby's log does not say it took over"
    # The feed goes on from the new leader: the services resend, the simulator goes on.
    for _ in $(seq 1 1200); do
        [ "$(feed_lines)" -ge $((before + 20)) ] && break
        sleep 0.1
    done
    [ "$(feed_lines)" -ge $((before + 20)) ] || fail "the feed did not go on after the failover"
    store=$RUN/broker-standby
fi

kill -TERM "$pid"
wait "$pid" || true
pid=
grep -q "^demo: stopped" "$WORK/out" || fail "no clean stop"
verdict=$("$BIN_DIR/pingan" verify --data "$store")
grep -q '"ok":true' <<<"$verdict" || fail "the demo's log does not verify: $verdict"
echo "demo smoke: $(feed_lines) feed lines, $(wc -l <"$RUN/pages.log") pages; $verdict"
