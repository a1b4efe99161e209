#!/usr/bin/env bash
# The Pingan demo: sets up and builds, then starts the broker, the four school
# services (hazard, drill, canteen, wellbeing), pingan-notify writing every
# page to a readable file, and the simulator for the Yichang registry, and
# shows the live alert feed. Ctrl-C stops everything
# cleanly. Every process binds 127.0.0.1 on ports the system picks, so the
# demo runs beside anything else. It runs secured, as a school would: CURVE
# keys and an access table for the broker's sockets, HTTPS with a generated
# self-signed certificate and bearer-token credentials on the services' intake
# (docs/security.md).
#
#   scripts/demo.sh                 # 150 schools, one simulated day at 300x
#   SCHOOLS=0 DAYS=3 scripts/demo.sh   # the whole registry, three days
#   SKIP_BUILD=1 BIN_DIR=build/bin RUN=/tmp/demo scripts/demo.sh   # built programs, another folder
#   REPLICATED=1 scripts/demo.sh    # three nats-servers, the log replicated to JetStream,
#                                   # and a hot standby broker that takes over (docs/replication.md)
#
# With REPLICATED=1 the ports are picked free in advance (nats-server and the
# clients' lists of both brokers need them before anything listens).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SPEED=${SPEED:-300}          # simulated seconds per real second
DAYS=${DAYS:-1}
SCHOOLS=${SCHOOLS:-150}      # 0: all 1,265 schools
SEED=${SEED:-1}
START=${START:-2026-09-01T00:00:00+08:00}
RUN=${RUN:-$ROOT/var/demo}
REPLICATED=${REPLICATED:-0}

# ---- set up and build ---------------------------------------------------------
# SKIP_BUILD=1 runs what is already in build/bin.
TARGETS="pingan-broker pingan pingan-hazard pingan-drill pingan-canteen pingan-wellbeing pingan-notify pingan-console
         pingan-sim"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    if [ -x scripts/setup.sh ]; then
        BUILD_TARGETS="$TARGETS" scripts/setup.sh
    else
        [ -f build/build.ninja ] || cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
        # shellcheck disable=SC2086
        cmake --build build -j2 --target $TARGETS
    fi
fi
BIN=$(cd "${BIN_DIR:-$ROOT/build/bin}" && pwd)

# ---- run ----------------------------------------------------------------------
rm -rf "$RUN"
mkdir -p "$RUN/logs"
PIDS=()

