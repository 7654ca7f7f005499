#!/usr/bin/env bash
# hack/demo.sh: the mesh in transparent mode, end to end, on this machine.
#
# Two "pods" are two Linux network namespaces joined by a bridge. Their API objects live
# in the project's test cluster (hack/testenv.sh): Pods written by `mesh inject --manual`,
# a Service, the EndpointSlice the controller-manager publishes. This script plays the
# kubelet: it runs each pod's mesh-init (iptables) and mesh-proxy (as UID 2102) from the
# injected pod spec, with a real ServiceAccount token and the trust roots the identity
# service published. The control plane is the real one: `mesh-controller identity` and
# `mesh-controller destination` against the test cluster.
#
# An unmodified client (curl) calls the server (a plain HTTP app) by its Service address;
# the demo then shows, and checks, that the server's proxy saw the client's identity over
# mTLS and that both proxies' /metrics counted the requests with tls="true".
#
#   hack/testenv.sh start && hack/demo.sh
#
# Needs: Linux, root, iproute2 (ip netns), iptables, curl, jq, setpriv; Go unless
# MESH_DEMO_BIN names a directory with mesh, mesh-controller, mesh-proxy and demoapp
# (./e2e/demoapp) already built.
# Everything it creates (processes, network namespaces, bridge, Kubernetes namespaces and
# Node) is removed on exit, also on failure or Ctrl-C; a run that was killed is cleaned
# up by the next one. Exit status: 0 when every check passed.
#
# Settings (environment):
#   MESH_DEMO_BIN            prebuilt binaries (default: go build into a temporary directory)
#   MESH_DEMO_SUBNET         /24 prefix of the demo network (default 10.99.0: bridge .254,
#                            client pod .1, server pod .2)
#   MESH_DEMO_IDENTITY_PORT  identity's gRPC port on the bridge address (default 24180; admin +10)
#   MESH_DEMO_DESTINATION_PORT destination's gRPC port (default 24186; admin +10)
#   MESH_DEMO_REQUESTS       requests of each kind the client makes (default 3)
#   MESH_DEMO_KEEP=1         keep everything running at the end until Enter is pressed
#   MESH_DEMO_LOCK_WAIT      seconds to wait for another run to finish (default 0: fail)
#   MESH_TEST_KUBECONFIG, MESH_TEST_KUBECTL  the test cluster (default: hack/testenv.sh env)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SUBNET=${MESH_DEMO_SUBNET:-10.99.0}
HOST_IP=$SUBNET.254 CLIENT_IP=$SUBNET.1 SERVER_IP=$SUBNET.2
ID_PORT=${MESH_DEMO_IDENTITY_PORT:-24180}
DST_PORT=${MESH_DEMO_DESTINATION_PORT:-24186}
ID_ADMIN=$((ID_PORT + 10)) DST_ADMIN=$((DST_PORT + 10))
REQUESTS=${MESH_DEMO_REQUESTS:-3}
BRIDGE=meshdemo0
NS_CLIENT=mesh-demo-client NS_SERVER=mesh-demo-server
PROXY_UID=2102
APP_PORT=8080 SVC_PORT=80
STATE=/run/mesh-demo.state # what a run created, for the cleanup of a killed run
LOCK=/run/mesh-demo.lock
TIMEOUT=60 # seconds to wait for each thing to become ready

step() { printf '\n==> %s\n' "$*"; }
say() { printf '    %s\n' "$*"; }
die() {
	printf '\ndemo: FAIL: %s\n' "$*" >&2
	exit 1
}
pass() { printf '    PASS: %s\n' "$*"; }

# waitfor what cmd...: retry until the command succeeds, up to $TIMEOUT seconds; with
# WATCH=pid set, stop early if that process exits.
waitfor() {
	local what=$1 deadline=$((SECONDS + TIMEOUT))
	shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || die "timed out after ${TIMEOUT}s waiting for $what"
		if [ -n "${WATCH:-}" ] && ! kill -0 "$WATCH" 2>/dev/null; then die "exited while waiting for $what"; fi
		sleep 0.2
	done
}

# ---------------------------------------------------------------------------------------
# Preconditions
[ "$(uname -s)" = Linux ] || die "needs Linux (network namespaces)"
[ "$(id -u)" -eq 0 ] || die "needs root (ip netns, iptables): run it with sudo"
for c in ip iptables curl jq setpriv flock; do
	command -v "$c" >/dev/null || die "needs $c on PATH (Debian: apt-get install -y iproute2 iptables curl jq util-linux)"
