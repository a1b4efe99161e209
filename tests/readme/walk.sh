#!/usr/bin/env bash
# The README's "Using it" commands, run as written from a folder laid out
# like the source tree (config/ copied, data/ and build/bin/ linked): the
# broker from config/broker.yaml, a publish, a file published twice, tail,
# replay, stats, verify, the incident commands, rules check and replay, the
# inspector's timeline, export, verify --export, report and CAP export, and a
# staff credential. Only the incident id, which the README shows as an
# example, is taken from `incidents list`.
#
#   tests/readme/walk.sh BIN_DIR SRC_DIR
set -euo pipefail
BIN_DIR=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
W=$(mktemp -d /tmp/pingan-readme-XXXXXX)
broker=
cleanup() {
    [ -n "$broker" ] && kill -TERM "$broker" 2>/dev/null && wait "$broker" 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT
fail() {
    echo "readme: $*" >&2
    [ -f "$W/broker.log" ] && { echo "---- broker log" >&2; tail -n 20 "$W/broker.log" >&2; }
    exit 1
}
cp -r "$SRC/config" "$W/config"
ln -s "$SRC/data" "$W/data"
mkdir -p "$W/build"
ln -s "$BIN_DIR" "$W/build/bin"
cd "$W"

# The endpoints are config/broker.yaml's fixed ports: say so if they are taken.
for port in 7401 7402 7403; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        fail "port $port is in use: the README's broker listens there"
    fi
done
build/bin/pingan-broker --config config/broker.yaml --insecure-dev >"$W/broker.out" 2>"$W/broker.log" &
broker=$!
for _ in $(seq 1 300); do
    grep -q '^listening ' "$W/broker.out" 2>/dev/null && break
    kill -0 "$broker" 2>/dev/null || fail "the broker did not start"
    sleep 0.1
done
grep -q '^listening ' "$W/broker.out" || fail "the broker did not listen in 30 s"

out=$(build/bin/pingan publish '{"type":"hazard.reported","school":"420502K001","status":"Actual",
  "severity":"Severe","body":{"hazard_id":"HZ-7","area":"fire","grade":"major",
  "description":"宿舍楼消防通道堵塞","location":"3号宿舍楼","found_by":"safety_officer"}}') ||
    fail "publish: $out"
grep -q '"offset":1,"duplicate":false' <<<"$out" || fail "publish: $out"

cat >reports.jsonl <<'JSONL'
{"type":"hazard.reported","school":"420502K002","status":"Actual","severity":"Moderate","body":{"hazard_id":"HZ-8","area":"building","grade":"general","description":"楼梯扶手松动","location":"教学楼","found_by":"safety_officer"}}
{"type":"hazard.reported","school":"420502K003","status":"Actual","severity":"Moderate","body":{"hazard_id":"HZ-9","area":"utilities","grade":"general","description":"插座破损","location":"实验楼","found_by":"safety_officer"}}
JSONL
first=$(build/bin/pingan publish --stable-ids --file reports.jsonl) || fail "publish --file: $first"
second=$(build/bin/pingan publish --stable-ids --file reports.jsonl) ||
    fail "publish --file again: $second"
[ "$(grep -c '"duplicate":false' <<<"$first")" = 2 ] || fail "publish --file: $first"
[ "$(grep -c '"duplicate":true' <<<"$second")" = 2 ] || fail "publish --file again: $second"

# tail follows for ever: a few seconds of it.
feed=$(timeout 3 build/bin/pingan tail --district 420502 --from 1 || true)
grep -q '420502K001' <<<"$feed" || fail "tail --district: $feed"
timeout 3 build/bin/pingan tail --type notification. --type escalation. \
    --exclude food.temp_reading >/dev/null || [ $? = 124 ] || fail "tail --type"

replay=$(build/bin/pingan replay --json --school 420502K001 --since 2026-09-01T00:00:00+08:00) ||
    fail "replay: $replay"
grep -q '"hazard_id":"HZ-7"' <<<"$replay" || fail "replay: $replay"
build/bin/pingan stats | grep -q . || fail "stats"
build/bin/pingan verify --data var/broker | grep -q '"ok":true' || fail "verify"

# The major fire hazard opened an incident (config/broker.yaml loads the rule pack).
id=
for _ in $(seq 1 100); do
    id=$(build/bin/pingan incidents list --open --json | sed -n 's/.*"id":"\(INC-[^"]*\)".*/\1/p' | head -1)
    [ -n "$id" ] && break
    sleep 0.1
done
[ -n "$id" ] || fail "incidents list --open: no incident"
build/bin/pingan incidents list --open | grep -q "$id" || fail "incidents list --open"
build/bin/pingan incidents show "$id" | grep -q . || fail "incidents show"
build/bin/pingan incidents ack "$id" --note "已电话联系校长" || fail "incidents ack"
build/bin/pingan incidents note "$id" "校长已到场" || fail "incidents note"
build/bin/pingan incidents show "$id" | grep -q "校长已到场" || fail "the note is not in the timeline"
build/bin/pingan rules check config/rules/yichang-default.yaml || fail "rules check"
cp config/rules/yichang-default.yaml my-new-pack.yaml
build/bin/pingan rules replay --rules my-new-pack.yaml --diff >"$W/diff.txt" || fail "rules replay"

build/bin/pingan incidents timeline "$id" | grep -q "已电话联系校长\|acknowledged" || fail "timeline"
build/bin/pingan export --data var/broker --term 2026-autumn --out 2026-autumn.jsonl || fail "export --data"
build/bin/pingan verify --export 2026-autumn.jsonl --data var/broker | grep -q '"ok":true' ||
    fail "verify --export"
build/bin/pingan report --term 2026-autumn --out 2026-autumn.html || fail "report --term"
grep -q "420502" 2026-autumn.html || fail "report"
build/bin/pingan cap export "$id" --out alert.xml || fail "cap export"
grep -q "urn:oasis:names:tc:emergency:cap:1.2" alert.xml || fail "cap export"

build/bin/pingan credentials issue zhang.wei --file var/credentials.json \
    --scope school:420502K001 --role safety_officer --expires 180d > zhang.wei.token ||
    fail "credentials issue"
grep -q '^pgn_' zhang.wei.token || fail "credentials issue"

kill -TERM "$broker"
wait "$broker" || fail "the broker did not stop cleanly"
broker=
echo "readme: every command of 'Using it' worked as written (incident $id)"
