#!/usr/bin/env bash
# Tap overhead: the proxy's CPU at a fixed QPS with and without one tap client.
#
# Topology (hack/bench-proxy.sh's HTTP mesh case, on 127.0.0.1): fortio → mesh-proxy
# outbound (client side) → [mTLS, HTTP/2] → mesh-proxy inbound (server side) → fortio
# server. Both proxies start once and serve every round, so the rounds differ only in
# the tap client. Each round has two intervals, in alternating order (off then tap in
# odd rounds, tap then off in even ones), each BENCH_SECONDS of open-loop load at QPS
# (fortio -uniform) after a WARMUP: in "off" nobody is subscribed; in "tap" one
# client (curl -N) holds GET /tap on the server-side proxy's tap listener with no
# match filter, reading the NDJSON stream to a file. The proxy-wide event cap
# (MESH_PROXY_TAP_MAX_EVENTS_PER_SECOND) is TAP_CAP, above QPS by default so that
# every request is an event; TAP_CAP=100 measures the shipped default cap.
#
# CPU is the change in utime+stime (/proc/PID/stat) of each proxy over the interval's
# load run: CPU time, not wall latency, so other work on the machine disturbs it
# less, and alternating rounds spread what remains over both sides. The script checks
# that the tap client received one event per request (TAP_CAP ≥ QPS) and prints per
# round the CPU seconds of both hops, and at the end, for the tapped (server-side)
# proxy, the sums over rounds and their ratio:
#   tap/off cpu=R (+P%) events=N requests=M
#
# Environment: ROUNDS (3), BENCH_SECONDS (30), WARMUP (5), QPS (1000), CONNS (10),
# TAP_CAP (2000), PORT_BASE (22000; ports PORT_BASE+80..+196 on 127.0.0.1),
# MESH_GOMAXPROCS (1), MESH_PROXY_BIN (a prebuilt mesh-proxy; by default built from
# this tree as the release builds it), PERF=1 (perf record -g of the tapped proxy
# during each tap interval, into OUT/perf.tap.rN.data), OUT (a new /tmp/bench-tap.*).
# fortio v1.66.5 is installed into ~/.cache/mesh-bench/bin as hack/bench-proxy.sh
# does. Runs itself under `nice -n -19` when allowed, every command under `timeout`.
#
# Usage: hack/bench-tap.sh                     (about 4 minutes)
#        ROUNDS=1 BENCH_SECONDS=5 hack/bench-tap.sh
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

if [ "${BENCH_TAP_NICED:-}" != 1 ]; then
  export BENCH_TAP_NICED=1
  if nice -n -19 true 2>/dev/null; then exec nice -n -19 "$0" "$@"; fi
fi

ROUNDS=${ROUNDS:-3}
BENCH_SECONDS=${BENCH_SECONDS:-30}
WARMUP=${WARMUP:-5}
QPS=${QPS:-1000}
CONNS=${CONNS:-10}
TAP_CAP=${TAP_CAP:-2000}
PORT_BASE=${PORT_BASE:-22000}
MESH_GOMAXPROCS=${MESH_GOMAXPROCS:-1}
CACHE=${MESH_BENCH_CACHE:-$HOME/.cache/mesh-bench}
FORTIO_VERSION=v1.66.5
OUT=${OUT:-$(mktemp -d /tmp/bench-tap.XXXXXX)}
mkdir -p "$OUT"/bin "$OUT"/logs
OUT=$(cd "$OUT" && pwd)
log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

P_APP=$((PORT_BASE + 80))
P_ID=$((PORT_BASE + 180)) P_DST=$((PORT_BASE + 186))
P_MC_OUT=$((PORT_BASE + 140)) P_MC_IN=$((PORT_BASE + 141)) P_MC_ADMIN=$((PORT_BASE + 191)) P_MC_CTL=$((PORT_BASE + 193))
P_MS_OUT=$((PORT_BASE + 142)) P_MS_IN=$((PORT_BASE + 143)) P_MS_ADMIN=$((PORT_BASE + 192)) P_MS_CTL=$((PORT_BASE + 194))
P_MC_TAP=$((PORT_BASE + 195)) P_MS_TAP=$((PORT_BASE + 196))
SVC_HTTP=127.0.0.1:$((PORT_BASE + 90))
TD=cluster.local
ID_CLIENT=client.bench.serviceaccount.identity.$TD
ID_SERVER=server.bench.serviceaccount.identity.$TD
ID_SVC=mesh-identity.mesh.serviceaccount.identity.$TD
DST_SVC=mesh-destination.mesh.serviceaccount.identity.$TD