done
[ -n "${MESH_DEMO_BIN:-}" ] || command -v go >/dev/null || die "needs go (or MESH_DEMO_BIN with prebuilt binaries)"
# The test cluster: the one MESH_TEST_KUBECONFIG names (as for the Go tests), else
# hack/testenv.sh's. Never another cluster: the demo creates a fake Node.
if [ -z "${MESH_TEST_KUBECONFIG:-}" ]; then
	if ! "$ROOT/hack/testenv.sh" status >/dev/null 2>&1; then
		die "the test cluster is not running: start it with hack/testenv.sh start (hack/testenv.sh install first, once)"
	fi
	eval "$("$ROOT/hack/testenv.sh" env 2>/dev/null)"
fi
KUBECONFIG=$MESH_TEST_KUBECONFIG
KUBECTL=${MESH_TEST_KUBECTL:-kubectl}
export KUBECONFIG
k() { "$KUBECTL" --kubeconfig "$KUBECONFIG" "$@"; }
k get --raw /readyz >/dev/null 2>&1 || die "the test cluster ($KUBECONFIG) does not answer: hack/testenv.sh start"

exec 8>"$LOCK" # (closed for the processes it starts: 8>&-)
flock -w "${MESH_DEMO_LOCK_WAIT:-0}" 8 || die "another hack/demo.sh is running (lock $LOCK)"

# ---------------------------------------------------------------------------------------
# Cleanup: of this run on exit, and first of a run that was killed before its own.
# delete_namespace NS: no kubelet confirms that pods stopped, so they are deleted by force
# first; otherwise the namespace would stay Terminating.
delete_namespace() {
	k -n "$1" delete pods --all --grace-period=0 --force >/dev/null 2>&1 || true
	k delete namespace "$1" --wait=false --ignore-not-found >/dev/null 2>&1 || true
}
cleanup_state() { # the state file of a run: kill its processes, delete what it made
	local f=$1 work pid ns node
	[ -f "$f" ] || return 0
	work=$(sed -n 's/^work=//p' "$f")
	# Only this run's processes: their environment has MESH_DEMO_RUN=its directory (a pid
	# alone may have been reused since).
	ours() { [ -n "$work" ] && { tr '\0' '\n' <"/proc/$1/environ"; } 2>/dev/null | grep -qxF "MESH_DEMO_RUN=$work"; }
	for pid in $(sed -n 's/^pid=//p' "$f"); do
		if ours "$pid"; then kill "$pid" 2>/dev/null || true; fi
	done
	for pid in $(sed -n 's/^pid=//p' "$f"); do
		for _ in $(seq 50); do ours "$pid" || break; sleep 0.1; done
		if ours "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
	done
	for ns in $NS_CLIENT $NS_SERVER; do
		ip netns del "$ns" 2>/dev/null || true
	done
	ip link del "$BRIDGE" 2>/dev/null || true
	for ns in $(sed -n 's/^namespace=//p' "$f"); do delete_namespace "$ns"; done
	for node in $(sed -n 's/^node=//p' "$f"); do
		k delete node "$node" --ignore-not-found >/dev/null 2>&1 || true
	done
	case $work in /tmp/mesh-demo.*) rm -rf "$work" ;; esac
	rm -f "$f"
}
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ "${MESH_DEMO_KEEP:-}" = 1 ] && [ -t 0 ] && [ $rc -eq 0 ]; then
		printf '\nEverything is still running (logs in %s). Press Enter to clean up. ' "$WORK"
		read -r _ || true
	fi
	if [ $rc -ne 0 ] && [ -d "$WORK" ]; then # the logs, before they go
		for f in "$WORK"/*.log "$WORK"/pods/*/proxy.log; do
			[ -s "$f" ] || continue
			printf '\n--- last lines of %s\n' "${f#"$WORK"/}"
			tail -n 15 "$f" | sed 's/^/    /'
		done
	fi
	step "Cleaning up"
	cleanup_state "$STATE"
	say "removed the processes, network namespaces $NS_CLIENT and $NS_SERVER, bridge $BRIDGE, namespaces $APP_NS and $CP_NS, node $NODE"
	exit $rc
}
if [ -f "$STATE" ]; then
	step "Cleaning up what a previous, interrupted run left"
	cleanup_state "$STATE"