stop_all() {
    trap - INT TERM EXIT
    echo
    echo "demo: stopping..."
    # Reverse order: the simulator first, the broker last, so that the services
    # can hand over what they hold before the broker goes.
    for (( i=${#PIDS[@]}-1; i>=0; i-- )); do
        kill -TERM "${PIDS[$i]}" 2>/dev/null || true
        wait "${PIDS[$i]}" 2>/dev/null || true
    done
    echo "demo: stopped. Logs and data are in $RUN"
}
trap stop_all INT TERM EXIT

# Starts a program in the background and waits for its "listening ..." line.
# Usage: start NAME ARGS...   (sets LISTEN to that line)
start() {
    local name=$1; shift
    "$@" >"$RUN/logs/$name.out" 2>"$RUN/logs/$name.log" &
    PIDS+=($!)
    for _ in $(seq 1 100); do
        if grep -q '^listening ' "$RUN/logs/$name.out" 2>/dev/null; then
            LISTEN=$(grep -m1 '^listening ' "$RUN/logs/$name.out")
            echo "demo: $name $LISTEN"
            return 0
        fi
        if ! kill -0 "${PIDS[-1]}" 2>/dev/null; then
            echo "demo: $name did not start:" >&2
            cat "$RUN/logs/$name.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "demo: $name did not start in 10 s; see $RUN/logs/$name.log" >&2
    exit 1
}
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$LISTEN"; }

# ---- keys, access table, certificate and credentials ---------------------------
# CURVE keys for the broker and each of its clients, and the access table that
# says who may do what (config/access.example.yaml explains the format).
KEYS=$RUN/keys
mkdir -p "$KEYS"; chmod 700 "$KEYS"
for k in broker services notify console sim tail; do
    "$BIN/pingan" keygen "$KEYS/$k.key" >"$KEYS/$k.pub"
done
pub() { cat "$KEYS/$1.pub"; }
cat >"$KEYS/access.yaml" <<YAML
clients:
  - {identity: "demo:school-services", key: "$(pub services)", scope: city, may: [publish, query]}
  - {identity: "demo:simulator", key: "$(pub sim)", scope: city, may: [publish]}
  - {identity: "demo:notify", key: "$(pub notify)", scope: city, may: [publish, query, act]}
  - {identity: "demo:console", key: "$(pub console)", scope: city, may: [query, act],
     clearance: [minors]}
  - {identity: "demo:duty-desk", key: "$(pub tail)", scope: city, may: [query]}
YAML
chmod 644 "$KEYS/access.yaml"
SERVER="z85:$(pub broker)"

# HTTPS for the intake: a self-signed certificate for 127.0.0.1 (a school
# would use one from its own or the bureau's certificate authority).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$KEYS/intake-tls.key" -out "$KEYS/intake-tls.pem" 2>/dev/null
chmod 600 "$KEYS/intake-tls.key"

# One intake credential for the simulated staff of every district; its token
# is shown once, kept here in a file only the demo's user may read.
CREDS=$RUN/credentials.json
scopes=()
while IFS=, read -r code _; do
    [[ $code =~ ^[0-9]{6}$ ]] && scopes+=(--scope "district:$code")
done <data/districts.csv
(umask 077; "$BIN/pingan" credentials issue demo-sim --file "$CREDS" "${scopes[@]}" \
    --role safety_officer --role facilities_manager --role safety_vp --role psych_teacher \
    --registry data/schools.csv >"$KEYS/sim.token" 2>/dev/null)

# The broker's clock runs as fast as the simulation, so that simulated
# deadlines fall due in minutes. Minors' data (psych alerts' student
# references and indicator codes, bullying references) is sealed in its store
# with keys kept outside the store's folder (docs/security.md).
broker_args=(--config config/broker.yaml --registry data/schools.csv --districts data/districts.csv
             --clock "scaled:$SPEED:$START" --server-key "$KEYS/broker.key"
             --clients "$KEYS/access.yaml" --keys "$KEYS/at-rest")
if [ "$REPLICATED" = 1 ]; then
    # Free ports now: three nats-servers (client and cluster ports), and the
    # leader's and the standby's sockets.
    read -r N1 N2 N3 C1 C2 C3 AI AF AQ BI BF BQ < <(python3 -c '
import socket
s = [socket.socket() for _ in range(12)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')
    NATS=$(command -v nats-server || echo /usr/sbin/nats-server)
    routes=nats://127.0.0.1:$C1,nats://127.0.0.1:$C2,nats://127.0.0.1:$C3
    js=(--replication jetstream --jetstream-replicas 3 --jetstream-lease 3s)
    n=0
    for p in "$N1:$C1" "$N2:$C2" "$N3:$C3"; do
        n=$((n + 1))
        "$NATS" -js -a 127.0.0.1 -p "${p%:*}" -sd "$RUN/nats/n$n" -n "n$n" --cluster_name pingan-demo \
            --cluster "nats://127.0.0.1:${p#*:}" --routes "$routes" >"$RUN/logs/nats-n$n.log" 2>&1 &
        PIDS+=($!)
        js+=(--jetstream-server "nats://127.0.0.1:${p%:*}")
    done
    echo "demo: nats-server cluster on 127.0.0.1:$N1, $N2, $N3 (JetStream, 3 replicas)"
    start broker "$BIN/pingan-broker" "${broker_args[@]}" "${js[@]}" --jetstream-name leader \
        --data "$RUN/broker" --ingest "tcp://127.0.0.1:$AI" --feed "tcp://127.0.0.1:$AF" \
        --query "tcp://127.0.0.1:$AQ"
    LEADER_PID=${PIDS[-1]}
    "$BIN/pingan-broker" "${broker_args[@]}" "${js[@]}" --jetstream-name standby --standby \
        --data "$RUN/broker-standby" --ingest "tcp://127.0.0.1:$BI" --feed "tcp://127.0.0.1:$BF" \
        --query "tcp://127.0.0.1:$BQ" >"$RUN/logs/standby.out" 2>"$RUN/logs/standby.log" &
    PIDS+=($!)
    for _ in $(seq 1 100); do
        grep -q '^standby ' "$RUN/logs/standby.out" 2>/dev/null && break
        kill -0 "${PIDS[-1]}" 2>/dev/null || { cat "$RUN/logs/standby.log" >&2; exit 1; }
        sleep 0.1
    done
    grep -q '^standby ' "$RUN/logs/standby.out" ||
        { echo "demo: the standby did not start; see $RUN/logs/standby.log" >&2; exit 1; }
    echo "demo: standby broker follows the stream; it listens on 127.0.0.1:$BI-$BQ once it leads"
    # Every client names both brokers and reaches whichever leads.
    INGEST=tcp://127.0.0.1:$AI,tcp://127.0.0.1:$BI
    FEED=tcp://127.0.0.1:$AF,tcp://127.0.0.1:$BF
    QUERY=tcp://127.0.0.1:$AQ,tcp://127.0.0.1:$BQ
else
    start broker "$BIN/pingan-broker" "${broker_args[@]}" --data "$RUN/broker" \
        --ingest 'tcp://127.0.0.1:*' --feed 'tcp://127.0.0.1:*' --query 'tcp://127.0.0.1:*'
    INGEST=$(field ingest); FEED=$(field feed); QUERY=$(field query)
fi

# The simulator posts for every school from one address with one credential:
# the per-credential and per-address limits are raised to match.
common=(--broker "$INGEST" --query "$QUERY" --registry data/schools.csv --http 127.0.0.1:0
        --key "$KEYS/services.key" --server-key "$SERVER"
        --credentials "$CREDS" --tls-cert "$KEYS/intake-tls.pem" --tls-key "$KEYS/intake-tls.key"
        --rate-per-credential 1000 --burst-per-credential 1000
        --rate-per-address 1000 --burst-per-address 1000)
# Each service's outbox is sealed at rest with a key of its own, kept beside
# the other keys and outside its --data folder.
start hazard "$BIN/pingan-hazard" "${common[@]}" --data "$RUN/hazard" --device demo-kiosk \
    --outbox-key "$KEYS/hazard-outbox.key"
HAZARD=$(field http)
start drill "$BIN/pingan-drill" "${common[@]}" --data "$RUN/drill" \
    --outbox-key "$KEYS/drill-outbox.key"
DRILL=$(field http)
start canteen "$BIN/pingan-canteen" "${common[@]}" --data "$RUN/canteen" \
    --outbox-key "$KEYS/canteen-outbox.key" --udp 127.0.0.1:0 --tcp 127.0.0.1:0
CANTEEN=$(field http); CANTEEN_UDP=$(field udp)
"$BIN/pingan-wellbeing" --registry data/schools.csv --make-keys "$RUN/wellbeing.keys"
start wellbeing "$BIN/pingan-wellbeing" "${common[@]}" --data "$RUN/wellbeing" \
    --outbox-key "$KEYS/wellbeing-outbox.key" --keys "$RUN/wellbeing.keys"
WELLBEING=$(field http)

# pingan-notify with one receiver: the file channel, one line per page, for
# every role the rule pack pages (exercises included).
cat >"$RUN/notify-directory.yaml" <<YAML
directory: demo
receivers:
  - id: demo-console
    name: 值班台 duty desk
    roles: [head_teacher, psych_teacher, school_doctor, canteen_manager, safety_officer,
            safety_vp, principal, facilities_manager, transport_manager, bus_attendant,
            guardian, county_bureau, county_centre, city_bureau, emergency_office, market_reg,
            cdc, safety_regulator, police]
    channel: file
    path: $RUN/pages.log
    exercises: true
YAML
start notify "$BIN/pingan-notify" --config config/notify.yaml --data "$RUN/notify" \
    --broker "$INGEST" --feed "$FEED" --query "$QUERY" --registry data/schools.csv \
    --http 127.0.0.1:0 --directory "$RUN/notify-directory.yaml" --clock "scaled:$SPEED:$START" \
    --key "$KEYS/notify.key" --server-key "$(pub broker)"
NOTIFY=$(field http)
touch "$RUN/pages.log"

# The safety office's web console, with one city-wide demo user.
CONSOLE_PASSWORD=${CONSOLE_PASSWORD:-demo-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')}
echo "$CONSOLE_PASSWORD" | "$BIN/pingan" users add demo --file "$RUN/console-users.json" \
    --scope city --role supervisor --password-stdin >/dev/null
start console "$BIN/pingan-console" --config config/console.yaml --http 127.0.0.1:0 \
    --users "$RUN/console-users.json" --sessions "$RUN/console-sessions.json" \
    --registry data/schools.csv --ingest "$INGEST" --feed "$FEED" --query "$QUERY" \
    --key "$KEYS/console.key" --server-key "$SERVER"
CONSOLE=$(field http)

"$BIN/pingan-sim" --seed "$SEED" --schools "$SCHOOLS" --days "$DAYS" --speed "$SPEED" \
    --start "$START" --broker "$INGEST" --data "$RUN/sim" \
    --hazard "$HAZARD" --drill "$DRILL" --canteen "$CANTEEN" --canteen-udp "$CANTEEN_UDP" \
    --wellbeing "$WELLBEING" --token-file "$KEYS/sim.token" --ca "$KEYS/intake-tls.pem" \
    --key "$KEYS/sim.key" --server-key "$SERVER" >"$RUN/logs/sim.out" 2>"$RUN/logs/sim.log" &
PIDS+=($!)

cat <<MSG
demo: simulating $([ "$SCHOOLS" = 0 ] && echo all || echo "$SCHOOLS") schools for $DAYS day(s) at ${SPEED}x (seed $SEED).
demo: service health: curl --cacert $KEYS/intake-tls.pem https://$HAZARD/health   (also $DRILL, $CANTEEN, $WELLBEING)
demo: report a hazard: curl --cacert $KEYS/intake-tls.pem -H "Authorization: Bearer \$(cat $KEYS/sim.token)" \\
        -H 'Content-Type: application/json' https://$HAZARD/hazard/report \\
        -d '{"school":"420502K001","area":"building","grade":"general","description":"二楼走廊护栏松动","location":"教学楼二楼"}'

demo: pages delivered by pingan-notify: tail -f $RUN/pages.log
demo: notify metrics: curl http://$NOTIFY/metrics
demo: web console: http://$CONSOLE/   user demo, password $CONSOLE_PASSWORD
MSG
if [ "$REPLICATED" = 1 ]; then
    cat <<MSG
demo: replicated: fail the leader over with  kill -9 $LEADER_PID  (the standby takes over in about 4 s;
        its log: $RUN/logs/standby.log)
MSG
fi
echo "demo: live feed below (sensor readings hidden); Ctrl-C stops everything."

# The live feed, without the stream of routine temperature readings.
"$BIN/pingan" tail --feed "$FEED" --query "$QUERY" --registry data/schools.csv \
    --key "$KEYS/tail.key" --server-key "$SERVER" \
    | grep --line-buffered -v 'food.temp_reading' &
PIDS+=($!)
wait "${PIDS[-1]}" || true
