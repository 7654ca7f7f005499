#!/usr/bin/env bash
# Side-by-side data-plane benchmark on loopback: client → proxy → proxy → server.
#
# One invocation runs ROUNDS interleaved rounds of every case at QPS requests/s over
# CONNS connections for BENCH_SECONDS (after a warm-up), then prints a table of
# p50/p90/p99 latency, CPU seconds and RSS per hop (medians over rounds), writes
# OUT/results.md and OUT/bench-proxy.svg, and prints as its last line
#   mesh-proxy/haproxy added-p50=R1 cpu=R2 rss=R3
# (HTTP mTLS case: R1 = added p50 over direct, R2 = mean CPU s per hop, R3 = mean RSS
# per hop, mesh-proxy divided by haproxy, same run).
#
# Cases (CASES selects; default all):
#   http-direct   fortio → fortio server (the floor)
#   http-haproxy  fortio → haproxy → [mTLS 1.3 P-256, HTTP/2] → haproxy → server
#   http-nginx    fortio → nginx → [mTLS 1.3 P-256, HTTP/1.1] → nginx → server
#   http-mesh     fortio → mesh-proxy outbound → [mTLS] → mesh-proxy inbound → server
#   grpc-direct, grpc-haproxy, grpc-mesh   ghz → … → fortio gRPC ping
#   tcp-haproxy   haproxy mode tcp with TLS between the hops (HTTP/1.1 load, not parsed)
#   tcp-mesh      mesh-proxy with the port marked opaque
# haproxy runs with nbthread 1, nginx with one worker, mesh-proxy with GOMAXPROCS=1
# (MESH_GOMAXPROCS): one core each, like Linkerd's default proxy.
#
# mesh-proxy gets its certificate and its discovery from a stub control plane
# (hack/benchproxy/cp: a throwaway CA, any CSR signed, static endpoints). If
# mesh-proxy does not build or become ready, its cases are recorded as failed and the
# others still run.
#
# Environment: ROUNDS (3), BENCH_SECONDS (30), WARMUP (5, less for short runs),
# QPS (1000), CONNS (10), CASES, OUT (a new /tmp/bench-proxy.* directory),
# PORT_BASE (20000; ports PORT_BASE+79..+196 on 127.0.0.1), MESH_GOMAXPROCS (1),
# MESH_PROXY_BIN (a prebuilt mesh-proxy instead of building ./proxy/mesh-proxy as the
# release does, with -trimpath -tags grpcnotrace),
# MESH_BENCH_CACHE (~/.cache/mesh-bench: fortio and ghz are installed into its bin),
# DOCS=1 copies the chart to docs/bench-proxy.svg.
# Runs itself under `nice -n -19` when allowed (never SCHED_FIFO), every command under
# `timeout`.
#
# Usage: hack/bench-proxy.sh            (about 17 minutes)
#        BENCH_SECONDS=5 ROUNDS=1 hack/bench-proxy.sh
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

if [ "${BENCH_PROXY_NICED:-}" != 1 ]; then
  export BENCH_PROXY_NICED=1
  if nice -n -19 true 2>/dev/null; then exec nice -n -19 "$0" "$@"; fi
fi

ROUNDS=${ROUNDS:-3}
BENCH_SECONDS=${BENCH_SECONDS:-30}
QPS=${QPS:-1000}
CONNS=${CONNS:-10}
if [ -z "${WARMUP:-}" ]; then
  WARMUP=5
  if [ "$BENCH_SECONDS" -lt 15 ]; then WARMUP=$(( BENCH_SECONDS / 3 > 1 ? BENCH_SECONDS / 3 : 1 )); fi