fi
# Namespaces and network devices of earlier runs (also ones that never wrote a state file).
for ns in $NS_CLIENT $NS_SERVER; do ip netns del "$ns" 2>/dev/null || true; done
ip link del "$BRIDGE" 2>/dev/null || true
for ns in $(k get namespaces -l meshplane.io/demo -o name 2>/dev/null); do delete_namespace "${ns#namespace/}"; done
for node in $(k get nodes -l meshplane.io/demo -o name 2>/dev/null); do
	k delete "$node" >/dev/null 2>&1 || true
done

RUN_ID=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
APP_NS=mesh-demo-$RUN_ID CP_NS=mesh-demo-cp-$RUN_ID NODE=mesh-demo-node-$RUN_ID
WORK=$(mktemp -d /tmp/mesh-demo.XXXXXX)
chmod 755 "$WORK"
export MESH_DEMO_RUN=$WORK # marks the processes this run starts (see cleanup_state)
printf 'work=%s\nnamespace=%s\nnamespace=%s\nnode=%s\n' "$WORK" "$APP_NS" "$CP_NS" "$NODE" >"$STATE"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
track() { echo "pid=$1" >>"$STATE"; }

echo "mesh transparent-mode demo (logs and files: $WORK)"

# ---------------------------------------------------------------------------------------
step "Building mesh, mesh-controller, mesh-proxy and the demo's app (e2e/demoapp)"
if [ -n "${MESH_DEMO_BIN:-}" ]; then
	BIN=$MESH_DEMO_BIN
	say "using $BIN"
else
	BIN=$WORK/bin
	(cd "$ROOT" && go build -o "$BIN/" ./cli/mesh ./controlplane/mesh-controller ./proxy/mesh-proxy ./e2e/demoapp) || die "go build failed"
	say "built into $BIN"
fi
for b in mesh mesh-controller mesh-proxy demoapp; do [ -x "$BIN/$b" ] || die "no $BIN/$b"; done
chmod 755 "$BIN"
setpriv --reuid="$PROXY_UID" --regid="$PROXY_UID" --clear-groups test -x "$BIN/mesh-proxy" ||
	die "UID $PROXY_UID cannot run $BIN/mesh-proxy (a parent directory is not world-searchable?)"

# ---------------------------------------------------------------------------------------
step "Network: bridge $BRIDGE ($HOST_IP), pods' network namespaces $NS_CLIENT ($CLIENT_IP) and $NS_SERVER ($SERVER_IP)"
if ip -o addr show | grep -v " $BRIDGE " | grep -qF " $SUBNET."; then
	die "$SUBNET.0/24 is already used on this machine: choose another with MESH_DEMO_SUBNET"
fi
ip link add "$BRIDGE" type bridge
ip addr add "$HOST_IP/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
for pair in "$NS_CLIENT:$CLIENT_IP:mdc" "$NS_SERVER:$SERVER_IP:mds"; do
	IFS=: read -r ns ip dev <<<"$pair"
	ip netns add "$ns"
	ip link add "$dev" type veth peer name eth0 netns "$ns"
	ip link set "$dev" master "$BRIDGE" up
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "$ip/24" dev eth0
	ip -n "$ns" link set eth0 up
	# Everything else (the Service cluster IPs) through the host: as in a pod, the
	# cluster IP is routable, and iptables catches it on the way out.
	ip -n "$ns" route add default via "$HOST_IP"
done
# Reachable: a connection to a closed port is refused (rather than timing out).
refused() { ip netns exec "$1" timeout 1 bash -c "exec 3<>/dev/tcp/$2/9" 2>&1 | grep -q refused || [ "${PIPESTATUS[1]}" -eq 0 ]; }
waitfor "$NS_CLIENT to reach $SERVER_IP" refused "$NS_CLIENT" "$SERVER_IP"
waitfor "$NS_SERVER to reach $HOST_IP" refused "$NS_SERVER" "$HOST_IP"
say "$NS_CLIENT reaches $NS_SERVER across $BRIDGE, both reach the host at $HOST_IP"

