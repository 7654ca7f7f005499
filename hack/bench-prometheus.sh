#!/usr/bin/env bash
# Prometheus memory for PROXIES simulated proxies, with the Prometheus that
# `mesh install --set prometheus.enabled=true` renders (its scrape and evaluation
# interval, relabelling, metric relabelling, recording rules and retention).
#
# hack/benchprom turns the render into a plain prometheus.yml whose
# kubernetes_sd_configs is a file_sd_configs of PROXIES targets on 127.0.0.1, each with
# the __meta_kubernetes_* labels of a meshed Deployment pod (so the rendered
# relabelling runs unchanged), and serves PROXIES /metrics endpoints from the proxy's
# own metrics package (proxy/metrics) with simulated traffic. Debian's prometheus
# (apt-get install prometheus; its systemd service is not used) runs on
# 127.0.0.1:PROM_PORT with its own --storage.tsdb.path under OUT. Every SAMPLE_EVERY
# seconds for DURATION seconds the script records Prometheus's VmRSS (/proc), its
# go_memstats_heap_inuse_bytes and prometheus_tsdb_head_series (its own /metrics), and
# the samples per scrape; OUT/samples.tsv holds them, and the summary goes to stdout.
#
# Environment: DURATION (900), SAMPLE_EVERY (30), PROXIES (100), PORT_BASE (29000:
# the proxies listen on PORT_BASE..PORT_BASE+PROXIES-1, below the ephemeral range), PROM_PORT (29190), OUT (a new
# /tmp/bench-prometheus.* directory), and hack/benchprom's traffic shape: CLIENTS (3),
# DSTS (3), ENDPOINTS (3), ROUTES (2), RPS (20 per proxy and direction).
# Every background process runs under `timeout`.
#
# Usage: hack/bench-prometheus.sh                 (15 minutes)
#        DURATION=60 SAMPLE_EVERY=10 hack/bench-prometheus.sh
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

DURATION=${DURATION:-900}
SAMPLE_EVERY=${SAMPLE_EVERY:-30}
PROXIES=${PROXIES:-100}
PORT_BASE=${PORT_BASE:-29000}
PROM_PORT=${PROM_PORT:-29190}
OUT=${OUT:-$(mktemp -d /tmp/bench-prometheus.XXXXXX)}
mkdir -p "$OUT"/bin "$OUT"/tsdb
OUT=$(cd "$OUT" && pwd)
log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

command -v prometheus >/dev/null || { log "prometheus missing: apt-get install -y prometheus (then systemctl disable --now prometheus)"; exit 1; }
command -v jq >/dev/null || { log "jq missing: apt-get install -y jq"; exit 1; }