fi
ALL_CASES="http-direct http-haproxy http-nginx http-mesh grpc-direct grpc-haproxy grpc-mesh tcp-haproxy tcp-mesh"
CASES=${CASES:-$ALL_CASES}
OUT=${OUT:-$(mktemp -d /tmp/bench-proxy.XXXXXX)}
PORT_BASE=${PORT_BASE:-20000}
MESH_GOMAXPROCS=${MESH_GOMAXPROCS:-1}
CACHE=${MESH_BENCH_CACHE:-$HOME/.cache/mesh-bench}
TOOLS=$CACHE/bin
FORTIO_VERSION=v1.66.5
GHZ_VERSION=v0.93.0
export BENCH_SECONDS

mkdir -p "$OUT"/bin "$OUT"/conf "$OUT"/logs "$OUT"/json
OUT=$(cd "$OUT" && pwd)
log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Ports (all on 127.0.0.1).
P_APP=$((PORT_BASE + 80)) P_GRPC=$((PORT_BASE + 79))
P_HAP_A=$((PORT_BASE + 101)) P_HAP_B=$((PORT_BASE + 102))
P_HAPG_A=$((PORT_BASE + 111)) P_HAPG_B=$((PORT_BASE + 112))
P_HAPT_A=$((PORT_BASE + 121)) P_HAPT_B=$((PORT_BASE + 122))
P_NGX_A=$((PORT_BASE + 131)) P_NGX_B=$((PORT_BASE + 132))
P_ID=$((PORT_BASE + 180)) P_DST=$((PORT_BASE + 186))
# mesh-proxy: client side (outbound is what fortio dials) and server side (inbound).
P_MC_OUT=$((PORT_BASE + 140)) P_MC_IN=$((PORT_BASE + 141)) P_MC_ADMIN=$((PORT_BASE + 191)) P_MC_CTL=$((PORT_BASE + 193))
P_MS_OUT=$((PORT_BASE + 142)) P_MS_IN=$((PORT_BASE + 143)) P_MS_ADMIN=$((PORT_BASE + 192)) P_MS_CTL=$((PORT_BASE + 194))
# The tap listeners (127.0.0.1:4192 by default, one per pod): two proxies on one host.
P_MC_TAP=$((PORT_BASE + 195)) P_MS_TAP=$((PORT_BASE + 196))
# "Service" addresses the client proxy routes to as if the client had dialed them
# (MESH_PROXY_OUTBOUND_ORIG_DST); the stub destination maps them to the server proxy.
SVC_HTTP=127.0.0.1:$((PORT_BASE + 90)) SVC_GRPC=127.0.0.1:$((PORT_BASE + 91)) SVC_TCP_PORT=$((PORT_BASE + 92))
SVC_TCP=127.0.0.1:$SVC_TCP_PORT
TD=cluster.local
ID_CLIENT=client.bench.serviceaccount.identity.$TD
ID_SERVER=server.bench.serviceaccount.identity.$TD
ID_SVC=mesh-identity.mesh.serviceaccount.identity.$TD
DST_SVC=mesh-destination.mesh.serviceaccount.identity.$TD
CERTS=$OUT/certs