# ---------------------------------------------------------------------------------------
step "Kubernetes (test cluster $(k config view --minify -o jsonpath='{.clusters[0].cluster.server}')): namespaces $CP_NS (control plane) and $APP_NS (app)"
k create namespace "$CP_NS" -o name >/dev/null
k label namespace "$CP_NS" meshplane.io/demo="$RUN_ID" >/dev/null
k create namespace "$APP_NS" -o name >/dev/null
k label namespace "$APP_NS" meshplane.io/demo="$RUN_ID" >/dev/null
k annotate namespace "$APP_NS" meshplane.io/inject=enabled >/dev/null
# The CRDs are cluster-scoped and shared with the project's tests: created if missing, kept.
if ! "$BIN/mesh" install crds | k create -f - >/dev/null 2>"$WORK/crds.err"; then
	! grep -v AlreadyExists "$WORK/crds.err" >&2 || die "creating the CRDs failed"
fi
"$BIN/mesh" install --print-values --namespace "$CP_NS" >"$WORK/values.yaml"
AUDIENCE=$(sed -n 's/^  tokenAudience: *//p' "$WORK/values.yaml")
TRUST_DOMAIN=$(sed -n 's/^  trustDomain: *//p' "$WORK/values.yaml")
if [ -z "$AUDIENCE" ] || [ -z "$TRUST_DOMAIN" ]; then
	die "no identity.tokenAudience or trustDomain in mesh install --print-values"
fi
k -n "$CP_NS" create serviceaccount mesh-identity >/dev/null
k -n "$CP_NS" create serviceaccount mesh-destination >/dev/null
say "values: mesh install --print-values (token audience $AUDIENCE, trust domain $TRUST_DOMAIN)"

# ---------------------------------------------------------------------------------------
step "Control plane: mesh-controller identity on $HOST_IP:$ID_PORT"
"$BIN/mesh-controller" identity --config "$WORK/values.yaml" --kubeconfig "$KUBECONFIG" --namespace "$CP_NS" \
	--listen-addr "$HOST_IP:$ID_PORT" --admin-addr "127.0.0.1:$ID_ADMIN" </dev/null >"$WORK/identity.log" 2>&1 8>&- &
track $!
WATCH=$! waitfor "identity /ready (log: $WORK/identity.log)" curl -sf "http://127.0.0.1:$ID_ADMIN/ready"
say "ready; it bootstrapped its issuer into Secret $CP_NS/$(sed -n 's/^    secretName: *//p' "$WORK/values.yaml")"
getroots() { k -n "$1" get configmap mesh-identity-trust-roots -o jsonpath='{.data.ca-bundle\.crt}' | grep -q 'BEGIN CERTIFICATE'; }
waitfor "the trust roots in $CP_NS" getroots "$CP_NS"
k -n "$CP_NS" get configmap mesh-identity-trust-roots -o jsonpath='{.data.ca-bundle\.crt}' >"$WORK/cp-ca-bundle.crt"
say "published the trust anchor: ConfigMap $CP_NS/mesh-identity-trust-roots ($(openssl x509 -noout -subject <"$WORK/cp-ca-bundle.crt" 2>/dev/null || echo PEM))"

step "Control plane: mesh-controller destination on $HOST_IP:$DST_PORT (mTLS, its certificate from identity)"
k -n "$CP_NS" create token mesh-destination --audience "$AUDIENCE" >"$WORK/destination-token"
MESH_IDENTITY_ADDR=$HOST_IP:$ID_PORT MESH_IDENTITY_TOKEN_FILE=$WORK/destination-token \
	MESH_IDENTITY_TRUST_ANCHORS_FILE=$WORK/cp-ca-bundle.crt \
	"$BIN/mesh-controller" destination --config "$WORK/values.yaml" --kubeconfig "$KUBECONFIG" --namespace "$CP_NS" \
	--listen-addr "$HOST_IP:$DST_PORT" --admin-addr "127.0.0.1:$DST_ADMIN" </dev/null >"$WORK/destination.log" 2>&1 8>&- &
track $!
WATCH=$! waitfor "destination /ready (log: $WORK/destination.log)" curl -sf "http://127.0.0.1:$DST_ADMIN/ready"
say "ready: certified as mesh-destination.$CP_NS.serviceaccount.identity.$TRUST_DOMAIN"

# ---------------------------------------------------------------------------------------
step "App objects in $APP_NS: ServiceAccounts client and server, Pods client and web (mesh inject --manual), Service web"
k -n "$APP_NS" create serviceaccount client >/dev/null
k -n "$APP_NS" create serviceaccount server >/dev/null
# No kubelet here: a Node object stands for this machine, so that the EndpointSlice
# controller publishes the pods' addresses.
k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $NODE
  labels: {meshplane.io/demo: "$RUN_ID", kubernetes.io/hostname: $NODE}
