#!/usr/bin/env bash
# The storage budget: what a year of the whole city (1,265 schools) takes in
# the store at the simulator's rates, against a budget of 20 GB.
#
# Starts a broker with the default rules on a fresh store, plays SCHOOLS
# schools for DAYS simulated days through `pingan-sim --direct --speed 0`,
# stops the broker, takes a compacted copy (`pingan backup`) and prints bytes
# per event, per school and day, and the extrapolation to the city and a year.
# Then archives the whole log (`pingan archive --drop`: compressed,
# chain-verified segments), proves archive and store as one chain (`pingan
# verify --archive`) and prints the same figures for the archive, the ratio,
# and the year under the design of docs/operations.md (a year of archive plus
# a month of live store).
# It prints; it asserts nothing (docs/operations.md, "Storage budget").
#
#   tools/bench/storage_budget.sh [BIN_DIR] [SCHOOLS] [DAYS]      (build/bin 100 2)
set -euo pipefail
bin=$(cd "${1:-build/bin}" && pwd)
schools=${2:-100}
days=${3:-2}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/pingan-storage-XXXXXX)
broker=
cleanup() {
    [ -n "$broker" ] && kill -9 "$broker" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

PINGAN_INSECURE_DEV=1 "$bin/pingan-broker" --data "$work/store" \
    --ingest 'tcp://127.0.0.1:*' --feed 'tcp://127.0.0.1:*' --query 'tcp://127.0.0.1:*' \
    --registry "$root/data/schools.csv" --districts "$root/data/districts.csv" \
    --rules "$root/config/rules/yichang-default.yaml" --log-level warn \
    >"$work/broker.out" 2>"$work/broker.err" &
broker=$!
for _ in $(seq 1 200); do
    grep -q '^listening' "$work/broker.out" && break
    sleep 0.05
done
line=$(grep -m1 '^listening' "$work/broker.out") || { cat "$work/broker.err" >&2; exit 1; }
ingest=$(echo "$line" | sed -E 's/.*ingest=([^ ]+).*/\1/')
query=$(echo "$line" | sed -E 's/.*query=([^ ]+).*/\1/')

start=$(date +%s.%N)
"$bin/pingan-sim" --direct --speed 0 --schools "$schools" --days "$days" --broker "$ingest" \
    --registry "$root/data/schools.csv" --data "$work/sim" >"$work/sim.out"
took=$(echo "$(date +%s.%N) - $start" | bc)
took=$(printf '%.1f' "$took")
PINGAN_QUERY=$query "$bin/pingan" stats >"$work/stats.out"
kill -TERM "$broker"
wait "$broker"
broker=
"$bin/pingan" backup --data "$work/store" "$work/copy" >"$work/backup.out"

head=$(sed -E 's/.*"head":([0-9]+).*/\1/' "$work/backup.out")
bytes=$(sed -E 's/.*"bytes":([0-9]+).*/\1/' "$work/backup.out")
echo "simulated: $schools schools, $days days in $took s; stored $head events"
echo "store (compacted copy): $bytes bytes"
awk -v b="$bytes" -v n="$head" -v s="$schools" -v d="$days" 'BEGIN {
    per_event = b / n; per_school_day = b / (s * d);
    year = per_school_day * 1265 * 365;
    printf "bytes per event: %.0f\n", per_event;
    printf "bytes per school and day: %.0f (%.1f events)\n", per_school_day, n / (s * d);
    printf "city (1265 schools), per day: %.1f MB; per year: %.1f GB; budget 20 GB: %s\n",
           per_school_day * 1265 / 1e6, year / 1e9, year <= 20e9 ? "fits" : "does not fit";
}'
echo "events by type:"
cat "$work/stats.out"

# Everything received so far (received_at is the broker's clock: today in
# China time) goes into the archive, and out of the store.
before=$(date -u -d '+32 hours' +%F)
start=$(date +%s.%N)
"$bin/pingan" archive --data "$work/store" --before "$before" --out "$work/archive" --drop \
    >"$work/archive.out"
took=$(printf '%.1f' "$(echo "$(date +%s.%N) - $start" | bc)")
"$bin/pingan" verify --data "$work/store" --archive "$work/archive" >"$work/verify.out" || {
    cat "$work/verify.out" >&2
    exit 1
}
abytes=$(sed -E 's/.*"bytes":([0-9]+).*/\1/' "$work/archive.out")
araw=$(sed -E 's/.*"raw_bytes":([0-9]+).*/\1/' "$work/archive.out")
segs=$(ls "$work/archive" | grep -c '\.pseg$')
echo "archive: $segs segment(s), $abytes bytes ($araw bytes of records before compression)" \
     "in $took s, archive and store verified as one chain"
awk -v a="$abytes" -v b="$bytes" -v n="$head" -v s="$schools" -v d="$days" 'BEGIN {
    per_school_day = a / (s * d); live = b / (s * d);
    printf "archive bytes per event: %.1f; per school and day: %.0f; store/archive ratio: %.1f\n",
           a / n, per_school_day, b / a;
    year = per_school_day * 1265 * 365; month = live * 1265 * 31;
    printf "city, a year of archive: %.1f GB; plus a month of live store: %.1f GB;" \
           " total %.1f GB; budget 20 GB: %s\n",
           year / 1e9, month / 1e9, (year + month) / 1e9, year + month <= 20e9 ? "fits" : "does not fit";
}'