# Every background process lives at most this long, whatever happens to the script.
LIFE=$(( ROUNDS * 9 * (WARMUP + BENCH_SECONDS + 30) + 900 ))
WRAPPERS=()
cleanup() {
  local w
  for w in "${WRAPPERS[@]}"; do kill -TERM "$w" 2>/dev/null; done
  sleep 0.5
  for w in "${WRAPPERS[@]}"; do kill -KILL "$w" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start LOG cmd...: runs cmd under timeout in the background; sets WRAPPER (the
# timeout process) and PID (the command itself, whose CPU and memory we read).
start() {
  local logf=$1; shift
  timeout -k 5 "$LIFE" "$@" >"$logf" 2>&1 &
  WRAPPER=$!
  WRAPPERS+=("$WRAPPER")
  PID=
  local i
  for i in $(seq 50); do
    PID=$(awk '{print $1}' "/proc/$WRAPPER/task/$WRAPPER/children" 2>/dev/null)
    [ -n "$PID" ] && return 0
    kill -0 "$WRAPPER" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}
stop() { # wrapper pids...
  local w i
  for w in "$@"; do kill -TERM "$w" 2>/dev/null; done
  for w in "$@"; do
    for i in $(seq 40); do kill -0 "$w" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$w" 2>/dev/null
    wait "$w" 2>/dev/null
  done
}
wait_port() { # port [seconds]
  local i
  for i in $(seq $(( ${2:-5} * 20 ))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}
port_busy() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
load1() { cut -d' ' -f1 /proc/loadavg; }
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- tools and builds
ensure_tools() {
  mkdir -p "$TOOLS"
  if [ ! -x "$TOOLS/fortio" ]; then
    log "installing fortio $FORTIO_VERSION into $TOOLS"
    GOBIN=$TOOLS timeout 900 go install "fortio.org/fortio@$FORTIO_VERSION" || { log "fortio install failed"; exit 1; }
  fi
  if [ ! -x "$TOOLS/ghz" ]; then
    log "installing ghz $GHZ_VERSION into $TOOLS"
    GOBIN=$TOOLS timeout 900 go install "github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION" || log "ghz install failed: gRPC cases will fail"
  fi
  if ! command -v haproxy >/dev/null || ! command -v nginx >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      log "installing haproxy and nginx from apt"
      timeout 600 apt-get install -y haproxy nginx >"$OUT/logs/apt.log" 2>&1 ||
        { timeout 300 apt-get update >>"$OUT/logs/apt.log" 2>&1 && timeout 600 apt-get install -y haproxy nginx >>"$OUT/logs/apt.log" 2>&1; } ||
        log "apt-get install haproxy nginx failed (see $OUT/logs/apt.log): their cases will fail"
    else
      log "haproxy or nginx missing (apt-get install haproxy nginx): their cases will fail"
    fi
  fi
}
ensure_tools
FORTIO=$TOOLS/fortio GHZ=$TOOLS/ghz

log "building helpers into $OUT/bin"
timeout 600 go build -o "$OUT/bin/bench-cp" ./hack/benchproxy/cp || { log "building hack/benchproxy/cp failed"; exit 1; }
timeout 600 go build -o "$OUT/bin/bench-report" ./hack/benchproxy/report || { log "building hack/benchproxy/report failed"; exit 1; }
MESH_ERR=
if [ -n "${MESH_PROXY_BIN:-}" ]; then
  MESH_BIN=$MESH_PROXY_BIN
  [ -x "$MESH_BIN" ] || MESH_ERR="MESH_PROXY_BIN=$MESH_BIN is not executable"
else
  MESH_BIN=$OUT/bin/mesh-proxy
  # Built as .goreleaser.yaml releases it: static (CGO_ENABLED=0, no libc mapped),
  # -trimpath, grpcnotrace, stripped.
  if ! CGO_ENABLED=0 timeout 600 go build -trimpath -tags grpcnotrace -ldflags "-s -w" -o "$MESH_BIN" ./proxy/mesh-proxy >"$OUT/logs/mesh-build.log" 2>&1; then
    MESH_ERR="go build ./proxy/mesh-proxy failed: $(tr '\n' ' ' <"$OUT/logs/mesh-build.log" | cut -c1-300)"
    log "$MESH_ERR"
  fi
fi

for p in $P_APP $P_GRPC $P_HAP_A $P_HAP_B $P_HAPG_A $P_HAPG_B $P_HAPT_A $P_HAPT_B $P_NGX_A $P_NGX_B \
  $P_ID $P_DST $P_MC_OUT $P_MC_IN $P_MC_ADMIN $P_MC_CTL $P_MS_OUT $P_MS_IN $P_MS_ADMIN $P_MS_CTL $P_MC_TAP $P_MS_TAP; do
  if port_busy "$p"; then log "port $p is in use: choose another PORT_BASE"; exit 1; fi
done

# ---------------------------------------------------------------- server and control plane
start "$OUT/logs/fortio-server.log" "$FORTIO" server -http-port "127.0.0.1:$P_APP" -grpc-port "127.0.0.1:$P_GRPC" \
  -tcp-port disabled -udp-port disabled -redirect-port disabled -ui-path "" -loglevel Warning
wait_port "$P_APP" 10 && wait_port "$P_GRPC" 10 || { log "fortio server did not start: $(tail -3 "$OUT/logs/fortio-server.log")"; exit 1; }

echo "benchmark token (the stub identity does not check it)" >"$OUT/token"
start "$OUT/logs/cp.log" "$OUT/bin/bench-cp" --anchor-file "$OUT/anchor.pem" --ready-file "$OUT/cp.ready" \
  --certs-dir "$CERTS" --cert "$ID_CLIENT" --cert "$ID_SERVER" \
  --identity-addr "127.0.0.1:$P_ID" --identity-name "$ID_SVC" \
  --dst-addr "127.0.0.1:$P_DST" --dst-name "$DST_SVC" \
  --endpoint "$SVC_HTTP=127.0.0.1:$P_MS_IN,identity=$ID_SERVER,h2" \
  --endpoint "$SVC_GRPC=127.0.0.1:$P_MS_IN,identity=$ID_SERVER,h2" \
  --endpoint "$SVC_TCP=127.0.0.1:$P_MS_IN,identity=$ID_SERVER,opaque=$P_MS_IN"
for _ in $(seq 100); do [ -f "$OUT/cp.ready" ] && break; sleep 0.1; done
[ -f "$OUT/cp.ready" ] || { log "stub control plane did not start: $(tail -3 "$OUT/logs/cp.log")"; exit 1; }

# ---------------------------------------------------------------- peer configurations
TLS13="ssl-min-ver TLSv1.3 ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
hap_cfg() { # file mode bind-line server-line
  cat >"$1" <<EOF
global
  nbthread 1
  maxconn 4096
defaults
  mode $2
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend fe
  $3
  default_backend be
backend be
  $4
EOF
}
SRV_TLS="ssl verify required ca-file $CERTS/ca.pem crt $CERTS/$ID_CLIENT.pem sni str($ID_SERVER) verifyhost $ID_SERVER $TLS13"
BIND_TLS="ssl crt $CERTS/$ID_SERVER.pem ca-file $CERTS/ca.pem verify required $TLS13"
hap_cfg "$OUT/conf/hap-http-A.cfg" http "bind 127.0.0.1:$P_HAP_A" "server b 127.0.0.1:$P_HAP_B $SRV_TLS alpn h2 proto h2"
hap_cfg "$OUT/conf/hap-http-B.cfg" http "bind 127.0.0.1:$P_HAP_B $BIND_TLS alpn h2" "server app 127.0.0.1:$P_APP"
hap_cfg "$OUT/conf/hap-grpc-A.cfg" http "bind 127.0.0.1:$P_HAPG_A proto h2" "server b 127.0.0.1:$P_HAPG_B $SRV_TLS alpn h2 proto h2"
hap_cfg "$OUT/conf/hap-grpc-B.cfg" http "bind 127.0.0.1:$P_HAPG_B $BIND_TLS alpn h2" "server app 127.0.0.1:$P_GRPC proto h2"
hap_cfg "$OUT/conf/hap-tcp-A.cfg" tcp "bind 127.0.0.1:$P_HAPT_A" "server b 127.0.0.1:$P_HAPT_B $SRV_TLS"
hap_cfg "$OUT/conf/hap-tcp-B.cfg" tcp "bind 127.0.0.1:$P_HAPT_B $BIND_TLS" "server app 127.0.0.1:$P_APP"

ngx_cfg() { # name server-block upstream-port
  mkdir -p "$OUT/ngx-$1/logs"
  cat >"$OUT/conf/ngx-$1.conf" <<EOF
worker_processes 1;
master_process off;
daemon off;
pid $OUT/ngx-$1/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  upstream up { server 127.0.0.1:$3; keepalive 64; keepalive_requests 1000000; }
  server {
$2
  }
}
EOF
}
ngx_cfg A "    listen 127.0.0.1:$P_NGX_A;
    location / {
      proxy_pass https://up;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_ssl_certificate $CERTS/$ID_CLIENT.crt;
      proxy_ssl_certificate_key $CERTS/$ID_CLIENT.key;
      proxy_ssl_trusted_certificate $CERTS/ca.pem;
      proxy_ssl_verify on;
      proxy_ssl_name $ID_SERVER;
      proxy_ssl_server_name on;
      proxy_ssl_protocols TLSv1.3;
      proxy_ssl_session_reuse on;
    }" "$P_NGX_B"
ngx_cfg B "    listen 127.0.0.1:$P_NGX_B ssl;
    ssl_certificate $CERTS/$ID_SERVER.crt;
    ssl_certificate_key $CERTS/$ID_SERVER.key;
    ssl_client_certificate $CERTS/ca.pem;
    ssl_verify_client on;
    ssl_protocols TLSv1.3;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
    }" "$P_APP"

# ---------------------------------------------------------------- cases
# A case's setup starts its proxies and sets HOPS (proxy pids, client side first),
# HOP_WRAPPERS, TARGET (host:port the load generator dials) and AUTHORITY (Host or
# :authority to send, empty for the default); it returns non-zero with FAIL set.
HOPS=() HOP_WRAPPERS=() TARGET='' AUTHORITY='' FAIL=''

start_hop() { # name cmd...
  local name=$1; shift
  if ! start "$OUT/logs/$name.r$ROUND.log" "$@"; then
    FAIL="$name did not start: $(tail -c 300 "$OUT/logs/$name.r$ROUND.log" | tr '\n' ' ')"
    return 1
  fi
  HOPS+=("$PID") HOP_WRAPPERS+=("$WRAPPER")
}

setup_haproxy() { # kind portA portB
  command -v haproxy >/dev/null || { FAIL="haproxy not installed"; return 1; }
  start_hop "hap-$1-A" haproxy -db -f "$OUT/conf/hap-$1-A.cfg" || return 1
  start_hop "hap-$1-B" haproxy -db -f "$OUT/conf/hap-$1-B.cfg" || return 1
  wait_port "$2" && wait_port "$3" || { FAIL="haproxy $1 not listening: $(tail -c 300 "$OUT/logs/hap-$1-A.r$ROUND.log" "$OUT/logs/hap-$1-B.r$ROUND.log" | tr '\n' ' ')"; return 1; }
  TARGET=127.0.0.1:$2
}

setup_nginx() {
  command -v nginx >/dev/null || { FAIL="nginx not installed"; return 1; }
  start_hop ngx-A nginx -c "$OUT/conf/ngx-A.conf" -p "$OUT/ngx-A/" -e "$OUT/ngx-A/logs/error.log" || return 1
  start_hop ngx-B nginx -c "$OUT/conf/ngx-B.conf" -p "$OUT/ngx-B/" -e "$OUT/ngx-B/logs/error.log" || return 1
  wait_port "$P_NGX_A" && wait_port "$P_NGX_B" || { FAIL="nginx not listening: $(tail -c 300 "$OUT"/ngx-?/logs/error.log | tr '\n' ' ')"; return 1; }
  TARGET=127.0.0.1:$P_NGX_A
}

mesh_env() { # side(client|server) identity in out admin ctl orig-out orig-in opaque
  mkdir -p "$OUT/mesh-$1"
  MESH_ENV=(env -i PATH="$PATH" HOME="$HOME" GOMAXPROCS="$MESH_GOMAXPROCS"
    MESH_PROXY_LOG=warn
    MESH_PROXY_INBOUND_LISTEN_ADDR="127.0.0.1:$3" MESH_PROXY_OUTBOUND_LISTEN_ADDR="127.0.0.1:$4"
    MESH_PROXY_ADMIN_LISTEN_ADDR="127.0.0.1:$5" MESH_PROXY_CONTROL_LISTEN_ADDR="127.0.0.1:$6"
    MESH_PROXY_TAP_LISTEN_ADDR="127.0.0.1:$(($5 + 4))" # P_MC_TAP / P_MS_TAP
    MESH_PROXY_OUTBOUND_ORIG_DST="$7" MESH_PROXY_INBOUND_ORIG_DST="$8" MESH_PROXY_OPAQUE_PORTS="$9"
    MESH_PROXY_DESTINATION_SVC_ADDR="127.0.0.1:$P_DST" MESH_PROXY_DESTINATION_SVC_NAME="$DST_SVC"
    MESH_PROXY_IDENTITY_SVC_ADDR="127.0.0.1:$P_ID" MESH_PROXY_IDENTITY_SVC_NAME="$ID_SVC"
    MESH_PROXY_IDENTITY_TOKEN_FILE="$OUT/token" MESH_PROXY_IDENTITY_LOCAL_NAME="$2"
    MESH_PROXY_IDENTITY_TRUST_ANCHORS_FILE="$OUT/anchor.pem" MESH_PROXY_IDENTITY_DIR="$OUT/mesh-$1"
    MESH_PROXY_SHUTDOWN_GRACE_PERIOD=1s
    _pod_ns=bench _pod_name="bench-$1")
}

wait_ready() { # name admin-port
  local i code
  for i in $(seq 150); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$2/ready" 2>/dev/null)
    [ "$code" = 200 ] && return 0
    sleep 0.1
  done
  FAIL="$1 not ready after 15 s (admin /ready: ${code:-no answer}): $(tail -c 400 "$OUT/logs/$1.r$ROUND.log" | tr '\n' ' ')"
  return 1
}

setup_mesh() { # kind(http|grpc|tcp)
  [ -z "$MESH_ERR" ] || { FAIL=$MESH_ERR; return 1; }
  local svc app opaque=""
  case $1 in
    http) svc=$SVC_HTTP app=127.0.0.1:$P_APP ;;
    grpc) svc=$SVC_GRPC app=127.0.0.1:$P_GRPC ;;
    tcp) svc=$SVC_TCP app=127.0.0.1:$P_APP opaque="$SVC_TCP_PORT,$P_APP" ;;
  esac
  mesh_env server "$ID_SERVER" "$P_MS_IN" "$P_MS_OUT" "$P_MS_ADMIN" "$P_MS_CTL" "" "$app" "$opaque"
  start_hop "mesh-$1-server" "${MESH_ENV[@]}" "$MESH_BIN" run || return 1
  mesh_env client "$ID_CLIENT" "$P_MC_IN" "$P_MC_OUT" "$P_MC_ADMIN" "$P_MC_CTL" "$svc" "" "$opaque"
  start_hop "mesh-$1-client" "${MESH_ENV[@]}" "$MESH_BIN" run || return 1
  # Client side first in HOPS, like the peers.
  HOPS=("${HOPS[1]}" "${HOPS[0]}") HOP_WRAPPERS=("${HOP_WRAPPERS[1]}" "${HOP_WRAPPERS[0]}")
  wait_ready "mesh-$1-server" "$P_MS_ADMIN" && wait_ready "mesh-$1-client" "$P_MC_ADMIN" || return 1
  TARGET=127.0.0.1:$P_MC_OUT
  # The Host (or :authority) the client would send to the service it dialed.
  AUTHORITY=$svc
}