EOF
cat >"$WORK/app.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: $APP_NS
  labels: {app: web}
spec:
  nodeName: $NODE
  serviceAccountName: server
  containers:
  - name: web
    image: demoapp # what runs: e2e/demoapp, in $NS_SERVER
    command: [demoapp, -addr, "0.0.0.0:$APP_PORT"]
    ports: [{containerPort: $APP_PORT}]
---
apiVersion: v1
kind: Pod
metadata:
  name: client
  namespace: $APP_NS
  labels: {app: client}
spec:
  nodeName: $NODE
  serviceAccountName: client
  containers:
  - name: client
    image: curlimages/curl
    command: [sleep, infinity]
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: $APP_NS
spec:
  selector: {app: web}
  ports: [{port: $SVC_PORT, targetPort: $APP_PORT}]
EOF
"$BIN/mesh" inject --manual --install-values "$WORK/values.yaml" --control-plane-namespace "$CP_NS" \
	-f "$WORK/app.yaml" >"$WORK/app-injected.yaml" 2>"$WORK/inject.log" || die "mesh inject: $(cat "$WORK/inject.log")"
sed 's/^/    mesh inject: /' "$WORK/inject.log"
k apply -f "$WORK/app-injected.yaml" >/dev/null
for pod in client:$CLIENT_IP web:$SERVER_IP; do
	# What the kubelet would report once the containers run.
	k -n "$APP_NS" patch pod "${pod%%:*}" --subresource=status --type=merge -p "{\"status\":{\"phase\":\"Running\",
		\"podIP\":\"${pod#*:}\",\"podIPs\":[{\"ip\":\"${pod#*:}\"}],\"hostIP\":\"$HOST_IP\",
		\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"},{\"type\":\"ContainersReady\",\"status\":\"True\"}]}}" >/dev/null
done
CLUSTER_IP=$(k -n "$APP_NS" get service web -o jsonpath='{.spec.clusterIP}')
SVC_NAME=web.$APP_NS.svc.cluster.local
slice_ready() {
	k -n "$APP_NS" get endpointslices -l kubernetes.io/service-name=web \
		-o jsonpath='{range .items[*].endpoints[?(@.conditions.ready==true)]}{.addresses[0]}{"\n"}{end}' | grep -qx "$SERVER_IP"
}
waitfor "the EndpointSlice of Service web to list $SERVER_IP" slice_ready
say "Service web: cluster IP $CLUSTER_IP port $SVC_PORT -> targetPort $APP_PORT"
say "EndpointSlice: $SERVER_IP:$APP_PORT ready (pod web, ServiceAccount server)"