LIFE=$(( ROUNDS * 2 * (WARMUP + BENCH_SECONDS + 20) + 600 ))
WRAPPERS=()
cleanup() {
  local w
  for w in "${WRAPPERS[@]}"; do kill -TERM "$w" 2>/dev/null; done
  sleep 0.5
  for w in "${WRAPPERS[@]}"; do kill -KILL "$w" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
start() { # LOG cmd...: sets WRAPPER (the timeout process) and PID (the command)
  local logf=$1 i; shift
  timeout -k 5 "$LIFE" "$@" >"$logf" 2>&1 &
  WRAPPER=$!
  WRAPPERS+=("$WRAPPER")
  PID=
  for i in $(seq 100); do
    PID=$(awk '{print $1}' "/proc/$WRAPPER/task/$WRAPPER/children" 2>/dev/null)
    [ -n "$PID" ] && return 0
    kill -0 "$WRAPPER" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}
wait_port() { local i; for i in $(seq $(( ${2:-5} * 20 ))); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
wait_ready() { local i; for i in $(seq 150); do [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$1/ready")" = 200 ] && return 0; sleep 0.1; done; return 1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
CLK_TCK=$(getconf CLK_TCK)

for p in $P_APP $P_ID $P_DST $P_MC_OUT $P_MC_IN $P_MC_ADMIN $P_MC_CTL $P_MS_OUT $P_MS_IN $P_MS_ADMIN $P_MS_CTL $P_MC_TAP $P_MS_TAP; do
  if ss -Hltn "sport = :$p" | grep -q .; then log "port $p is in use: choose another PORT_BASE"; exit 1; fi
done

FORTIO=$CACHE/bin/fortio
if [ ! -x "$FORTIO" ]; then
  log "installing fortio $FORTIO_VERSION into $CACHE/bin"
  mkdir -p "$CACHE/bin"
  GOBIN=$CACHE/bin timeout 900 go install "fortio.org/fortio@$FORTIO_VERSION" || { log "fortio install failed"; exit 1; }
fi
timeout 600 go build -o "$OUT/bin/bench-cp" ./hack/benchproxy/cp || { log "building hack/benchproxy/cp failed"; exit 1; }
if [ -n "${MESH_PROXY_BIN:-}" ]; then
  MESH_BIN=$MESH_PROXY_BIN
else
  MESH_BIN=$OUT/bin/mesh-proxy
  CGO_ENABLED=0 timeout 600 go build -trimpath -tags grpcnotrace -ldflags "-s -w" -o "$MESH_BIN" ./proxy/mesh-proxy ||
    { log "go build ./proxy/mesh-proxy failed"; exit 1; }
fi

start "$OUT/logs/fortio-server.log" "$FORTIO" server -http-port "127.0.0.1:$P_APP" -grpc-port disabled \
  -tcp-port disabled -udp-port disabled -redirect-port disabled -ui-path "" -loglevel Warning
wait_port "$P_APP" 10 || { log "fortio server did not start"; exit 1; }
echo "benchmark token (the stub identity does not check it)" >"$OUT/token"
start "$OUT/logs/cp.log" "$OUT/bin/bench-cp" --anchor-file "$OUT/anchor.pem" --ready-file "$OUT/cp.ready" \
  --identity-addr "127.0.0.1:$P_ID" --identity-name "$ID_SVC" \
  --dst-addr "127.0.0.1:$P_DST" --dst-name "$DST_SVC" \
  --endpoint "$SVC_HTTP=127.0.0.1:$P_MS_IN,identity=$ID_SERVER,h2"
for _ in $(seq 100); do [ -f "$OUT/cp.ready" ] && break; sleep 0.1; done
[ -f "$OUT/cp.ready" ] || { log "stub control plane did not start: $(tail -3 "$OUT/logs/cp.log")"; exit 1; }

mesh_proxy() { # side identity in out admin ctl tap orig-out orig-in
  mkdir -p "$OUT/mesh-$1"
  start "$OUT/logs/mesh-$1.log" env -i PATH="$PATH" HOME="$HOME" GOMAXPROCS="$MESH_GOMAXPROCS" MESH_PROXY_LOG=warn \
    MESH_PROXY_INBOUND_LISTEN_ADDR="127.0.0.1:$3" MESH_PROXY_OUTBOUND_LISTEN_ADDR="127.0.0.1:$4" \
    MESH_PROXY_ADMIN_LISTEN_ADDR="127.0.0.1:$5" MESH_PROXY_CONTROL_LISTEN_ADDR="127.0.0.1:$6" \
    MESH_PROXY_TAP_LISTEN_ADDR="127.0.0.1:$7" MESH_PROXY_TAP_MAX_EVENTS_PER_SECOND="$TAP_CAP" \
    MESH_PROXY_OUTBOUND_ORIG_DST="$8" MESH_PROXY_INBOUND_ORIG_DST="$9" \
    MESH_PROXY_DESTINATION_SVC_ADDR="127.0.0.1:$P_DST" MESH_PROXY_DESTINATION_SVC_NAME="$DST_SVC" \
    MESH_PROXY_IDENTITY_SVC_ADDR="127.0.0.1:$P_ID" MESH_PROXY_IDENTITY_SVC_NAME="$ID_SVC" \
    MESH_PROXY_IDENTITY_TOKEN_FILE="$OUT/token" MESH_PROXY_IDENTITY_LOCAL_NAME="$2" \
    MESH_PROXY_IDENTITY_TRUST_ANCHORS_FILE="$OUT/anchor.pem" MESH_PROXY_IDENTITY_DIR="$OUT/mesh-$1" \
    MESH_PROXY_SHUTDOWN_GRACE_PERIOD=1s _pod_ns=bench _pod_name="bench-$1" "$MESH_BIN" run
}
mesh_proxy server "$ID_SERVER" "$P_MS_IN" "$P_MS_OUT" "$P_MS_ADMIN" "$P_MS_CTL" "$P_MS_TAP" "" "127.0.0.1:$P_APP" || { log "server proxy did not start"; exit 1; }
PID_S=$PID
mesh_proxy client "$ID_CLIENT" "$P_MC_IN" "$P_MC_OUT" "$P_MC_ADMIN" "$P_MC_CTL" "$P_MC_TAP" "$SVC_HTTP" "" || { log "client proxy did not start"; exit 1; }
PID_C=$PID
wait_ready "$P_MS_ADMIN" && wait_ready "$P_MC_ADMIN" || { log "proxies not ready: $(tail -c 400 "$OUT"/logs/mesh-*.log)"; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "Host: $SVC_HTTP" "http://127.0.0.1:$P_MC_OUT/echo")
[ "$code" = 200 ] || { log "probe through the proxies: ${code:-no answer}"; exit 1; }

load() { # seconds [json]
  timeout -k 5 $(($1 + 30)) "$FORTIO" load -qps "$QPS" -c "$CONNS" -t "$1s" -uniform -r 0.00001 -loglevel Warning \
    -H "Host: $SVC_HTTP" ${2:+-json "$2"} "http://127.0.0.1:$P_MC_OUT/echo" >>"$OUT/logs/load.log" 2>&1
}

# interval ROUND MODE: one measured interval; appends a row to OUT/runs.tsv.
interval() {
  local r=$1 mode=$2 tapw="" tapfile="$OUT/tap.r$1.ndjson" perfw="" i c0 s0 c1 s1 reqs events=- dropped=-
  if [ "$mode" = tap ]; then
    start "$tapfile" curl -sN "http://127.0.0.1:$P_MS_TAP/tap" || { log "tap client did not start"; exit 1; }
    tapw=$WRAPPER
    # Subscribed once the proxy holds the connection (it flushes the headers first).
    for i in $(seq 100); do ss -Htn state established "sport = :$P_MS_TAP" | grep -q . && break; sleep 0.05; done
    ss -Htn state established "sport = :$P_MS_TAP" | grep -q . || { log "tap client not connected"; exit 1; }
  fi
  load "$WARMUP"
  local n0=0
  [ "$mode" = tap ] && n0=$(wc -l <"$tapfile") # count the measured interval's events only
  if [ "$mode" = tap ] && [ "${PERF:-0}" = 1 ]; then
    start "$OUT/logs/perf.r$r.log" perf record -g -F 499 -p "$PID_S" -o "$OUT/perf.tap.r$r.data" -- sleep "$BENCH_SECONDS"
    perfw=$WRAPPER
  fi
  c0=$(cpu_ticks "$PID_C") s0=$(cpu_ticks "$PID_S")
  local l0; l0=$(cut -d' ' -f1 /proc/loadavg)
  load "$BENCH_SECONDS" "$OUT/load.r$r.$mode.json"
  c1=$(cpu_ticks "$PID_C") s1=$(cpu_ticks "$PID_S")
  reqs=$(jq -r '[.RetCodes[]] | add' "$OUT/load.r$r.$mode.json")
  if [ -n "$tapw" ]; then
    sleep 0.5 # the last responses' events are written when they end
    kill -TERM "$tapw" 2>/dev/null; wait "$tapw" 2>/dev/null
    events=$(tail -n +$((n0 + 1)) "$tapfile" | grep -c '"type":"http"')
    dropped=$(tail -n +$((n0 + 1)) "$tapfile" | jq -s '[.[] | select(.type == "dropped") | .dropped] | add // 0')
  fi
  [ -n "$perfw" ] && wait "$perfw" 2>/dev/null
  local cs ss_
  cs=$(awk -v a="$c0" -v b="$c1" -v t="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / t }')
  ss_=$(awk -v a="$s0" -v b="$s1" -v t="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / t }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$mode" "$cs" "$ss_" "$reqs" "$events" "$dropped" "$l0" >>"$OUT/runs.tsv"
  log "round $r $mode: cpu s client $cs, server (tapped) $ss_; requests $reqs, tap events $events (dropped $dropped); load1 $l0"
}

printf 'round\tmode\tclient_cpu_s\tserver_cpu_s\trequests\ttap_events\ttap_dropped\tload1\n' >"$OUT/runs.tsv"
log "out: $OUT; $ROUNDS rounds of off/tap, $QPS rps, $CONNS connections, ${WARMUP}s warm-up + ${BENCH_SECONDS}s; tap cap $TAP_CAP/s; nice $(nice)"
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then interval "$r" off; interval "$r" tap; else interval "$r" tap; interval "$r" off; fi
done

{
  echo "$(date -u +%FT%TZ) $(uname -srm); $(nproc) CPUs; fortio $FORTIO_VERSION; $(go version | cut -d' ' -f3); commit $(git rev-parse --short HEAD 2>/dev/null)"
  echo "command: ROUNDS=$ROUNDS BENCH_SECONDS=$BENCH_SECONDS QPS=$QPS CONNS=$CONNS TAP_CAP=$TAP_CAP hack/bench-tap.sh (warm-up ${WARMUP}s)"
  column -t -s $'\t' "$OUT/runs.tsv"
  awk -F'\t' 'NR > 1 { s[$2] += $4; c[$2] += $3; if ($2 == "tap") { e += $6; q += $5 } }
    END { printf "tapped proxy cpu s: off %.2f, tap %.2f; client proxy: off %.2f, tap %.2f\n", s["off"], s["tap"], c["off"], c["tap"]
          printf "tap/off cpu=%.3f (%+.1f%%) events=%d requests=%d\n", s["tap"] / s["off"], (s["tap"] / s["off"] - 1) * 100, e, q
          if (cap + 0 >= qps + 0 && e < q) printf "WARNING: %d tap records for %d requests: events were lost\n", e, q }' \
    cap="$TAP_CAP" qps="$QPS" "$OUT/runs.tsv"
} | tee "$OUT/results.txt"