setup_case() {
  case $1 in
    http-direct) TARGET=127.0.0.1:$P_APP ;;
    grpc-direct) TARGET=127.0.0.1:$P_GRPC ;;
    http-haproxy) setup_haproxy http "$P_HAP_A" "$P_HAP_B" ;;
    grpc-haproxy) setup_haproxy grpc "$P_HAPG_A" "$P_HAPG_B" ;;
    tcp-haproxy) setup_haproxy tcp "$P_HAPT_A" "$P_HAPT_B" ;;
    http-nginx) setup_nginx ;;
    http-mesh) setup_mesh http ;;
    grpc-mesh) setup_mesh grpc ;;
    tcp-mesh) setup_mesh tcp ;;
    *) FAIL="unknown case $1"; return 1 ;;
  esac
}

label_of() {
  case $1 in
    http-direct) echo "HTTP direct (floor)" ;;
    http-haproxy) echo "HTTP haproxy 2 hops, mTLS, h2 between" ;;
    http-nginx) echo "HTTP nginx 2 hops, mTLS, h1 between" ;;
    http-mesh) echo "HTTP mesh-proxy 2 hops, mTLS" ;;
    grpc-direct) echo "gRPC direct (floor)" ;;
    grpc-haproxy) echo "gRPC haproxy 2 hops, mTLS" ;;
    grpc-mesh) echo "gRPC mesh-proxy 2 hops, mTLS" ;;
    tcp-haproxy) echo "TCP haproxy 2 hops, mode tcp + TLS" ;;
    tcp-mesh) echo "TCP mesh-proxy 2 hops, opaque" ;;
  esac
}
base_of() { case $1 in grpc-*) echo grpc-direct ;; *) echo http-direct ;; esac; }
kind_of() { case $1 in grpc-*) echo ghz ;; *) echo fortio ;; esac; }

