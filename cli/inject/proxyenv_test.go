package inject

import (
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/controlplane/api/proxyenv"
	"github.com/meshplane/mesh/proxy/config"
	"github.com/meshplane/mesh/proxy/iptables"
	"github.com/meshplane/mesh/proxy/tap"
	"github.com/meshplane/mesh/render/inject"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/values"
)

const contractApp = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations:
        config.meshplane.io/proxy-log-level: warn,mesh=debug
        config.meshplane.io/opaque-ports: 3306,5432-5434
        config.meshplane.io/http2-ports: "50051"
        config.meshplane.io/skip-inbound-ports: "9999"
        config.meshplane.io/skip-outbound-ports: "443"
        config.meshplane.io/skip-subnets: 10.1.0.0/16,fd00::/8
        config.meshplane.io/tap-redact-headers: X-Api-Key, X-Session
        config.meshplane.io/tap-max-events-per-second: "250"
    spec:
      serviceAccountName: web-sa
      containers:
      - name: web
        image: nginx
        ports:
        - containerPort: 9090
        - containerPort: 8080
        - {containerPort: 53, protocol: UDP}
`

// The proxy's environment is one contract (controlplane/api/proxyenv): render/inject
// writes it and proxy/config reads it. An injected pod with settings that are none of
// the defaults goes through render/inject; its proxy container's environment, resolved
// as the kubelet does (downward API fields, then $(VAR) references), is loaded by
// proxy/config's loader, and its init container's arguments by proxy/iptables'
// parser. Every setting must arrive, and every variable written must be one the
// contract names.
func TestProxyEnvContract(t *testing.T) {
	t.Parallel()
	const anchorsFile = "../../render/install/testdata/pki/ca.crt"
	anchors, err := os.ReadFile(anchorsFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, inline := range []bool{true, false} {
		t.Run(fmt.Sprintf("inline-anchors=%v", inline), func(t *testing.T) {
			t.Parallel()
			o := install.Options{Version: "v9.8.7", Namespace: "mesh", TrustDomain: "example.com", Values: values.Options{Values: []string{
				"clusterDomain=cluster.example",
				"proxy.ports.inbound=14143", "proxy.ports.outbound=14140", "proxy.ports.admin=14191", "proxy.ports.control=14190",
				"proxy.logFormat=json", "proxy.uid=3001",
				"proxy.inboundConnectTimeout=250ms", "proxy.outboundConnectTimeout=2s", "proxy.shutdownGracePeriod=45s",
				"proxyInit.iptablesMode=legacy",
			}, StringValues: []string{"proxyInit.ignoreInboundPorts=7000", "proxyInit.ignoreOutboundPorts=7001"}}}
			if inline {
				o.TrustAnchorsFile = anchorsFile
			}
			io, _, _, _ := iostreams.Test()
			vals, err := install.EffectiveValues(o, io)
			if err != nil {
				t.Fatal(err)
			}
			m := &inject.Manual{Version: "v9.8.7", Namespace: "mesh", Values: vals}
			if inline { // --identity-trust-anchors-file: the values' anchors are never inlined
				m.TrustAnchorsPEM = string(anchors)
			}
			in, err := inject.New(inject.Options{Manual: m})
			if err != nil {
				t.Fatal(err)
			}
			out, _, err := in.YAML([]byte(contractApp))
			if err != nil {
				t.Fatal(err)
			}
			var d appsv1.Deployment
			if err := yaml.UnmarshalStrict(out, &d); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			pod := d.Spec.Template.Spec
			proxy, init := container(t, pod, inject.ProxyContainer), container(t, pod, inject.InitContainer)

			env := kubeletEnv(t, proxy.Env, map[string]string{
				"metadata.namespace": "shop", "metadata.name": "web-7d9f-abcde", "spec.serviceAccountName": pod.ServiceAccountName,
			})
			for name := range env {
				if !slices.Contains(proxyenv.Names(), name) {
					t.Errorf("the proxy container sets %s, which controlplane/api/proxyenv does not name", name)
				}
			}
			cfg, err := config.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			if err != nil {
				t.Fatalf("proxy/config refuses the injected environment: %v\n%v", err, env)
			}
			ports := func(ps ...uint16) map[uint16]bool {
				m := map[uint16]bool{}
				for _, p := range ps {
					m[p] = true
				}
				return m
			}
			want := &config.Config{
				LogLevel: "warn,mesh=debug", LogFormat: "json",
				InboundAddr: "0.0.0.0:14143", OutboundAddr: "127.0.0.1:14140", AdminAddr: "0.0.0.0:14191", ControlAddr: "0.0.0.0:14190",
				InboundPorts: []uint16{8080, 9090},
				OpaquePorts:  ports(3306, 5432, 5433, 5434),
				HTTP2Ports:   ports(50051),
				ProfileNetworks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("100.64.0.0/10"),
					netip.MustParsePrefix("172.16.0.0/12"), netip.MustParsePrefix("192.168.0.0/16")},
				InboundConnectTimeout: 250 * time.Millisecond, OutboundConnectTimeout: 2 * time.Second,
				DetectTimeout: proxyenv.DefaultDetectTimeout, ShutdownGrace: 45 * time.Second,
				DestinationAddr: "mesh-destination.mesh.svc.cluster.example.:8086",
				DestinationName: "mesh-destination.mesh.serviceaccount.identity.example.com",
				IdentityAddr:    "mesh-identity.mesh.svc.cluster.example.:8080",
				IdentityName:    "mesh-identity.mesh.serviceaccount.identity.example.com",
				IdentityDir:     "/var/run/mesh/identity/end-entity",
				TokenFile:       "/var/run/secrets/tokens/mesh-identity-token",
				LocalName:       "web-sa.shop.serviceaccount.identity.example.com",
				PodNamespace:    "shop", PodName: "web-7d9f-abcde",
				// The tap's listener stays the proxy's default (loopback, port-forward).
				TapAddr: proxyenv.DefaultTapListenAddr, TapRedactHeaders: []string{"X-Api-Key", "X-Session"}, TapMaxEventsPerSecond: 250,
			}
			if inline {
				want.TrustAnchorsPEM = anchors
			} else {
				want.TrustAnchorsFile = "/var/run/mesh/identity/trust-roots/ca-bundle.crt"
			}
			if !reflect.DeepEqual(cfg, want) {
				t.Errorf("proxy/config read\n%+v\nwant\n%+v", cfg, want)
			}
			// The files the environment names are the ones the pod mounts.
			for _, path := range []string{cfg.IdentityDir, cfg.TokenFile, cfg.TrustAnchorsFile} {
				if path != "" && !mounted(proxy, path) {
					t.Errorf("%s is not under a volume mount of the proxy: %+v", path, proxy.VolumeMounts)
				}
			}

			if len(init.Args) == 0 || init.Args[0] != "init" {
				t.Fatalf("init container args %q", init.Args)
			}
			rules, err := iptables.ParseFlags(init.Args[1:], io.ErrOut)
			if err != nil {
				t.Fatalf("proxy/iptables refuses the init container's arguments %q: %v", init.Args, err)
			}
			if rules.InboundPort != 14143 || rules.OutboundPort != 14140 || rules.ProxyUID != 3001 || rules.Mode != iptables.ModeLegacy {
				t.Errorf("init: %+v", rules)
			}
			if got := strings.Join(rules.SkipInboundPorts, ","); got != "14190,14191,7000,9999" {
				t.Errorf("init skips inbound ports %s", got)
			}
			if got := strings.Join(rules.SkipOutboundPorts, ","); got != "7001,443" {
				t.Errorf("init skips outbound ports %s", got)
			}
			if got := fmt.Sprint(rules.SkipSubnets); got != "[10.1.0.0/16 fd00::/8]" {
				t.Errorf("init skips subnets %s", got)
			}
		})
	}
}

// The chart's proxy settings that stand for the proxy's own defaults are those
// defaults: a pod injected with the default install runs the proxy as it runs with
// nothing set.
func TestChartDefaultsAreTheProxyDefaults(t *testing.T) {
	t.Parallel()
	vals, err := install.EffectiveValues(install.Options{Version: "v1.2.3"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) string {
		v, ok := values.Lookup(vals, path)
		if !ok {
			t.Fatalf("values: no %s", path)
		}
		return fmt.Sprint(v)
	}
	for path, want := range map[string]int{
		"proxy.ports.inbound": proxyenv.DefaultInboundPort, "proxy.ports.outbound": proxyenv.DefaultOutboundPort,
		"proxy.ports.admin": proxyenv.DefaultAdminPort, "proxy.ports.control": proxyenv.DefaultControlPort,
	} {
		if got := get(path); got != fmt.Sprint(want) {
			t.Errorf("%s = %s, the proxy's default is %d", path, got, want)
		}
	}
	for path, want := range map[string]time.Duration{
		"proxy.inboundConnectTimeout": proxyenv.DefaultInboundConnectTimeout, "proxy.outboundConnectTimeout": proxyenv.DefaultOutboundConnectTimeout,
	} {
		if got, err := time.ParseDuration(get(path)); err != nil || got != want {
			t.Errorf("%s = %s, the proxy's default is %s", path, get(path), want)
		}
	}
	if got := get("proxy.opaquePorts"); got != proxyenv.DefaultOpaquePorts {
		t.Errorf("proxy.opaquePorts = %s, the proxy's default is %s", got, proxyenv.DefaultOpaquePorts)
	}
	if got := get("proxy.tap.maxEventsPerSecond"); got != fmt.Sprint(proxyenv.DefaultTapMaxEventsPerSecond) || got != fmt.Sprint(tap.DefaultRate) {
		t.Errorf("proxy.tap.maxEventsPerSecond = %s, the proxy's default is %d (proxy/tap: %d)", got, proxyenv.DefaultTapMaxEventsPerSecond, tap.DefaultRate)
	}
	if got := get("proxy.tap.redactHeaders"); got != "[]" {
		t.Errorf("proxy.tap.redactHeaders = %s, the proxy redacts no more than its own four by default", got)
	}
	if got := get("proxy.logFormat"); got != proxyenv.DefaultLogFormat {
		t.Errorf("proxy.logFormat = %s, the proxy's default is %s", got, proxyenv.DefaultLogFormat)
	}
	for _, addr := range []string{proxyenv.DefaultInboundListenAddr, proxyenv.DefaultOutboundListenAddr, proxyenv.DefaultAdminListenAddr, proxyenv.DefaultControlListenAddr} {
		port := addr[strings.LastIndexByte(addr, ':')+1:]
		if !slices.Contains([]string{fmt.Sprint(proxyenv.DefaultInboundPort), fmt.Sprint(proxyenv.DefaultOutboundPort),
			fmt.Sprint(proxyenv.DefaultAdminPort), fmt.Sprint(proxyenv.DefaultControlPort)}, port) {
			t.Errorf("default address %s is not on a default port", addr)
		}
	}
}

func container(t *testing.T, pod corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range append(append([]corev1.Container{}, pod.InitContainers...), pod.Containers...) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %s", name)
	return corev1.Container{}
}

var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// kubeletEnv resolves a container's environment as the kubelet does: fieldRef values
// from the pod, and $(NAME) references to variables defined earlier in the list.
func kubeletEnv(t *testing.T, vars []corev1.EnvVar, fields map[string]string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, v := range vars {
		if _, dup := env[v.Name]; dup {
			t.Errorf("%s is set twice", v.Name)
		}
		switch {
		case v.ValueFrom != nil && v.ValueFrom.FieldRef != nil:
			val, ok := fields[v.ValueFrom.FieldRef.FieldPath]
			if !ok {
				t.Fatalf("%s: unexpected fieldRef %s", v.Name, v.ValueFrom.FieldRef.FieldPath)
			}
			env[v.Name] = val
		case v.ValueFrom != nil:
			t.Fatalf("%s: unexpected valueFrom %+v", v.Name, v.ValueFrom)
		default:
			env[v.Name] = envRef.ReplaceAllStringFunc(v.Value, func(ref string) string {
				if val, ok := env[ref[2:len(ref)-1]]; ok {
					return val
				}
				return ref
			})
		}
	}
	return env
}

func mounted(c corev1.Container, path string) bool {
	for _, m := range c.VolumeMounts {
		if path == m.MountPath || strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
			return true
		}
	}
	return false
}
