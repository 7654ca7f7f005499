#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, for the end-to-end tests and for
# trying mesh: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
# kube-proxy, containerd with runc and the bridge CNI, and CoreDNS, on a bridge of its own
# with no route out. No container engine and no downloads: Debian packages, the Kubernetes
# build of hack/testenv.sh (shared, built once) and images built here (make images).
#
#   hack/cluster.sh up       install what is missing, build and import the images, start
#                            everything, wait for the node and CoreDNS (idempotent)
#   hack/cluster.sh down     stop everything by PID; remove pods, mounts, interfaces,
#                            iptables chains and the paths kubelet and containerd hardcode
#   hack/cluster.sh status   say what runs (exit 0 if the cluster is up)
#   hack/cluster.sh env      print exports, for: eval "$(hack/cluster.sh env)"
#   hack/cluster.sh load [ARCHIVE...]   import image archives (default: all of make images)
#
# Needs root. Settings (environment) and costs: docs/development.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLUSTER_HOME=${MESH_CLUSTER_HOME:-$HOME/.cache/mesh-cluster}
case $CLUSTER_HOME in /*) ;; *) CLUSTER_HOME=$PWD/$CLUSTER_HOME ;; esac
export MESH_TESTENV_RUN=$CLUSTER_HOME/run # testenv.sh's functions work in this directory
IMAGES=${MESH_CLUSTER_IMAGES:-$ROOT/_output/images}
IMAGE_VERSION=${MESH_CLUSTER_IMAGE_VERSION:-dev} # the tag make images gives (what `mesh install` renders)
BRIDGE=${MESH_CLUSTER_BRIDGE:-meshbr0}
NODE_IP=${MESH_CLUSTER_NODE_IP:-10.244.0.1} # the bridge's address: API server, kubelet, node IP
POD_SUBNET=${MESH_CLUSTER_POD_SUBNET:-10.244.0.0/24}
SERVICE_SUBNET=${MESH_CLUSTER_SERVICE_SUBNET:-10.96.0.0/24}
SERVICE_IP=${MESH_CLUSTER_SERVICE_IP:-10.96.0.1} # the kubernetes Service: first of SERVICE_SUBNET
DNS_IP=${MESH_CLUSTER_DNS_IP:-10.96.0.10}
NODE_NAME=${MESH_CLUSTER_NODE_NAME:-mesh-node}
export MESH_TESTENV_ETCD_PORT=${MESH_CLUSTER_ETCD_PORT:-23890}
export MESH_TESTENV_ETCD_PEER_PORT=${MESH_CLUSTER_ETCD_PEER_PORT:-23891}
export MESH_TESTENV_API_PORT=${MESH_CLUSTER_API_PORT:-26643}
KUBELET_PORT=${MESH_CLUSTER_KUBELET_PORT:-21250}
KUBELET_HEALTHZ_PORT=${MESH_CLUSTER_KUBELET_HEALTHZ_PORT:-21248}
PROXY_HEALTHZ_PORT=${MESH_CLUSTER_KUBE_PROXY_HEALTHZ_PORT:-21256}
PROXY_METRICS_PORT=${MESH_CLUSTER_KUBE_PROXY_METRICS_PORT:-21249}
CNI_BIN=${MESH_CLUSTER_CNI_BIN:-/usr/lib/cni}
export MESH_TESTENV_TIMEOUT=${MESH_CLUSTER_TIMEOUT:-180}
API_HOST=$NODE_IP
API_SANS="IP:$NODE_IP,IP:$SERVICE_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"

# shellcheck source=hack/testenv.sh
. "$ROOT/hack/testenv.sh" # the Kubernetes build, certs, launch/alive/await/terminate
PROCS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy)
KUBECTL=$BIN/kubectl
SOCK=$RUN/containerd/containerd.sock
EGRESS_COMMENT=mesh-cluster-no-egress
# Paths kubelet and containerd 1.6 write whatever their flags say (cleaned by down).
HARDCODED=(/var/lib/kubelet/device-plugins /var/lib/kubelet/plugins_registry /var/log/containers /var/log/pods /var/lib/cni /run/containerd/io.containerd.runtime.v2.task/k8s.io /run/containerd/s)

log() { echo "cluster: $*" >&2; }
binary() {
	case $1 in
	etcd) echo "$ETCD" ;;
	containerd) command -v containerd || echo /usr/bin/containerd ;;
	*) echo "$BIN/$1" ;;
	esac
}
kc() { "$KUBECTL" --kubeconfig "$RUN/kubeconfig" "$@"; }
ctr_() { ctr --address "$SOCK" --namespace k8s.io "$@"; }

# prerequisites: each missing one is named, with what provides it.
prereqs() {
	local miss=()
	[ "$(id -u)" -eq 0 ] || die "needs root (kubelet, containerd, network interfaces and iptables)"
	[ "$(uname -s)" = Linux ] || die "needs Linux"
	local c
	for c in containerd:containerd ctr:containerd runc:runc iptables:iptables ip:iproute2 conntrack:conntrack nsenter:util-linux openssl:openssl curl:curl; do
		command -v "${c%%:*}" >/dev/null || miss+=("${c#*:}")
	done
	[ -x "$CNI_BIN/bridge" ] && [ -x "$CNI_BIN/host-local" ] && [ -x "$CNI_BIN/portmap" ] || miss+=(containernetworking-plugins)
	[ -x "$ETCD" ] || miss+=(etcd-server)
	if ((${#miss[@]})); then
		if [ "${1:-}" = install ]; then
			log "apt-get install ${miss[*]}"
			DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >&2
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${miss[@]}" </dev/null >&2
		else
			die "missing: ${miss[*]} (apt-get install ${miss[*]}, or run hack/cluster.sh up, which installs them)"
		fi
	fi
	iptables -w -t nat -L -n >/dev/null 2>&1 || die "iptables cannot read the nat table here: $(iptables -w -t nat -L -n 2>&1 | tail -1)"
	[ -d /sys/fs/cgroup ] || die "no /sys/fs/cgroup"
}

ports_free() {
	local p
	for p in "$ETCD_PORT:MESH_CLUSTER_ETCD_PORT" "$ETCD_PEER_PORT:MESH_CLUSTER_ETCD_PEER_PORT" "$API_PORT:MESH_CLUSTER_API_PORT" \
		"$KUBELET_PORT:MESH_CLUSTER_KUBELET_PORT" "$KUBELET_HEALTHZ_PORT:MESH_CLUSTER_KUBELET_HEALTHZ_PORT" \
		"$PROXY_HEALTHZ_PORT:MESH_CLUSTER_KUBE_PROXY_HEALTHZ_PORT" "$PROXY_METRICS_PORT:MESH_CLUSTER_KUBE_PROXY_METRICS_PORT"; do
		port_free "${p%%:*}" || die "port ${p%%:*} is in use: choose another with ${p#*:}=..."
	done
	if ip link show "$BRIDGE" >/dev/null 2>&1 && ! [ -f "$RUN/bridge" ]; then
		die "interface $BRIDGE exists and is not this cluster's: choose another with MESH_CLUSTER_BRIDGE=..."
	fi
}

extra_certs() { # in the PKI directory, called by certs
	sign kubelet-client /O=system:masters/CN=kube-apiserver-kubelet-client "extendedKeyUsage=clientAuth"
	sign node "/O=system:nodes/CN=system:node:$NODE_NAME" "extendedKeyUsage=clientAuth"
	sign kube-proxy /CN=system:kube-proxy "extendedKeyUsage=clientAuth"
	sign scheduler /CN=system:kube-scheduler "extendedKeyUsage=clientAuth"
	sign controller-manager /CN=system:kube-controller-manager "extendedKeyUsage=clientAuth"
}

kubeconfig() { # user -> $RUN/NAME.kubeconfig (admin: $RUN/kubeconfig)
	local f=$RUN/$1.kubeconfig
	[ "$1" = admin ] && f=$RUN/kubeconfig
	cat >"$f.tmp" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: mesh-cluster, cluster: {server: "https://$NODE_IP:$API_PORT", certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")}}]
users: [{name: $1, user: {client-certificate-data: $(base64 -w0 "$PKI/$1.crt"), client-key-data: $(base64 -w0 "$PKI/$1.key")}}]
contexts: [{name: mesh-cluster, context: {cluster: mesh-cluster, user: $1}}]
current-context: mesh-cluster
EOF
	mv "$f.tmp" "$f"
}

network() {
	if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
		ip link add "$BRIDGE" type bridge
		echo "$BRIDGE" >"$RUN/bridge"
	fi
	ip addr replace "$NODE_IP/${POD_SUBNET#*/}" dev "$BRIDGE"
	ip link set "$BRIDGE" up
	sysctl -qw net.ipv4.ip_forward=1
	sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || log "warning: no net.bridge.bridge-nf-call-iptables (Services between pods may not work)"
	# No pod traffic leaves the machine: nothing forwarded from the bridge to another interface.
	iptables -w -t mangle -C FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -m comment --comment "$EGRESS_COMMENT" -j DROP 2>/dev/null ||
		iptables -w -t mangle -I FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -m comment --comment "$EGRESS_COMMENT" -j DROP
	mkdir -p "$RUN/cni/net.d"
	cat >"$RUN/cni/net.d/10-mesh.conflist" <<EOF
{"cniVersion":"1.0.0","name":"mesh-node","plugins":[
 {"type":"bridge","bridge":"$BRIDGE","isGateway":true,"ipMasq":false,"hairpinMode":true,
  "ipam":{"type":"host-local","dataDir":"$RUN/cni/ipam","ranges":[[{"subnet":"$POD_SUBNET","gateway":"$NODE_IP"}]],"routes":[{"dst":"0.0.0.0/0"}]}},
 {"type":"portmap","capabilities":{"portMappings":true}}]}
