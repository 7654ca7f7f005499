#!/usr/bin/env bash
# Whole-process timing of `mesh install` (and `mesh install --ha`), as a user runs it:
# a release-like build, 5 warm-up runs, then RUNS measured runs; prints the median, p90
# and max wall time in ms and the max RSS. Usage: hack/bench-install.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-30}
mkdir -p bin
go build -trimpath -ldflags "-s -w -X github.com/meshplane/mesh/controlplane/api/version.version=v0.0.0-bench" -o bin/mesh-bench ./cli/mesh
measure() { # label args...
  local label=$1; shift
  for _ in 1 2 3 4 5; do bin/mesh-bench "$@" >/dev/null; done
  local times=() t0 t1
  for _ in $(seq "$RUNS"); do
    t0=$(date +%s%N); bin/mesh-bench "$@" >/dev/null; t1=$(date +%s%N)
    times+=($(( (t1 - t0) / 1000 )))
  done
  local rss="n/a"
  if [ -x /usr/bin/time ]; then rss="$(/usr/bin/time -f %M bin/mesh-bench "$@" 2>&1 >/dev/null | tail -1) KiB"; fi
  printf '%s\n' "${times[@]}" | sort -n | awk -v label="$label" -v rss="$rss" -v n="$RUNS" '
    { a[NR] = $1 }
    END { printf "%-28s runs=%d median=%.1fms p90=%.1fms max=%.1fms maxrss=%s\n", label, n, a[int((n+1)/2)]/1000, a[int(n*0.9)]/1000, a[n]/1000, rss }'
}
measure "mesh install" install
measure "mesh install --ha" install --ha
measure "mesh install -o json" install -o json
measure "mesh version (process floor)" version --client