# ---------------------------------------------------------------------------------------
# run_pod POD NETNS: what the kubelet does with the injected spec. Volumes: the projected
# ServiceAccount token (a real token bound to the pod), the trust-roots ConfigMap that
# identity published in the namespace, the emptyDir. Then the mesh-init container's
# iptables rules in the pod's network namespace, then mesh-proxy with the container's
# environment (fieldRefs and $(VAR) resolved), as UID 2102.
run_pod() {
	local pod=$1 netns=$2 dir=$WORK/pods/$1 json mounts name path vol kind
	mkdir -p "$dir/volumes"
	json=$(k -n "$APP_NS" get pod "$pod" -o json)
	local jcontainer='[.spec.initContainers[]?, .spec.containers[]] | map(select(.name=="mesh-proxy"))[0]'
	mounts=$(jq -r "$jcontainer | .volumeMounts[] | \"\(.name) \(.mountPath)\"" <<<"$json")
	local -A hostpath=()
	while read -r name path; do
		# The API token that ServiceAccount admission mounts everywhere: the proxy does not use it.
		case $name in kube-api-access-*) continue ;; esac
		vol=$(jq -c --arg n "$name" '.spec.volumes[] | select(.name==$n)' <<<"$json")
		mkdir -p "$dir/volumes/$name"
		kind=$(jq -r 'if .projected then "projected" elif .configMap then "configMap" elif .emptyDir then "emptyDir" else "other" end' <<<"$vol")
		case $kind in
		projected)
			local src tpath aud exp
			src=$(jq -c '.projected.sources[] | select(.serviceAccountToken) | .serviceAccountToken' <<<"$vol")
			tpath=$(jq -r '.path' <<<"$src") aud=$(jq -r '.audience' <<<"$src") exp=$(jq -r '.expirationSeconds // 3600' <<<"$src")
			k -n "$APP_NS" create token "$(jq -r .spec.serviceAccountName <<<"$json")" --audience "$aud" --duration "${exp}s" \
				--bound-object-kind Pod --bound-object-name "$pod" --bound-object-uid "$(jq -r .metadata.uid <<<"$json")" \
				>"$dir/volumes/$name/$tpath"
			say "$pod: volume $name: a ServiceAccount token for $(jq -r .spec.serviceAccountName <<<"$json") (audience $aud, bound to the pod)"
			;;
		configMap)
			local cm
			cm=$(jq -r '.configMap.name' <<<"$vol")
			waitfor "ConfigMap $APP_NS/$cm (published by identity)" k -n "$APP_NS" get configmap "$cm"
			k -n "$APP_NS" get configmap "$cm" -o json | jq -j --arg d "$dir/volumes/$name" \
				'.data | to_entries[] | "\($d)/\(.key)\u0000\(.value)\u0000"' |
				while IFS= read -r -d '' f && IFS= read -r -d '' v; do printf '%s' "$v" >"$f"; done
			say "$pod: volume $name: ConfigMap $cm, published by identity ($(ls "$dir/volumes/$name" | paste -sd, -))"
			;;
		esac
		chown -R "$PROXY_UID:$PROXY_UID" "$dir/volumes/$name"
		chmod 700 "$dir/volumes/$name"
		hostpath[$path]=$dir/volumes/$name
	done <<<"$mounts"

	local args
	mapfile -t args < <(jq -r '.spec.initContainers[] | select(.name=="mesh-init") | .args[]' <<<"$json")
	[ "${#args[@]}" -gt 0 ] || die "$pod: no mesh-init container in the injected spec"
	ip netns exec "$netns" "$BIN/mesh-proxy" "${args[@]}" >"$dir/init.log" 2>&1 || die "$pod: mesh-proxy ${args[*]}: $(cat "$dir/init.log")"
	say "$pod: mesh-init: mesh-proxy ${args[*]}"
	ip netns exec "$netns" iptables -t nat -S | grep -E -- '-j (REDIRECT|RETURN)' | sed "s/^/        $pod iptables: /"

	local envs=() kv key val p
	while IFS= read -r -d '' kv; do
		key=${kv%%=*} val=${kv#*=}
		for p in "${!hostpath[@]}"; do
			case $val in "$p" | "$p"/*) val=${hostpath[$p]}${val#"$p"} ;; esac
		done
		case $key in
		# No cluster DNS here: the Services' names are the control plane's addresses on the bridge.
		MESH_PROXY_IDENTITY_SVC_ADDR) say "$pod: $key $val -> $HOST_IP:$ID_PORT" && val=$HOST_IP:$ID_PORT ;;
		MESH_PROXY_DESTINATION_SVC_ADDR) say "$pod: $key $val -> $HOST_IP:$DST_PORT" && val=$HOST_IP:$DST_PORT ;;
		esac
		envs+=("$key=$val")
	done < <(jq -j '. as $pod | '"$jcontainer"' | reduce (.env // [])[] as $e ({};
		. as $acc | .[$e.name] = (
			if $e.valueFrom.fieldRef then ($pod | getpath($e.valueFrom.fieldRef.fieldPath | split(".")) | tostring)
			else ($e.value // "") | gsub("\\$\\((?<n>[A-Za-z_][A-Za-z0-9_]*)\\)"; $acc[.n] // "$(\(.n))") end))
		| to_entries[] | "\(.key)=\(.value)\u0000"' <<<"$json")
	printf '%s\n' "${envs[@]}" >"$dir/proxy.env"
	ip netns exec "$netns" setpriv --reuid="$PROXY_UID" --regid="$PROXY_UID" --clear-groups \
		env -i PATH=/usr/bin:/bin MESH_DEMO_RUN="$WORK" "${envs[@]}" "$BIN/mesh-proxy" run </dev/null >"$dir/proxy.log" 2>&1 8>&- &
	track $!
	echo $! >"$dir/proxy.pid"
	say "$pod: mesh-proxy run as UID $PROXY_UID, identity $(sed -n 's/^MESH_PROXY_IDENTITY_LOCAL_NAME=//p' "$dir/proxy.env")"
}
admin() { ip netns exec "$1" curl -sf --max-time 2 "http://127.0.0.1:4191$2"; }

step "Pod web in $NS_SERVER (the kubelet's part, played by this script)"
run_pod web "$NS_SERVER"
step "Pod client in $NS_CLIENT"
run_pod client "$NS_CLIENT"

step "Waiting for both proxies to be certified by identity (/ready)"
for p in web:$NS_SERVER client:$NS_CLIENT; do
	WATCH=$(cat "$WORK/pods/${p%%:*}/proxy.pid") waitfor "the ${p%%:*} proxy's /ready (log: $WORK/pods/${p%%:*}/proxy.log)" admin "${p#*:}" /ready
	say "${p%%:*} proxy: ready"
	# The proxy keeps a copy of its certificate in MESH_PROXY_IDENTITY_DIR (the emptyDir).
	crt=$(sed -n 's/^MESH_PROXY_IDENTITY_DIR=//p' "$WORK/pods/${p%%:*}/proxy.env")/cert.pem
	if [ -s "$crt" ] && command -v openssl >/dev/null; then
		openssl x509 -in "$crt" -noout -subject -issuer -enddate -ext subjectAltName 2>/dev/null |
			grep -v '^X509v3' | sed 's/^ *//; s/^/        certificate: /'
	fi
done
ID_ISSUED=$(curl -sf "http://127.0.0.1:$ID_ADMIN/metrics" | sed -n 's/^mesh_identity_certificates_issued_total //p')
say "identity: mesh_identity_certificates_issued_total $ID_ISSUED (destination, web, client)"

# ---------------------------------------------------------------------------------------
step "The app: a plain HTTP server in $NS_SERVER on 0.0.0.0:$APP_PORT (it knows nothing of the mesh)"
ip netns exec "$NS_SERVER" "$BIN/demoapp" -addr "0.0.0.0:$APP_PORT" </dev/null >"$WORK/app.log" 2>&1 8>&- &
track $!
WATCH=$! waitfor "the app on $SERVER_IP:$APP_PORT" ip netns exec "$NS_SERVER" curl -sf --max-time 1 -o /dev/null "http://127.0.0.1:$APP_PORT/"
say "listening"

# ---------------------------------------------------------------------------------------
step "The client: curl in $NS_CLIENT (root, not the proxy's UID: iptables sends its connections to the proxy)"
failed=0
call() { # label curl-args...
	local label=$1 out code
	shift
	if out=$(ip netns exec "$NS_CLIENT" curl -sS --max-time 10 -w '\n%{http_code}' "$@" 2>&1); then
		code=${out##*$'\n'} out=${out%$'\n'*}
		say "$label"
		say "  -> HTTP $code: ${out%$'\n'}"
		[ "$code" = 200 ] && [[ $out == "hello from web"* ]] || failed=1
	else
		say "$label -> FAILED: $out"
		failed=1
	fi
}
for i in $(seq "$REQUESTS"); do
	call "curl http://$SVC_NAME/by-name/$i (resolved to the cluster IP $CLUSTER_IP)" \
		--resolve "$SVC_NAME:$SVC_PORT:$CLUSTER_IP" "http://$SVC_NAME/by-name/$i"
done
for i in $(seq "$REQUESTS"); do
	call "curl http://$CLUSTER_IP/by-ip/$i" "http://$CLUSTER_IP/by-ip/$i"
done
say "the app's view: $(tail -n1 "$WORK/app.log")"

step "For contrast, an unmeshed caller: curl from the host (no proxy) straight to the pod, $SERVER_IP:$APP_PORT"
if out=$(curl -sS --max-time 10 "http://$SERVER_IP:$APP_PORT/unmeshed" 2>&1); then
	say "-> ${out%$'\n'}"
else
	say "-> FAILED: $out"
fi
say "(the server's proxy takes it too, in plaintext: no client identity)"

# ---------------------------------------------------------------------------------------
CLIENT_ID=client.$APP_NS.serviceaccount.identity.$TRUST_DOMAIN
SERVER_ID=server.$APP_NS.serviceaccount.identity.$TRUST_DOMAIN
# count FILE FILTER...: the sum of the request_total series whose labels contain every FILTER.
count() {
	local file=$1
	shift
	awk -v n=$# -v f="$(printf '%s\034' "$@")" 'BEGIN { split(f, want, "\034") }
		/^request_total\{/ { ok = 1; for (i = 1; i <= n; i++) if (index($0, want[i]) == 0) ok = 0; if (ok) s += $NF }
		END { print s + 0 }' "$file"
}
# trim: the metric lines without their empty labels, indented.
trim() { sed -E ':a; s/([{,])[a-z_]+="",/\1/; ta; s/,[a-z_]+=""\}/}/; ta; s/^/    /'; }
step "What the server's proxy counted: $NS_SERVER 127.0.0.1:4191/metrics, direction=\"inbound\" (empty labels left out)"
admin "$NS_SERVER" /metrics >"$WORK/metrics.web.txt" || true
grep -E '^(request|response)_total\{[^}]*direction="inbound"' "$WORK/metrics.web.txt" | trim || true
in_tls=$(count "$WORK/metrics.web.txt" 'direction="inbound"' 'tls="true"' "client_id=\"$CLIENT_ID\"")
step "What the client's proxy counted: $NS_CLIENT 127.0.0.1:4191/metrics, direction=\"outbound\" (empty labels left out)"
admin "$NS_CLIENT" /metrics >"$WORK/metrics.client.txt" || true
grep -E '^(request|response)_total\{[^}]*direction="outbound"' "$WORK/metrics.client.txt" | trim || true
say "(server_id, the endpoint $SERVER_IP:$APP_PORT (target_addr) and the dst_* labels come from the destination service)"
out_tls=$(count "$WORK/metrics.client.txt" 'direction="outbound"' 'tls="true"' "server_id=\"$SERVER_ID\"")

# ---------------------------------------------------------------------------------------
step "mesh check --proxy: ready proxies of the control plane's version, whose certificates chain to the current trust anchor"
for pod in client web; do
	# What the kubelet reports once the proxy's readiness probe (/ready) passes.
	img=$(k -n "$APP_NS" get pod "$pod" -o jsonpath='{.spec.initContainers[?(@.name=="mesh-proxy")].image}')
	k -n "$APP_NS" patch pod "$pod" --subresource=status --type=merge -p "{\"status\":{\"initContainerStatuses\":[{\"name\":\"mesh-proxy\",
		\"image\":\"$img\",\"imageID\":\"sha256:0\",\"ready\":true,\"started\":true,\"restartCount\":0,
		\"state\":{\"running\":{\"startedAt\":\"2026-01-01T00:00:00Z\"}}}]}}" >/dev/null
done
say "(the check reads each proxy's chain from its admin port through the API server's pod proxy)"
"$BIN/mesh" check --proxy -n "$APP_NS" --control-plane-namespace "$CP_NS" --kubeconfig "$KUBECONFIG" >"$WORK/check.txt" 2>&1
proxy_check=$?
sed 's/^/    /' "$WORK/check.txt"

# ---------------------------------------------------------------------------------------
step "Checks"
want=$((2 * REQUESTS))
ok=1
check() { # description condition...
	local what=$1
	shift
	if "$@"; then pass "$what"; else
		printf '    FAIL: %s\n' "$what"
		ok=0
	fi
}
check "the client got $want answers from the app through the Service address" [ $failed -eq 0 ]
check "server proxy: request_total{direction=\"inbound\",tls=\"true\",client_id=\"$CLIENT_ID\"} = $in_tls (want >= $want)" [ "$in_tls" -ge $want ]
check "client proxy: request_total{direction=\"outbound\",tls=\"true\",server_id=\"$SERVER_ID\"} = $out_tls (want >= $want)" [ "$out_tls" -ge $want ]
plain=$(count "$WORK/metrics.web.txt" 'direction="inbound"' 'tls="false"' 'client_id=""')
check "server proxy: the host's plaintext request counted with tls=\"false\" and no client_id ($plain, want 1)" [ "$plain" -eq 1 ]
check "the app saw its connections come from the server's proxy (127.0.0.1), not from $CLIENT_IP" \
	bash -c "grep -q '^app: 127.0.0.1 ' '$WORK/app.log' && ! grep -q '^app: $CLIENT_IP ' '$WORK/app.log'"
check "mesh check --proxy passed (exit $proxy_check), proxy.certificates included" \
	bash -c "[ $proxy_check -eq 0 ] && grep -q 'certificate chains to the current trust anchors' '$WORK/check.txt'"
[ $ok -eq 1 ] || die "some checks failed"
printf '\ndemo: PASS: curl in %s called Service web (%s) in %s; the proxies used mTLS with identities from the identity service (client %s, server %s) and endpoints from the destination service\n' \
	"$NS_CLIENT" "$CLUSTER_IP" "$APP_NS" "$CLIENT_ID" "$SERVER_ID"
