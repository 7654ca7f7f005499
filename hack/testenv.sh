#!/usr/bin/env bash
# The project's test cluster: a real Kubernetes control plane on 127.0.0.1 (etcd,
# kube-apiserver, kube-controller-manager; no kubelet or scheduler, so Pods stay Pending).
# No container engine and no prebuilt downloads: Debian packages plus the Go module proxy.
#
#   hack/testenv.sh install   apt-get what is missing; build the Kubernetes binaries once (cached)
#   hack/testenv.sh start     start the cluster (does nothing if it already runs)
#   hack/testenv.sh stop      stop it and delete its data
#   hack/testenv.sh env       print exports, for: eval "$(hack/testenv.sh env)"
#   hack/testenv.sh status    say whether it runs (exit 0 if it does, 1 if not)
#
# Settings (environment) and costs: docs/development.md.
set -euo pipefail

K8S_VERSION=${MESH_TESTENV_K8S_VERSION:-1.36.3}                # k8s.io/kubernetes module version
TESTENV_HOME=${MESH_TESTENV_HOME:-$HOME/.cache/mesh-testenv}  # build module, binaries, run dir
RUN=${MESH_TESTENV_RUN:-$TESTENV_HOME/run}                    # certs, etcd data, logs, pids, kubeconfig
case $TESTENV_HOME in /*) ;; *) TESTENV_HOME=$PWD/$TESTENV_HOME ;; esac
case $RUN in /*) ;; *) RUN=$PWD/$RUN ;; esac
BIN=$TESTENV_HOME/v$K8S_VERSION/bin
PKI=$RUN/pki
ETCD=${MESH_TESTENV_ETCD:-/usr/bin/etcd}  # Debian's etcd-server (3.4) works with this apiserver
ETCD_PORT=${MESH_TESTENV_ETCD_PORT:-23790}
ETCD_PEER_PORT=${MESH_TESTENV_ETCD_PEER_PORT:-23791}
API_PORT=${MESH_TESTENV_API_PORT:-26443}
TIMEOUT=${MESH_TESTENV_TIMEOUT:-120}  # seconds to wait for each component to become ready
PROCS=(etcd kube-apiserver kube-controller-manager)

log() { echo "testenv: $*" >&2; }
die() { log "$*"; exit 1; }

install() {
	local pkgs=() sudo=()
	[ -x "$ETCD" ] || pkgs+=(etcd-server)
	command -v openssl >/dev/null || pkgs+=(openssl)
	command -v curl >/dev/null || pkgs+=(curl)
	if ((${#pkgs[@]})); then
		log "apt-get install ${pkgs[*]}"
		[ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >&2
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}" </dev/null >&2
	fi
	built || build
	log "$BIN: $("$BIN/kube-apiserver" --version); $("$ETCD" --version 2>&1 | sed -n 1p)"
}
# Every Kubernetes command the project runs: this cluster's, and the real node's
# (hack/cluster.sh), built together so they share one build and one cache.
K8S_CMDS=(kube-apiserver kube-controller-manager kubectl kube-scheduler kubelet kube-proxy)
built() {
	local c
	for c in "${K8S_CMDS[@]}"; do [ -x "$BIN/$c" ] || return 1; done
}

# build: the commands in K8S_CMDS from the k8s.io/kubernetes module.
# `go install k8s.io/kubernetes/cmd/...@v` refuses (the module has replace directives), so a
# throwaway module requires it and pins each staging module it replaces (k8s.io/api,
# k8s.io/apiserver, ...) to the matching v0.X.Y. Always the same flags: the Go build cache
# then serves a rebuild (cold: 5-8 min on 2 cores, ~3 GB of build cache; warm: ~30 s).
build() {
	local dir=$TESTENV_HOME/v$K8S_VERSION/build minor=${K8S_VERSION#*.}
	minor=${minor%%.*}
	mkdir -p "$dir" "$BIN"
	exec 9>"$dir.lock"
	if command -v flock >/dev/null; then flock 9; fi # one build at a time
	built && return 0 # by another install, while this one waited for the lock
	log "building Kubernetes v$K8S_VERSION in $dir (5-8 min cold; ~30 s with a warm Go build cache)"
	(
		cd "$dir"
		export GOWORK=off
		printf 'module mesh-testenv-build\n' >go.mod && rm -f go.sum
		local kmod
		kmod=$(go list -m -f '{{.GoMod}}' "k8s.io/kubernetes@v$K8S_VERSION")
		{
			printf 'module mesh-testenv-build\n\n%s\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n' \
				"$(grep -m1 '^go ' "$kmod")" "$K8S_VERSION"
			sed -n '/^replace (/,/^)/p' "$kmod" | awk -v v="v0.${K8S_VERSION#*.}" '/=> *\.\/staging\// { printf "\t%s => %s %s\n", $1, $1, v }'
			printf ')\n\ntool (\n'
			printf '\tk8s.io/kubernetes/cmd/%s\n' "${K8S_CMDS[@]}"
			printf ')\n'
		} >go.mod
		go mod tidy
		# Without these, /version reports v0.0.0 and kubectl warns about version skew.
		local ldflags="-s -w" pkg
		for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
			ldflags+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
		done
		rm -rf out && mkdir out
		go build -ldflags "$ldflags" -o out/ "${K8S_CMDS[@]/#/k8s.io/kubernetes/cmd/}"
		mv out/* "$BIN/"
	)
	exec 9>&-
}

# PKI helpers: an EC P-256 key; a certificate signed by the CA in the current directory.
ossl() { openssl "$@" 2>>openssl.log || { tail -5 openssl.log >&2; die "openssl $1 failed"; }; }
newkey() { ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
sign() { # name subject extensions
	newkey "$1.key"
	ossl req -new -key "$1.key" -subj "$2" |
		ossl x509 -req -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -out "$1.crt" -extfile <(printf '%b\n' "$3")
}

# certs: CA, apiserver serving cert (SANs: API_SANS), admin client cert (O=system:masters),
# the service-account signing key, and what the caller's extra_certs function makes; made
# once and kept in $PKI (they name no port).
API_SANS=${API_SANS:-IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes.default.svc}
extra_certs() { :; }
certs() {
	local tmp=$PKI.tmp
	[ -s "$PKI/sa.pub" ] && return 0 # made last, and the set is moved into place at once
	rm -rf "$tmp" && mkdir -p "$tmp"
	(
		cd "$tmp"
		newkey ca.key
		ossl req -x509 -new -key ca.key -out ca.crt -days 3650 -subj /CN=mesh-testenv-ca \
			-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
		sign apiserver /CN=kube-apiserver "extendedKeyUsage=serverAuth\nsubjectAltName=$API_SANS"
		sign admin /O=system:masters/CN=mesh-testenv-admin "extendedKeyUsage=clientAuth"
		extra_certs
		newkey sa.key
		ossl pkey -in sa.key -pubout -out sa.pub
	)
	rm -rf "$PKI" && mv "$tmp" "$PKI"
}

api() { # path: GET it as admin; fails unless 2xx
	curl -sf --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
		"https://${API_HOST:-127.0.0.1}:$API_PORT$1" >/dev/null 2>&1
}
binary() { if [ "$1" = etcd ]; then echo "$ETCD"; else echo "$BIN/$1"; fi; }
alive() { # name: the process in $RUN/name.pid runs, and is that program (not a reused pid)
	local pid ppid state arg0=''
	pid=$(cat "$RUN/$1.pid" 2>/dev/null) || return 1
	[ -r "/proc/$pid/status" ] || return 1
	state=$(awk '/^State:/{print $2}' "/proc/$pid/status" 2>/dev/null)
	[ -n "$state" ] && [ "$state" != Z ] || return 1
	IFS= read -r -d '' arg0 2>/dev/null <"/proc/$pid/cmdline" || true
	[ "$arg0" = "$(binary "$1")" ] && return 0
	# Launched by this very script and not exec'd yet (a loaded machine is slow to get
	# there): still ours. Taking it for dead would leave it running after a teardown.
	ppid=$(awk '/^PPid:/{print $2}' "/proc/$pid/status" 2>/dev/null)
	[ "$ppid" = "$$" ]
}
running() {
	local p
	for p in "${PROCS[@]}"; do alive "$p" || return 1; done
	[ -f "$RUN/kubeconfig" ] && api /readyz
}
launch() { # name args...: run the program in the background; output in $RUN/name.log
	local name=$1
	shift
	"$(binary "$name")" "$@" </dev/null >"$RUN/$name.log" 2>&1 &
	echo $! >"$RUN/$name.pid"
}
await() { # name what check...: wait until the check passes; on failure show the log and stop
	local name=$1 what=$2 deadline=$((SECONDS + TIMEOUT))
	shift 2
	until "$@"; do
		if ! alive "$name" || [ $SECONDS -ge $deadline ]; then
			log "$name: no $what ($(alive "$name" && echo "timeout after ${TIMEOUT}s" || echo exited)); last lines of $RUN/$name.log:"
			tail -n 30 "$RUN/$name.log" | sed 's/^/    /' >&2
			stop >/dev/null 2>&1
			exit 1
		fi
		sleep 0.1
	done
}
port_free() { ! timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

start() {
	local p
	umask 077
	for p in "${PROCS[@]}"; do [ -x "$(binary "$p")" ] || die "no $(binary "$p"): run hack/testenv.sh install"; done
	if running; then log "already running: https://127.0.0.1:$API_PORT" && return 0; fi
	stop 2>/dev/null # what is left of an earlier, failed or crashed run
	for p in "$ETCD_PORT:MESH_TESTENV_ETCD_PORT" "$ETCD_PEER_PORT:MESH_TESTENV_ETCD_PEER_PORT" "$API_PORT:MESH_TESTENV_API_PORT"; do
		port_free "${p%%:*}" || die "port 127.0.0.1:${p%%:*} is in use: choose another with ${p#*:}=..."
	done
	mkdir -p "$RUN"
	certs
	local etcd_url=http://127.0.0.1:$ETCD_PORT peer_url=http://127.0.0.1:$ETCD_PEER_PORT # --unsafe-no-fsync: speed
	launch etcd --name mesh-testenv --data-dir "$RUN/etcd-data" --unsafe-no-fsync \
		--listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
		--listen-peer-urls "$peer_url" --initial-advertise-peer-urls "$peer_url" \
		--initial-cluster "mesh-testenv=$peer_url"
	await etcd health curl -sf --max-time 2 "$etcd_url/health" -o /dev/null
	# --endpoint-reconciler-type=none: the apiserver would otherwise publish its loopback
	# address in the `kubernetes` Endpoints and log errors about it.
	launch kube-apiserver --etcd-servers="$etcd_url" \
		--bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
		--endpoint-reconciler-type=none --service-cluster-ip-range=10.0.0.0/24 \
		--tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
		--client-ca-file="$PKI/ca.crt" --authorization-mode=RBAC --allow-privileged=true \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key"
	await kube-apiserver /readyz api /readyz
	cat >"$RUN/kubeconfig.tmp" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: mesh-testenv, cluster: {server: "https://127.0.0.1:$API_PORT", certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")}}]
users: [{name: admin, user: {client-certificate-data: $(base64 -w0 "$PKI/admin.crt"), client-key-data: $(base64 -w0 "$PKI/admin.key")}}]
contexts: [{name: mesh-testenv, context: {cluster: mesh-testenv, user: admin}}]
current-context: mesh-testenv
EOF
	mv "$RUN/kubeconfig.tmp" "$RUN/kubeconfig"
	ln -sfn "$BIN/kubectl" "$RUN/kubectl" # the matching kubectl, where internal/testing/testcluster looks too
	# Deployments -> ReplicaSets -> Pods, default ServiceAccounts, EndpointSlices, garbage
	# collection, namespace deletion. No nodes exist, so the node lifecycle controllers are off.
	launch kube-controller-manager --kubeconfig="$RUN/kubeconfig" --leader-elect=false --secure-port=0 \
		--controllers='*,-node-lifecycle-controller,-taint-eviction-controller' \
		--root-ca-file="$PKI/ca.crt" --service-account-private-key-file="$PKI/sa.key" \
		--flex-volume-plugin-dir="$RUN/flexvolume"
	await kube-controller-manager "default ServiceAccount" api /api/v1/namespaces/default/serviceaccounts/default
	log "running: https://127.0.0.1:$API_PORT, kubeconfig $RUN/kubeconfig, logs $RUN/*.log"
}

terminate() { # names...: SIGTERM to all, up to 10 s to exit, then SIGKILL
	local n deadline=$((SECONDS + 10))
	for n; do if alive "$n"; then kill "$(cat "$RUN/$n.pid")" 2>/dev/null || true; fi; done
	for n; do
		while alive "$n" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
		if alive "$n"; then
			log "$n did not stop in 10 s: killing it"
			kill -9 "$(cat "$RUN/$n.pid")" 2>/dev/null || true
		fi
		while alive "$n" && [ $SECONDS -lt $((deadline + 5)) ]; do sleep 0.1; done
		rm -f "$RUN/$n.pid"
	done
}

stop() {
	# The controller-manager and the apiserver first, so that they do not log etcd errors.
	terminate kube-controller-manager kube-apiserver
	terminate etcd
	rm -rf "$RUN/etcd-data" "$RUN/kubeconfig" "$RUN/flexvolume"
	log "stopped"
}

env_() {
	printf 'export MESH_TEST_KUBECONFIG=%q\n' "$RUN/kubeconfig"
	printf 'export KUBECONFIG=%q\n' "$RUN/kubeconfig"
	if [ -x "$BIN/kubectl" ]; then printf 'export MESH_TEST_KUBECTL=%q\n' "$BIN/kubectl"; fi
	running || log "warning: the test cluster is not running (hack/testenv.sh start)"
}

status() {
	if running; then echo "running: https://127.0.0.1:$API_PORT, kubeconfig $RUN/kubeconfig" && return 0; fi
	local p up=()
	for p in "${PROCS[@]}"; do if alive "$p"; then up+=("$p"); fi; done
	echo "not running${up[*]:+ (but ${up[*]} run: see $RUN/*.log, or hack/testenv.sh stop)}"
	return 1
}

# Sourced (hack/cluster.sh shares the build and these functions), it only defines them.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	case ${1:-} in
	install | start | stop | status) "$1" ;;
	env) env_ ;;
	*) die "usage: $0 install|start|stop|env|status" ;;
	esac
fi