load_cmd() { # kind seconds json|-
  local kind=$1 secs=$2 json=$3
  if [ "$kind" = fortio ]; then
    LOAD=(timeout -k 5 $((secs + 30)) "$FORTIO" load -qps "$QPS" -c "$CONNS" -t "${secs}s" -uniform -r 0.00001
      -p "50,90,99,99.9" -loglevel Warning)
    [ -n "$AUTHORITY" ] && LOAD+=(-H "Host: $AUTHORITY")
    [ "$json" != - ] && LOAD+=(-json "$json")
    LOAD+=("http://$TARGET/echo")
  else
    LOAD=(timeout -k 5 $((secs + 30)) "$GHZ" --insecure --call fgrpc.PingServer/Ping -d '{"payload":"x"}'
      --rps "$QPS" -c "$CONNS" --connections "$CONNS" -z "${secs}s" --timeout 5s)
    [ -n "$AUTHORITY" ] && LOAD+=(--authority "$AUTHORITY")
    if [ "$json" != - ]; then LOAD+=(-O json -o "$json"); else LOAD+=(-O summary -o /dev/null); fi
    LOAD+=("$TARGET")
  fi
}

probe() { # a single request through the chain, to fail fast with a useful message
  local kind=$1 out
  if [ "$kind" = fortio ]; then
    out=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 ${AUTHORITY:+-H "Host: $AUTHORITY"} "http://$TARGET/echo" 2>&1)
    [ "$out" = 200 ] || { FAIL="probe request through the chain: ${out:-no answer}"; return 1; }
  fi
  return 0
}