WRAPPERS=()
cleanup() {
  local w
  for w in "${WRAPPERS[@]}"; do kill -TERM "$w" 2>/dev/null; done
  sleep 1
  for w in "${WRAPPERS[@]}"; do kill -KILL "$w" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
LIFE=$((DURATION + 300))
# start LOG cmd...: sets WRAPPER (the timeout process) and PID (the command).
start() {
  local logf=$1 i; shift
  timeout -k 5 "$LIFE" "$@" >"$logf" 2>&1 &
  WRAPPER=$!
  WRAPPERS+=("$WRAPPER")
  PID=
  for i in $(seq 100); do
    PID=$(awk '{print $1}' "/proc/$WRAPPER/task/$WRAPPER/children" 2>/dev/null)
    [ -n "$PID" ] && return 0
    sleep 0.05
  done
  return 1
}

# Every port, listening or not (outgoing connections take ports from the ephemeral
# range, /proc/sys/net/ipv4/ip_local_port_range: keep PORT_BASE below it).
for p in $(seq "$PORT_BASE" $((PORT_BASE + PROXIES - 1))) $PROM_PORT; do
  if ss -Hatn "sport = :$p" | grep -q .; then log "port $p is in use: choose another PORT_BASE or PROM_PORT"; exit 1; fi
done

log "building hack/benchprom; rendering mesh install --set prometheus.enabled=true"
timeout 600 go build -o "$OUT/bin/benchprom" ./hack/benchprom || { log "building hack/benchprom failed"; exit 1; }
timeout 600 go run ./cli/mesh install --set prometheus.enabled=true >"$OUT/install.yaml" || { log "mesh install failed"; exit 1; }
"$OUT/bin/benchprom" config --dir "$OUT" --proxies "$PROXIES" --port-base "$PORT_BASE" <"$OUT/install.yaml" || exit 1
mapfile -t PROM_FLAGS <"$OUT/flags"
log "rendered: $(grep -E 'scrape_interval|evaluation_interval' "$OUT/prometheus.yml" | tr -s ' \n' ' ')${PROM_FLAGS[*]}; resources $(cat "$OUT/resources")"

start "$OUT/benchprom.log" "$OUT/bin/benchprom" serve --proxies "$PROXIES" --port-base "$PORT_BASE" \
  --clients "${CLIENTS:-3}" --dsts "${DSTS:-3}" --endpoints "${ENDPOINTS:-3}" --routes "${ROUTES:-2}" --rps "${RPS:-20}" \
  --duration "$((LIFE))s" --ready-file "$OUT/benchprom.ready" || { log "benchprom serve did not start"; exit 1; }
for _ in $(seq 100); do [ -f "$OUT/benchprom.ready" ] && break; sleep 0.1; done
[ -f "$OUT/benchprom.ready" ] || { log "benchprom serve not ready: $(tail -3 "$OUT/benchprom.log")"; exit 1; }
LINES=$(curl -s "http://127.0.0.1:$PORT_BASE/metrics" | grep -vc '^#')
log "one proxy's exposition: $LINES sample lines"

prometheus --version 2>&1 | head -1 >"$OUT/prometheus-version"
start "$OUT/prometheus.log" prometheus --config.file="$OUT/prometheus.yml" --storage.tsdb.path="$OUT/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT" "${PROM_FLAGS[@]}" || { log "prometheus did not start"; exit 1; }
PROM_PID=$PID
API=http://127.0.0.1:$PROM_PORT
for _ in $(seq 200); do curl -sf "$API/-/ready" >/dev/null && break; sleep 0.1; done
curl -sf "$API/-/ready" >/dev/null || { log "prometheus not ready: $(tail -5 "$OUT/prometheus.log")"; exit 1; }
log "prometheus pid $PROM_PID on $API, tsdb $OUT/tsdb; sampling every ${SAMPLE_EVERY}s for ${DURATION}s"

q() { curl -s --max-time 5 "$API/api/v1/query" --data-urlencode "query=$1" | jq -r '.data.result[0].value[1] // "-"'; }
self() { curl -s --max-time 5 "$API/metrics" | awk -v m="$1" '$1 == m {print $2; exit}'; }
printf 't_s\trss_mib\thwm_mib\theap_inuse_mib\thead_series\tup\tsamples_per_scrape_sum\tload1\n' >"$OUT/samples.tsv"
T0=$(date +%s)
while :; do
  now=$(date +%s) el=$((now - T0))
  kill -0 "$PROM_PID" 2>/dev/null || { log "prometheus died: $(tail -5 "$OUT/prometheus.log")"; exit 1; }
  rss=$(awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$PROM_PID/status")
  hwm=$(awk '/^VmHWM:/ {printf "%.1f", $2 / 1024}' "/proc/$PROM_PID/status")
  heap=$(self go_memstats_heap_inuse_bytes | awk '{printf "%.1f", $1 / 1048576}')
  head=$(self prometheus_tsdb_head_series)
  up=$(q 'sum(up{job="mesh-proxy"})')
  sps=$(q 'sum(scrape_samples_post_metric_relabeling{job="mesh-proxy"})')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$el" "$rss" "$hwm" "$heap" "$head" "$up" "$sps" "$(cut -d' ' -f1 /proc/loadavg)" >>"$OUT/samples.tsv"
  log "t=${el}s rss ${rss} MiB (hwm $hwm), heap in use ${heap} MiB, head series $head, up $up, samples/scrape $sps"
  [ "$el" -ge "$DURATION" ] && break
  sleep "$SAMPLE_EVERY"
done

RULE_SERIES=$(q 'count({__name__=~".+:.+"})')
PER_SCRAPE=$(q 'avg(scrape_samples_post_metric_relabeling{job="mesh-proxy"})')
LINES_END=$(curl -s "http://127.0.0.1:$PORT_BASE/metrics" | grep -vc '^#')
TSDB=$(du -sm "$OUT/tsdb" | cut -f1)
{
  echo "$(date -u +%FT%TZ) $(cat "$OUT/prometheus-version"); $(nproc) CPUs; commit $(git rev-parse --short HEAD 2>/dev/null)"
  echo "rendered: $(grep -E 'scrape_interval|evaluation_interval' "$OUT/prometheus.yml" | tr -s ' \n' ' ')${PROM_FLAGS[*]}; resources $(cat "$OUT/resources")"
  echo "$PROXIES proxies; one proxy's exposition: $LINES sample lines at the start, $LINES_END at the end; samples per scrape after relabelling: $PER_SCRAPE (mean over the proxies); recording-rule series: $RULE_SERIES"
  echo "TSDB on disk after ${DURATION}s: ${TSDB} MiB"
  column -t -s $'\t' "$OUT/samples.tsv"
} | tee "$OUT/results.txt"
