#!/usr/bin/env bash
# Whole-process timing and memory of `mesh inject`, as a user runs it:
#   1,000 Deployments (~700 KB): annotation mode and --manual, RUNS runs each (median, max);
#   a ~100 MB manifest (~140,000 Deployments): time and max RSS (memory must not grow with the input).
# Usage: hack/bench-inject.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-10}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p bin
go build -trimpath -ldflags "-s -w -X github.com/meshplane/mesh/controlplane/api/version.version=v0.0.0-bench" -o bin/mesh-bench ./cli/mesh

gen() { # count file: realistic Deployments, about 700 bytes each
  awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++) printf "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-%d\n  namespace: shop\n  labels:\n    app.kubernetes.io/name: app-%d\n    app.kubernetes.io/part-of: shop\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: app-%d\n  template:\n    metadata:\n      labels:\n        app.kubernetes.io/name: app-%d\n    spec:\n      containers:\n      - name: app\n        image: registry.example.com/shop/app-%d:1.4.2\n        args: [\"--port=8080\", \"--log-level=info\"]\n        ports:\n        - name: http\n          containerPort: 8080\n        env:\n        - name: DATABASE_URL\n          value: postgres://db.shop.svc:5432/shop\n        resources:\n          requests: {cpu: 100m, memory: 128Mi}\n          limits: {memory: 256Mi}\n        readinessProbe:\n          httpGet: {path: /healthz, port: http}\n", i, i, i, i, i }' > "$2"
}
gen 1000 "$tmp/1k.yaml"
gen 140000 "$tmp/100m.yaml"
printf 'input: 1k.yaml %s bytes; 100m.yaml %s bytes\n' "$(wc -c <"$tmp/1k.yaml")" "$(wc -c <"$tmp/100m.yaml")"

measure() { # label args...
  local label=$1; shift
  bin/mesh-bench "$@" >/dev/null 2>&1
  local times=() t0 t1
  for _ in $(seq "$RUNS"); do
    t0=$(date +%s%N); bin/mesh-bench "$@" >/dev/null 2>&1; t1=$(date +%s%N)
    times+=($(( (t1 - t0) / 1000 )))
  done
  local rss; rss=$(/usr/bin/time -f %M bin/mesh-bench "$@" 2>&1 >/dev/null | tail -1)
  printf '%s\n' "${times[@]}" | sort -n | awk -v label="$label" -v rss="$rss" -v n="$RUNS" '
    { a[NR] = $1 } END { printf "%-40s runs=%d median=%.0fms max=%.0fms maxrss=%.1fMiB\n", label, n, a[int((n+1)/2)]/1000, a[n]/1000, rss/1024 }'
}
measure "inject 1,000 Deployments" inject -f "$tmp/1k.yaml"
measure "inject --manual 1,000 Deployments" inject --manual -f "$tmp/1k.yaml"
bin/mesh-bench inject --manual -q -f "$tmp/1k.yaml" > "$tmp/1k-manual.yaml"
measure "uninject of the --manual output" uninject -f "$tmp/1k-manual.yaml"
RUNS=1 measure "inject ~100 MB (140,000 Deployments)" inject -q -f "$tmp/100m.yaml"
RUNS=1 measure "inject --manual ~100 MB" inject --manual -q -f "$tmp/100m.yaml"