run_case() { # case
  local c=$1 kind json l0 l1 status=ok note="" cpu="" rss="" i
  kind=$(kind_of "$c")
  json=$OUT/json/$c.r$ROUND.json
  HOPS=() HOP_WRAPPERS=() TARGET='' AUTHORITY='' FAIL=''
  l0=$(load1) l1=$l0
  if setup_case "$c" && probe "$kind"; then
    load_cmd "$kind" "$WARMUP" -
    "${LOAD[@]}" >"$OUT/logs/$c.r$ROUND.warmup.log" 2>&1
    local before=()
    for i in "${!HOPS[@]}"; do before[i]=$(cpu_ticks "${HOPS[i]}"); done
    l0=$(load1)
    load_cmd "$kind" "$BENCH_SECONDS" "$json"
    if ! "${LOAD[@]}" >"$OUT/logs/$c.r$ROUND.load.log" 2>&1; then
      status=failed note="load generator failed: $(tail -c 300 "$OUT/logs/$c.r$ROUND.load.log" | tr '\n\t' '  ')"
    fi
    l1=$(load1)
    if [ "${c%-mesh}" != "$c" ]; then # the proxies' own view: mTLS, identities, protocol
      curl -s --max-time 2 "http://127.0.0.1:$P_MC_ADMIN/metrics" >"$OUT/logs/$c.r$ROUND.client.metrics" 2>&1
      curl -s --max-time 2 "http://127.0.0.1:$P_MS_ADMIN/metrics" >"$OUT/logs/$c.r$ROUND.server.metrics" 2>&1
      grep -Eq "^(request_total|tcp_open_total)\{.*client_id=\"$ID_CLIENT\".*tls=\"true\"" "$OUT/logs/$c.r$ROUND.server.metrics" ||
        note="unverified: the server proxy's /metrics show no request_total or tcp_open_total with tls=\"true\" from $ID_CLIENT"
    fi
    for i in "${!HOPS[@]}"; do
      kill -0 "${HOPS[i]}" 2>/dev/null || { status=failed note="hop $i (pid ${HOPS[i]}) died during the run"; }
      cpu+=${cpu:+,}$(awk -v a="${before[i]}" -v b="$(cpu_ticks "${HOPS[i]}")" -v t="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / t }')
      rss+=${rss:+,}$(rss_kib "${HOPS[i]}")
    done
  else
    status=failed note=$FAIL
  fi
  [ -n "${HOP_WRAPPERS[*]}" ] && stop "${HOP_WRAPPERS[@]}"
  note=$(printf '%s' "$note" | tr '\t\n' '  ' | cut -c1-500)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$ROUND" "$c" "$(label_of "$c")" "$(base_of "$c")" "$kind" \
    "$status" "$json" "$l0" "$l1" "${cpu:--}" "${rss:--}" "$note" >>"$OUT/runs.tsv"
  if [ "$status" = ok ]; then log "round $ROUND $c: done (load1 $l0 → $l1; cpu s per hop ${cpu:--}; rss KiB ${rss:--})"
  else log "round $ROUND $c: FAILED: $note"; fi
}

printf 'round\tcase\tlabel\tbase\tkind\tstatus\tjson\tload1_start\tload1_end\tcpu_s\trss_kib\tnote\n' >"$OUT/runs.tsv"
log "out: $OUT; $ROUNDS rounds × {$CASES}; $QPS rps, $CONNS connections, ${WARMUP}s warm-up + ${BENCH_SECONDS}s; nice $(nice)"
for ROUND in $(seq "$ROUNDS"); do
  for c in $CASES; do run_case "$c"; done
done

{
  echo "$(date -u +%FT%TZ) $(uname -srm); $(nproc) CPUs; $(haproxy -v 2>/dev/null | head -1 | cut -d' ' -f1-3); $(nginx -v 2>&1); fortio $FORTIO_VERSION; ghz $GHZ_VERSION; $(go version | cut -d' ' -f3)"
  echo "command: ROUNDS=$ROUNDS BENCH_SECONDS=$BENCH_SECONDS QPS=$QPS CONNS=$CONNS hack/bench-proxy.sh (warm-up ${WARMUP}s)"
} >"$OUT/env.txt"
cat "$OUT/env.txt"
REPORT_SUBTITLE="$QPS rps, $CONNS connections, ${BENCH_SECONDS} s after ${WARMUP} s warm-up, median of $ROUNDS round(s); $(date -u +%F), $(nproc) shared vCPUs"
export REPORT_SUBTITLE
if ! "$OUT/bin/bench-report" "$OUT" >"$OUT/report.txt" 2>&1; then
  cat "$OUT/report.txt"
  echo "mesh-proxy/haproxy added-p50=n/a cpu=n/a rss=n/a"
  exit 1
fi
if [ "${DOCS:-0}" = 1 ]; then cp "$OUT/bench-proxy.svg" docs/bench-proxy.svg && log "copied the chart to docs/bench-proxy.svg"; fi
cat "$OUT/report.txt"