EOF
}

containerd_config() {
	mkdir -p "$RUN/containerd"
	cat >"$RUN/containerd/config.toml" <<EOF
version = 2
root = "$RUN/containerd/root"
state = "$RUN/containerd/state"
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "mesh.local/pause:$IMAGE_VERSION"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$RUN/cni/net.d"
EOF
}

kubelet_config() {
	mkdir -p "$RUN/kubelet"
	printf 'search cluster.local\n' >"$RUN/kubelet/resolv.conf"
	cat >"$RUN/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$SOCK
failSwapOn: false
address: $NODE_IP
port: $KUBELET_PORT
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
readOnlyPort: 0
authentication: {anonymous: {enabled: false}, webhook: {enabled: true}, x509: {clientCAFile: "$PKI/ca.crt"}}
authorization: {mode: Webhook}
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
resolvConf: $RUN/kubelet/resolv.conf
evictionHard: {memory.available: 100Mi, nodefs.available: "2%", imagefs.available: "2%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
syncFrequency: 10s
shutdownGracePeriod: 0s
EOF
}

kube_proxy_config() {
	cat >"$RUN/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: "$RUN/kube-proxy.kubeconfig"}
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_SUBNET
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$PROXY_METRICS_PORT
conntrack: {maxPerCore: 0, min: 0}
iptables: {localhostNodePorts: false}
EOF
}

images_built() { [ -s "$IMAGES/pause.tar" ] && [ -s "$IMAGES/coredns.tar" ]; }
build_images() {
	log "building the images (make images) into $IMAGES"
	(cd "$ROOT" && go run ./build/images -o "$IMAGES" -version "$IMAGE_VERSION" >/dev/null) || die "building the images failed"
}
load() { # archives...: import into the node's containerd
	local a
	(($#)) || set -- "$IMAGES"/*.tar
	for a; do
		[ -s "$a" ] || die "no image archive $a (make images)"
		ctr_ images import "$a" >/dev/null || die "ctr images import $a failed"
		log "imported $(basename "$a")"
	done
}

node_ready() {
	[ "$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}
coredns_ready() {
	[ "$(kc -n kube-system get deploy coredns -o jsonpath='{.status.readyReplicas}' 2>/dev/null)" = 1 ]
}

coredns() {
	kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ServiceAccount
metadata: {name: coredns, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: system:coredns}
rules:
- {apiGroups: [""], resources: [endpoints, services, pods, namespaces], verbs: [list, watch]}
- {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: system:coredns}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:coredns}
subjects: [{kind: ServiceAccount, name: coredns, namespace: kube-system}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: kube-system}
data:
  Corefile: |
    .:53 {
        errors
        health :8080
        ready :8181
        kubernetes cluster.local in-addr.arpa ip6.arpa {
            pods insecure
            ttl 30
        }
        cache 30
    }
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  replicas: 1
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec:
      serviceAccountName: coredns
      dnsPolicy: Default
      containers:
      - name: coredns
        image: mesh.local/coredns:$IMAGE_VERSION
        imagePullPolicy: IfNotPresent
        args: [-conf, /etc/coredns/Corefile]
        ports:
        - {name: dns, containerPort: 53, protocol: UDP}
        - {name: dns-tcp, containerPort: 53, protocol: TCP}
        securityContext:
          runAsUser: 0
          capabilities: {add: [NET_BIND_SERVICE], drop: [ALL]}
        readinessProbe: {httpGet: {path: /ready, port: 8181}, periodSeconds: 2}
        livenessProbe: {httpGet: {path: /health, port: 8080}}
        volumeMounts: [{name: config, mountPath: /etc/coredns}]
      volumes: [{name: config, configMap: {name: coredns}}]
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  clusterIP: $DNS_IP
  selector: {k8s-app: kube-dns}
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
EOF
}

running() {
	local p
	for p in "${PROCS[@]}"; do alive "$p" || return 1; done
	[ -f "$RUN/kubeconfig" ] && api /readyz && node_ready
}

up() {
	prereqs install
	install >/dev/null # testenv.sh: the Kubernetes binaries (shared build, cached)
	if running && coredns_ready; then log "already up: https://$NODE_IP:$API_PORT" && return 0; fi
	down >/dev/null 2>&1 || true # what is left of an earlier, failed run
	ports_free
	umask 022
	mkdir -p "$RUN"
	images_built || build_images
	certs
	network
	local etcd_url=http://127.0.0.1:$ETCD_PORT peer_url=http://127.0.0.1:$ETCD_PEER_PORT t0=$SECONDS
	launch etcd --name mesh-cluster --data-dir "$RUN/etcd-data" --unsafe-no-fsync \
		--listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
		--listen-peer-urls "$peer_url" --initial-advertise-peer-urls "$peer_url" --initial-cluster "mesh-cluster=$peer_url"
	containerd_config
	launch containerd --config "$RUN/containerd/config.toml"
	await etcd health curl -sf --max-time 2 "$etcd_url/health" -o /dev/null
	launch kube-apiserver --etcd-servers="$etcd_url" \
		--bind-address="$NODE_IP" --advertise-address="$NODE_IP" --secure-port="$API_PORT" \
		--service-cluster-ip-range="$SERVICE_SUBNET" \
		--tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
		--client-ca-file="$PKI/ca.crt" --authorization-mode=Node,RBAC --allow-privileged=true \
		--kubelet-client-certificate="$PKI/kubelet-client.crt" --kubelet-client-key="$PKI/kubelet-client.key" \
		--kubelet-preferred-address-types=InternalIP \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key"
	local u
	for u in admin node kube-proxy scheduler controller-manager; do kubeconfig "$u"; done
	ln -sfn "$KUBECTL" "$RUN/kubectl"
	await kube-apiserver /readyz api /readyz
	launch kube-controller-manager --kubeconfig="$RUN/controller-manager.kubeconfig" --leader-elect=false --secure-port=0 \
		--use-service-account-credentials=true --cluster-cidr="$POD_SUBNET" --service-cluster-ip-range="$SERVICE_SUBNET" \
		--root-ca-file="$PKI/ca.crt" --service-account-private-key-file="$PKI/sa.key" \
		--flex-volume-plugin-dir="$RUN/flexvolume"
	launch kube-scheduler --kubeconfig="$RUN/scheduler.kubeconfig" --leader-elect=false --secure-port=0
	await containerd socket ctr_ version
	load
	kubelet_config
	launch kubelet --config="$RUN/kubelet/config.yaml" --kubeconfig="$RUN/node.kubeconfig" \
		--hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --root-dir="$RUN/kubelet" \
		--cert-dir="$RUN/kubelet/pki" --volume-plugin-dir="$RUN/kubelet/volume-plugins"
	kube_proxy_config
	launch kube-proxy --config="$RUN/kube-proxy.yaml"
	await kubelet "Ready node" node_ready
	await kube-controller-manager "default ServiceAccount" api /api/v1/namespaces/default/serviceaccounts/default
	coredns
	await kubelet "ready CoreDNS" coredns_ready
	log "up in $((SECONDS - t0)) s: kubeconfig $RUN/kubeconfig, logs $RUN/*.log"
}

down() {
	# kube-proxy and kubelet first, so that nothing restarts pods; then every pod's
	# containers through containerd, then containerd and the control plane.
	terminate kube-proxy kubelet kube-scheduler kube-controller-manager
	if alive containerd; then
		local t
		for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true; done
		for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$t" >/dev/null 2>&1 || true; done
	fi
	terminate containerd kube-apiserver etcd
	# Shims whose containerd is gone, and their containers' processes.
	local pid
	for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $SOCK" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
	# Mounts under the run directory (pod volumes, overlay snapshots, sandboxes' /dev/shm).
	local m
	for m in $(awk -v r="$RUN/" -v s="/run/containerd/" 'index($5, r) == 1 || index($5, s) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
		umount -l "$m" 2>/dev/null || true
	done
	# Pod network namespaces (named by the CNI plugins), the bridge and the veths on it.
	for m in $(ip netns list 2>/dev/null | awk '/^cni-/ { print $1 }'); do ip netns delete "$m" 2>/dev/null || true; done
	if [ -f "$RUN/bridge" ]; then ip link delete "$(cat "$RUN/bridge")" 2>/dev/null || true; fi
	iptables -w -t mangle -D FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -m comment --comment "$EGRESS_COMMENT" -j DROP 2>/dev/null || true
	clean_iptables
	rm -rf "${HARDCODED[@]}" "$RUN/etcd-data" "$RUN/containerd" "$RUN/kubelet" "$RUN/cni" "$RUN/flexvolume" "$RUN/bridge" "$RUN/kubeconfig"
	log "down"
}
# testenv.sh's await calls stop on a failure; MESH_CLUSTER_KEEP=1 keeps what runs, to debug.
stop() { if [ "${MESH_CLUSTER_KEEP:-}" != 1 ]; then down; fi; }

# clean_iptables removes the chains of kube-proxy, kubelet and the CNI plugins
# (KUBE-*, CNI-*) and every rule that jumps to them, in every table.
clean_iptables() {
	local cmd
	for cmd in iptables ip6tables; do
		command -v "$cmd-save" >/dev/null || continue
		"$cmd-save" 2>/dev/null | awk '
			/^\*/ { print; next }
			/^:(KUBE-|CNI-)/ { next }
			/^-A (KUBE-|CNI-)/ { next }
			/-j (KUBE-|CNI-)/ { next }
			{ print }' | "$cmd-restore" -w 2>/dev/null || log "warning: could not remove the $cmd chains of kube-proxy and CNI"
	done
}

status() {
	if running && coredns_ready; then
		echo "up: https://$NODE_IP:$API_PORT, node $NODE_NAME Ready, kubeconfig $RUN/kubeconfig"
		return 0
	fi
	local p up=()
	for p in "${PROCS[@]}"; do if alive "$p"; then up+=("$p"); fi; done
	echo "not up${up[*]:+ (but ${up[*]} run: see $RUN/*.log, or hack/cluster.sh down)}"
	return 1
}

env_() {
	printf 'export KUBECONFIG=%q\n' "$RUN/kubeconfig"
	printf 'export MESH_NODE_KUBECONFIG=%q\n' "$RUN/kubeconfig"
	printf 'export MESH_NODE_KUBECTL=%q\n' "$KUBECTL"
	printf 'export MESH_NODE_IMAGES=%q\n' "$IMAGES"
	printf 'export MESH_NODE_IMAGE_VERSION=%q\n' "$IMAGE_VERSION"
	printf 'export MESH_NODE_CONTAINERD=%q\n' "$SOCK"
	printf 'export PATH=%q:"$PATH"\n' "$BIN"
	running || log "warning: the cluster is not up (hack/cluster.sh up)"
}

case ${1:-} in
up | down | status) "$1" ;;
env) env_ ;;
load) shift && load "$@" ;;
*) die "usage: $0 up|down|status|env|load [ARCHIVE...]" ;;
esac
