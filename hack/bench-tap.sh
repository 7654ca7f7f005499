#!/usr/bin/env bash
# Tap overhead: the proxy's CPU at a fixed QPS with and without one tap client.
#
# Two identical chains run side by side, each hack/bench-proxy.sh's HTTP mesh case on
# 127.0.0.1: fortio → mesh-proxy outbound (client side) → [mTLS, HTTP/2] → mesh-proxy
# inbound (server side) → fortio server (one server for both chains), each chain
# under its own open-loop load of QPS (fortio -uniform) at the same time. In every
# interval one chain's server-side proxy is tapped: one client (curl -N) holds
# GET /tap on its tap listener with no match filter, reading the NDJSON stream to a
# file. The other chain is the control, under the same machine at the same moment,
# so what else runs on the machine moves both alike. Each round has two intervals,
# chain a tapped then chain b (b then a in even rounds), each BENCH_SECONDS after a
# WARMUP. The proxy-wide event cap (MESH_PROXY_TAP_MAX_EVENTS_PER_SECOND) is
# TAP_CAP, above QPS by default so that every request is an event; TAP_CAP=100
# measures the shipped default cap.
#
# CPU is the change in utime+stime (/proc/PID/stat) of each proxy over the
# interval's load run. Every chain is tapped in half the intervals, so a difference
# between the chains cancels out in the sums. The script checks that the tap client
# received one event per request (TAP_CAP ≥ QPS) and prints per interval the CPU
# seconds of the four proxies, and at the end the sums of the server-side proxies,
# tapped against untapped, and their ratio:
#   tap/off cpu=R (+P%) events=N requests=M
# and, as a check, the same ratio for the client-side proxies (nobody taps them).
#
# Environment: ROUNDS (3), BENCH_SECONDS (30), WARMUP (5), QPS (1000, per chain),
# CONNS (10), TAP_CAP (2000), PORT_BASE (22000; ports PORT_BASE+80..+186 on
# 127.0.0.1), MESH_GOMAXPROCS (1), MESH_PROXY_BIN (a prebuilt mesh-proxy; by default
# built from this tree as the release builds it), PERF=1 (perf record -g of both
# server-side proxies during each interval, into OUT/perf.rN.CHAIN.{tapped,untapped}.data), OUT (a new
# /tmp/bench-tap.*). fortio v1.66.5 is installed into ~/.cache/mesh-bench/bin as
# hack/bench-proxy.sh does. Runs itself under `nice -n -19` when allowed, every
# command under `timeout`.
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
# A chain's ports: PORT_BASE+100.. (chain a) and +120.. (chain b).
CHAINS=(a b)
declare -A OFF=([a]=100 [b]=120)
port() { echo $((PORT_BASE + ${OFF[$1]} + $2)); } # chain index
# 0 client out, 1 client in, 2 server out, 3 server in, 4/5 admin, 6/7 control, 8/9 tap, 10 the service
svc() { echo "127.0.0.1:$(port "$1" 10)"; }
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

ALLPORTS=("$P_APP" "$P_ID" "$P_DST")
for c in "${CHAINS[@]}"; do for i in $(seq 0 9); do ALLPORTS+=("$(port "$c" "$i")"); done; done
for p in "${ALLPORTS[@]}"; do
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
  --endpoint "$(svc a)=127.0.0.1:$(port a 3),identity=$ID_SERVER,h2" \
  --endpoint "$(svc b)=127.0.0.1:$(port b 3),identity=$ID_SERVER,h2"
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
declare -A PID_S PID_C
for c in "${CHAINS[@]}"; do
  mesh_proxy "server-$c" "$ID_SERVER" "$(port "$c" 3)" "$(port "$c" 2)" "$(port "$c" 5)" "$(port "$c" 7)" "$(port "$c" 9)" "" "127.0.0.1:$P_APP" ||
    { log "server proxy $c did not start"; exit 1; }
  PID_S[$c]=$PID
  mesh_proxy "client-$c" "$ID_CLIENT" "$(port "$c" 1)" "$(port "$c" 0)" "$(port "$c" 4)" "$(port "$c" 6)" "$(port "$c" 8)" "$(svc "$c")" "" ||
    { log "client proxy $c did not start"; exit 1; }
  PID_C[$c]=$PID
done
for c in "${CHAINS[@]}"; do
  wait_ready "$(port "$c" 5)" && wait_ready "$(port "$c" 4)" || { log "proxies not ready: $(tail -c 400 "$OUT"/logs/mesh-*.log)"; exit 1; }
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "Host: $(svc "$c")" "http://127.0.0.1:$(port "$c" 0)/echo")
  [ "$code" = 200 ] || { log "probe through chain $c: ${code:-no answer}"; exit 1; }
done

load() { # chain seconds [json]: both chains' loads run at once (see interval)
  timeout -k 5 $(($2 + 30)) "$FORTIO" load -qps "$QPS" -c "$CONNS" -t "$2s" -uniform -r 0.00001 -loglevel Warning \
    -H "Host: $(svc "$1")" ${3:+-json "$3"} "http://127.0.0.1:$(port "$1" 0)/echo" >>"$OUT/logs/load.$1.log" 2>&1
}
loads() { # seconds [tag]: both chains' loads, concurrently
  local c pids=()
  for c in "${CHAINS[@]}"; do load "$c" "$1" ${2:+"$OUT/load.$2.$c.json"} & pids+=($!); done
  wait "${pids[@]}"
}

# interval ROUND TAPPED: one measured interval with chain TAPPED's server-side proxy
# tapped; appends a row to OUT/runs.tsv.
interval() {
  local r=$1 t=$2 u tapw tapfile="$OUT/tap.r$1.$2.ndjson" perfw="" i c events dropped
  u=$([ "$t" = a ] && echo b || echo a)
  local tapport; tapport=$(port "$t" 9)
  start "$tapfile" curl -sN "http://127.0.0.1:$tapport/tap" || { log "tap client did not start"; exit 1; }
  tapw=$WRAPPER
  # Subscribed once the proxy holds the connection (it flushes the headers first).
  for i in $(seq 100); do ss -Htn state established "sport = :$tapport" | grep -q . && break; sleep 0.05; done
  ss -Htn state established "sport = :$tapport" | grep -q . || { log "tap client not connected"; exit 1; }
  loads "$WARMUP"
  local n0; n0=$(wc -l <"$tapfile") # count the measured interval's events only
  if [ "${PERF:-0}" = 1 ]; then
    start "$OUT/logs/perf.r$r.$t.log" perf record -g -F "${PERF_FREQ:-499}" -p "${PID_S[$t]}" -o "$OUT/perf.r$r.$t.tapped.data" -- sleep "$BENCH_SECONDS"
    perfw=$WRAPPER
    start "$OUT/logs/perf.r$r.$u.log" perf record -g -F "${PERF_FREQ:-499}" -p "${PID_S[$u]}" -o "$OUT/perf.r$r.$u.untapped.data" -- sleep "$BENCH_SECONDS"
    perfw="$perfw $WRAPPER"
  fi
  declare -A s0 c0 s1 c1
  for c in "${CHAINS[@]}"; do s0[$c]=$(cpu_ticks "${PID_S[$c]}") c0[$c]=$(cpu_ticks "${PID_C[$c]}"); done
  local l0; l0=$(cut -d' ' -f1 /proc/loadavg)
  loads "$BENCH_SECONDS" "r$r.$t"
  for c in "${CHAINS[@]}"; do s1[$c]=$(cpu_ticks "${PID_S[$c]}") c1[$c]=$(cpu_ticks "${PID_C[$c]}"); done
  sleep 0.5 # the last responses' events are written when they end
  kill -TERM "$tapw" 2>/dev/null; wait "$tapw" 2>/dev/null
  events=$(tail -n +$((n0 + 1)) "$tapfile" | grep -c '"type":"http"')
  dropped=$(tail -n +$((n0 + 1)) "$tapfile" | jq -s '[.[] | select(.type == "dropped") | .dropped] | add // 0')
  # shellcheck disable=SC2086
  [ -n "$perfw" ] && wait $perfw 2>/dev/null
  secs() { awk -v a="$1" -v b="$2" -v t="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / t }'; }
  local st su ct cu rt ru
  st=$(secs "${s0[$t]}" "${s1[$t]}") su=$(secs "${s0[$u]}" "${s1[$u]}")
  ct=$(secs "${c0[$t]}" "${c1[$t]}") cu=$(secs "${c0[$u]}" "${c1[$u]}")
  rt=$(jq -r '[.RetCodes[]] | add' "$OUT/load.r$r.$t.$t.json") ru=$(jq -r '[.RetCodes[]] | add' "$OUT/load.r$r.$t.$u.json")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$t" "$st" "$su" "$ct" "$cu" "$rt" "$ru" "$events" "$dropped" "$l0" >>"$OUT/runs.tsv"
  log "round $r, chain $t tapped: server cpu s tapped $st, untapped $su; client $ct, $cu; requests $rt, $ru; tap events $events (dropped $dropped); load1 $l0"
}

printf 'round\ttapped\tserver_tapped_s\tserver_untapped_s\tclient_tapped_chain_s\tclient_untapped_chain_s\trequests_tapped\trequests_untapped\ttap_events\ttap_dropped\tload1\n' >"$OUT/runs.tsv"
log "out: $OUT; $ROUNDS rounds of a/b tapped, two chains at $QPS rps each, $CONNS connections, ${WARMUP}s warm-up + ${BENCH_SECONDS}s; tap cap $TAP_CAP/s; nice $(nice)"
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then interval "$r" a; interval "$r" b; else interval "$r" b; interval "$r" a; fi
done

{
  echo "$(date -u +%FT%TZ) $(uname -srm); $(nproc) CPUs; fortio $FORTIO_VERSION; $(go version | cut -d' ' -f3); commit $(git rev-parse --short HEAD 2>/dev/null)"
  echo "command: ROUNDS=$ROUNDS BENCH_SECONDS=$BENCH_SECONDS QPS=$QPS CONNS=$CONNS TAP_CAP=$TAP_CAP hack/bench-tap.sh (warm-up ${WARMUP}s)"
  column -t -s $'\t' "$OUT/runs.tsv"
  awk -F'\t' 'NR > 1 { st += $3; su += $4; ct += $5; cu += $6; q += $7; e += $9 }
    END { printf "server-side proxies cpu s: untapped %.2f, tapped %.2f; client-side (control): %.2f, %.2f (%.3f)\n", su, st, cu, ct, ct / cu
          printf "tap/off cpu=%.3f (%+.1f%%) events=%d requests=%d\n", st / su, (st / su - 1) * 100, e, q
          if (cap + 0 >= qps + 0 && e < q) printf "WARNING: %d tap records for %d requests: events were lost\n", e, q }' \
    cap="$TAP_CAP" qps="$QPS" "$OUT/runs.tsv"
} | tee "$OUT/results.txt"
