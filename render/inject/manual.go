package inject

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/meshplane/mesh/controlplane/api/proxyenv"
	"github.com/meshplane/mesh/render/values"
)

// What --manual adds, by name; uninject removes exactly these.
const (
	ProxyContainer = "mesh-proxy"
	// AdminPortName names the proxy container's admin port (/metrics, /live,
	// /ready); mesh stat reads the port number from it.
	AdminPortName        = "mesh-admin"
	InitContainer        = "mesh-init"
	ProxyVersion         = "meshplane.io/proxy-version"
	TrustRootsConfigMap  = "mesh-identity-trust-roots"
	volumeEndEntity      = "mesh-identity-end-entity"
	volumeToken          = "mesh-identity-token"
	volumeTrustRoots     = "mesh-identity-trust-roots"
	volumeXtables        = "mesh-init-xtables"
	tokenPath            = "/var/run/secrets/tokens"
	identityDir          = "/var/run/mesh/identity/end-entity"
	trustRootsDir        = "/var/run/mesh/identity/trust-roots"
	tokenExpirationInSec = 86400
)

var meshVolumes = map[string]bool{volumeEndEntity: true, volumeToken: true, volumeTrustRoots: true, volumeXtables: true}

// Manual is what --manual needs to write the proxy into pod specs offline.
type Manual struct {
	Version   string         // mesh version: the proxy image tag unless image.tag is set
	Namespace string         // the control plane's namespace
	Values    map[string]any // the control plane's effective values (mesh install --print-values)
	// TrustAnchorsPEM, when set, is written into the pod; otherwise the pod mounts the
	// mesh-identity-trust-roots ConfigMap that the identity controller publishes in
	// every meshed namespace (whatever the values' identity.trustAnchorsPEM says: the
	// published bundle is what a rotation updates in running pods).
	TrustAnchorsPEM string
}

func (m *Manual) str(path string) string {
	v, _ := values.Lookup(m.Values, path)
	switch t := v.(type) {
	case string:
		return t
	case nil:
		return ""
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	default:
		return fmt.Sprint(t)
	}
}

// headers is the list of header names at path, comma-joined ("" when unset or
// empty), each checked as the tap-redact-headers annotation is.
func (m *Manual) headers(path string) (string, error) {
	v, _ := values.Lookup(m.Values, path)
	if v == nil {
		return "", nil
	}
	list, ok := v.([]any)
	if !ok {
		return "", fmt.Errorf("values: %s: want a list of header names, not %T", path, v)
	}
	names := make([]string, 0, len(list))
	for i, h := range list {
		name, _ := h.(string)
		if err := headerNames(name); err != nil {
			return "", fmt.Errorf("values: %s[%d]: %w", path, i, err)
		}
		names = append(names, name)
	}
	return strings.Join(names, ","), nil
}

func (m *Manual) port(path string) (int32, error) {
	p, err := strconv.Atoi(m.str(path))
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("values: %s is not a port", path)
	}
	return int32(p), nil
}

// settings are one pod's proxy settings: the values, then the pod's
// config.meshplane.io/* annotations (cfg).
type settings struct {
	image, pullPolicy, logLevel, logFormat           string
	uid                                              int64
	inbound, outbound, admin, control                int32
	resources                                        corev1.ResourceRequirements
	opaque, skipIn, skipOut, skipSubnets, http2      string
	tapRedact, tapRate                               string
	native, cni                                      bool
	iptablesMode, ignoreIn, ignoreOut                string
	trustDomain, clusterDomain, audience, anchors    string
	shutdown, inboundConnectTimeout, outboundTimeout string
}

func (m *Manual) settings(cfg map[string]string) (settings, error) {
	var s settings
	var err error
	tag := m.str("image.tag")
	if tag == "" {
		tag = m.Version
	}
	s.image = fmt.Sprintf("%s/%s:%s", m.str("image.registry"), m.str("proxy.image"), tag)
	s.pullPolicy, s.logLevel, s.logFormat = m.str("image.pullPolicy"), m.str("proxy.logLevel"), m.str("proxy.logFormat")
	if s.uid, err = strconv.ParseInt(m.str("proxy.uid"), 10, 64); err != nil {
		return s, fmt.Errorf("values: proxy.uid: %w", err)
	}
	for path, dst := range map[string]*int32{"proxy.ports.inbound": &s.inbound, "proxy.ports.outbound": &s.outbound, "proxy.ports.admin": &s.admin, "proxy.ports.control": &s.control} {
		if *dst, err = m.port(path); err != nil {
			return s, err
		}
	}
	if r, ok := values.Lookup(m.Values, "proxy.resources"); ok {
		b, _ := json.Marshal(r)
		if err := json.Unmarshal(b, &s.resources); err != nil {
			return s, fmt.Errorf("values: proxy.resources: %w", err)
		}
	}
	s.opaque, s.skipIn, s.skipOut, s.skipSubnets = m.str("proxy.opaquePorts"), m.str("proxy.skipInboundPorts"), m.str("proxy.skipOutboundPorts"), m.str("proxy.skipSubnets")
	s.native, s.cni = m.str("proxy.nativeSidecar") != "false", m.str("proxyInit.mode") == "cni"
	s.iptablesMode, s.ignoreIn, s.ignoreOut = m.str("proxyInit.iptablesMode"), m.str("proxyInit.ignoreInboundPorts"), m.str("proxyInit.ignoreOutboundPorts")
	s.trustDomain, s.clusterDomain, s.audience = m.str("identity.trustDomain"), m.str("clusterDomain"), m.str("identity.tokenAudience")
	s.shutdown, s.inboundConnectTimeout, s.outboundTimeout = m.str("proxy.shutdownGracePeriod"), m.str("proxy.inboundConnectTimeout"), m.str("proxy.outboundConnectTimeout")
	// Never the values' identity.trustAnchorsPEM: anchors written into the pod stay
	// until it is replaced, so a rotation (docs/identity.md) would have to restart every
	// workload before the issuer may change. The published ConfigMap follows the
	// issuer Secret's ca.crt, and proxies re-read it while they run.
	s.anchors = m.TrustAnchorsPEM
	// The tap's install-wide settings; unset (values of an older install) leaves the
	// proxy's defaults.
	if s.tapRedact, err = m.headers("proxy.tap.redactHeaders"); err != nil {
		return s, err
	}
	if s.tapRate = m.str("proxy.tap.maxEventsPerSecond"); s.tapRate != "" {
		if err := eventRate(s.tapRate); err != nil {
			return s, fmt.Errorf("values: proxy.tap.maxEventsPerSecond %q: %w", s.tapRate, err)
		}
	}
	// Per-pod overrides, in a stable order (so is the first error).
	for _, k := range slices.Sorted(maps.Keys(cfg)) {
		v := cfg[k]
		name := strings.TrimPrefix(k, ConfigPrefix)
		switch name {
		case "proxy-cpu-request", "proxy-cpu-limit", "proxy-memory-request", "proxy-memory-limit":
			q, err := resource.ParseQuantity(v)
			if err != nil {
				return s, fmt.Errorf("%s: %w", k, err)
			}
			res := corev1.ResourceCPU
			if strings.Contains(name, "memory") {
				res = corev1.ResourceMemory
			}
			if strings.HasSuffix(name, "request") {
				if s.resources.Requests == nil {
					s.resources.Requests = corev1.ResourceList{}
				}
				s.resources.Requests[res] = q
			} else {
				if s.resources.Limits == nil {
					s.resources.Limits = corev1.ResourceList{}
				}
				s.resources.Limits[res] = q
			}
		case "proxy-log-level":
			s.logLevel = v
		case "proxy-image":
			s.image = v
		case "opaque-ports":
			s.opaque = v
		case "http2-ports":
			s.http2 = v
		case "skip-inbound-ports":
			s.skipIn = v
		case "skip-outbound-ports":
			s.skipOut = v
		case "skip-subnets":
			s.skipSubnets = v
		case "tap-redact-headers", "tap-max-events-per-second":
			// Checked as mesh check does: the proxy would refuse the value at start.
			if err := CheckAnnotation(k, v); err != nil {
				return s, err
			}
			if name == "tap-redact-headers" {
				s.tapRedact = v
			} else {
				s.tapRate = v
			}
		default:
			return s, fmt.Errorf("unknown annotation %s", k)
		}
	}
	return s, nil
}

func joinNonEmpty(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, ",")
}

func env(name, value string) corev1.EnvVar { return corev1.EnvVar{Name: name, Value: value} }

func fieldEnv(name, path string) corev1.EnvVar {
	// APIVersion as the API server defaults it (the selector is atomic: without it a
	// server-side apply conflicts with the live object and GitOps tools see drift).
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}}}
}

// proxy builds the proxy container, the init container (nil in CNI mode) and the volumes.
func (s settings) proxy(ns string, appPorts []string) (corev1.Container, *corev1.Container, []corev1.Volume) {
	svc := func(name string, port int) string {
		return fmt.Sprintf("mesh-%s.%s.svc.%s.:%d", name, ns, s.clusterDomain, port)
	}
	id := func(sa string) string { return fmt.Sprintf("%s.%s.serviceaccount.identity.%s", sa, ns, s.trustDomain) }
	envs := []corev1.EnvVar{
		env(proxyenv.Log, s.logLevel),
		env(proxyenv.LogFormat, s.logFormat),
		env(proxyenv.InboundListenAddr, fmt.Sprintf("0.0.0.0:%d", s.inbound)),
		env(proxyenv.OutboundListenAddr, fmt.Sprintf("127.0.0.1:%d", s.outbound)),
		env(proxyenv.AdminListenAddr, fmt.Sprintf("0.0.0.0:%d", s.admin)),
		env(proxyenv.ControlListenAddr, fmt.Sprintf("0.0.0.0:%d", s.control)),
		env(proxyenv.InboundPorts, strings.Join(appPorts, ",")),
		env(proxyenv.OpaquePorts, s.opaque),
		env(proxyenv.InboundConnectTimeout, s.inboundConnectTimeout),
		env(proxyenv.OutboundConnectTimeout, s.outboundTimeout),
		env(proxyenv.ShutdownGracePeriod, s.shutdown),
		env(proxyenv.DestinationSvcAddr, svc("destination", 8086)),
		env(proxyenv.DestinationSvcName, id("mesh-destination")),
		env(proxyenv.IdentitySvcAddr, svc("identity", 8080)),
		env(proxyenv.IdentitySvcName, id("mesh-identity")),
		env(proxyenv.IdentityDir, identityDir),
		env(proxyenv.IdentityTokenFile, tokenPath+"/"+volumeToken),
		fieldEnv(proxyenv.PodServiceAccount, "spec.serviceAccountName"),
		fieldEnv(proxyenv.PodNamespace, "metadata.namespace"),
		fieldEnv(proxyenv.PodName, "metadata.name"),
		env(proxyenv.IdentityLocalName, "$("+proxyenv.PodServiceAccount+").$("+proxyenv.PodNamespace+").serviceaccount.identity."+s.trustDomain),
	}
	mounts := []corev1.VolumeMount{
		{Name: volumeEndEntity, MountPath: identityDir},
		{Name: volumeToken, MountPath: tokenPath, ReadOnly: true},
	}
	volumes := []corev1.Volume{
		{Name: volumeEndEntity, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
		{Name: volumeToken, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{
			ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: s.audience, ExpirationSeconds: ptr(int64(tokenExpirationInSec)), Path: volumeToken},
		}}}}},
	}
	if s.http2 != "" {
		envs = append(envs, env(proxyenv.HTTP2Ports, s.http2))
	}
	if s.tapRedact != "" {
		envs = append(envs, env(proxyenv.TapRedactHeaders, s.tapRedact))
	}
	if s.tapRate != "" {
		envs = append(envs, env(proxyenv.TapMaxEventsPerSecond, s.tapRate))
	}
	if s.anchors != "" {
		envs = append(envs, env(proxyenv.IdentityTrustAnchors, s.anchors))
	} else {
		envs = append(envs, env(proxyenv.IdentityTrustAnchorsFile, trustRootsDir+"/ca-bundle.crt"))
		mounts = append(mounts, corev1.VolumeMount{Name: volumeTrustRoots, MountPath: trustRootsDir, ReadOnly: true})
		volumes = append(volumes, corev1.Volume{Name: volumeTrustRoots, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: TrustRootsConfigMap},
		}}})
	}
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(s.admin)}}}
	}
	proxy := corev1.Container{
		Name:            ProxyContainer,
		Image:           s.image,
		ImagePullPolicy: corev1.PullPolicy(s.pullPolicy),
		Args:            []string{"run"},
		Env:             envs,
		Ports: []corev1.ContainerPort{
			{Name: "mesh-proxy", ContainerPort: s.inbound},
			{Name: AdminPortName, ContainerPort: s.admin},
		},
		Resources:      s.resources,
		VolumeMounts:   mounts,
		LivenessProbe:  probe("/live"),
		ReadinessProbe: probe("/ready"),
		SecurityContext: &corev1.SecurityContext{
			RunAsUser: ptr(s.uid), RunAsNonRoot: ptr(true), ReadOnlyRootFilesystem: ptr(true), AllowPrivilegeEscalation: ptr(false),
			Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}, SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	proxy.LivenessProbe.InitialDelaySeconds = 10
	proxy.ReadinessProbe.InitialDelaySeconds = 2
	if s.native {
		// A native sidecar: starts before the app's init containers, stops after the app.
		// The startup probe gates the app's start; once it passes, kubelet probes
		// readiness at once, so a readiness delay would only hold the pod back (about
		// 2 s of every meshed pod's start on the real node: docs/benchmarks.md).
		proxy.RestartPolicy = ptr(corev1.ContainerRestartPolicyAlways)
		proxy.StartupProbe = probe("/ready")
		proxy.StartupProbe.PeriodSeconds, proxy.StartupProbe.FailureThreshold = 1, 120
		proxy.ReadinessProbe.InitialDelaySeconds = 0
	}
	if s.cni {
		return proxy, nil, volumes
	}
	init := &corev1.Container{
		Name:            InitContainer,
		Image:           s.image,
		ImagePullPolicy: corev1.PullPolicy(s.pullPolicy),
		Args: []string{
			"init",
			fmt.Sprintf("--inbound-port=%d", s.inbound),
			fmt.Sprintf("--outbound-port=%d", s.outbound),
			fmt.Sprintf("--proxy-uid=%d", s.uid),
			"--skip-inbound-ports=" + joinNonEmpty(fmt.Sprint(s.control), fmt.Sprint(s.admin), s.ignoreIn, s.skipIn),
			"--skip-outbound-ports=" + joinNonEmpty(s.ignoreOut, s.skipOut),
			"--skip-subnets=" + s.skipSubnets,
			"--iptables-mode=" + s.iptablesMode,
		},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("10Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("50Mi")},
		},
		VolumeMounts: []corev1.VolumeMount{{Name: volumeXtables, MountPath: "/run"}},
		SecurityContext: &corev1.SecurityContext{
			RunAsUser: ptr(int64(0)), RunAsNonRoot: ptr(false), ReadOnlyRootFilesystem: ptr(true), AllowPrivilegeEscalation: ptr(false),
			Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN", "NET_RAW"}, Drop: []corev1.Capability{"ALL"}},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	volumes = append(volumes, corev1.Volume{Name: volumeXtables, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	return proxy, init, volumes
}

func ptr[T any](v T) *T { return &v }

// configAnnotations reads the config.meshplane.io/* annotations of a pod template.
func configAnnotations(tmpl *yaml.Node) map[string]string {
	out := map[string]string{}
	ann := at(tmpl, "metadata", "annotations")
	if ann == nil || ann.Kind != yaml.MappingNode {
		return out
	}
	for i := 0; i+1 < len(ann.Content); i += 2 {
		if k := ann.Content[i].Value; strings.HasPrefix(k, ConfigPrefix) {
			out[k] = ann.Content[i+1].Value
		}
	}
	return out
}

// appPorts lists the container ports of the app's containers, for the proxy's
// inbound port list.
func appPorts(spec *yaml.Node) []string {
	seen := map[string]bool{}
	var out []string
	eachPort(spec, func(c, p *yaml.Node) {
		if name := scalar(c, "name"); name == ProxyContainer || name == InitContainer {
			return // mesh's own: a re-inject must see the same app ports
		}
		if v := scalar(p, "containerPort"); v != "" && scalar(p, "protocol") != "UDP" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	})
	sort.Slice(out, func(i, j int) bool {
		a, _ := strconv.Atoi(out[i])
		b, _ := strconv.Atoi(out[j])
		return a < b
	})
	return out
}

// manual writes the proxy into the pod template tmpl. A template that already has
// mesh's containers or volumes is brought to the current ones: when they differ, they
// are removed in this pass (res.Action "stale") and written again in the next
// (Injector.doc runs it); the report says what changed.
func (in *Injector) manual(d *yamlDoc, tmpl *yaml.Node, res Result) (Result, error) {
	spec := at(tmpl, "spec")
	if spec == nil || spec.Kind != yaml.MappingNode {
		return res, fmt.Errorf("the pod template has no spec")
	}
	cfg := configAnnotations(tmpl)
	for k, v := range in.opts.Config {
		cfg[k] = v
	}
	sc, err := in.opts.Manual.Sidecar(cfg, appPorts(spec))
	if err != nil {
		return res, err
	}
	kvs := in.annotations(kv{InjectAnnotation, Enabled}, kv{ProxyVersion, in.opts.Manual.Version})
	if hasMeshParts(spec) {
		have, err := currentParts(spec)
		if err != nil {
			return res, err
		}
		version := versionChange(tmpl, in.opts.Manual.Version)
		if changes := have.changes(sc.parts()); len(changes) > 0 {
			if _, err := stripMesh(d, spec); err != nil {
				return res, err
			}
			res.Changed, res.Action, res.Reason = true, "stale", strings.Join(append(version, changes...), "; ")
			return res, nil
		}
		changed, err := d.setStrings(tmpl, []string{"metadata", "annotations"}, kvs)
		switch {
		case err != nil:
			return res, err
		case changed && len(version) > 0:
			res.Changed, res.Action, res.Reason = true, "updated", strings.Join(version, "; ")
		case changed:
			res.Changed, res.Action, res.Reason = true, "updated", "annotations"
		default:
			res.Action, res.Reason = "unchanged", "already injected"
		}
		return res, nil
	}
	for _, l := range []struct {
		name    string
		items   items
		prepend bool
	}{{"initContainers", toItems(sc.InitContainers), true}, {"containers", toItems(sc.Containers), true}, {"volumes", toItems(sc.Volumes), false}} {
		if len(l.items) == 0 {
			continue
		}
		if err := d.setList(spec, l.name, l.items, l.prepend); err != nil {
			return res, err
		}
	}
	if _, err := d.setStrings(tmpl, []string{"metadata", "annotations"}, kvs); err != nil {
		return res, err
	}
	res.Changed, res.Action = true, "injected"
	return res, nil
}

func toItems[T any](list []T) items {
	out := make(items, 0, len(list))
	for _, v := range list {
		out = append(out, v)
	}
	return out
}

// Sidecar is what --manual writes into a pod spec: init containers to put first (the
// proxy among them when it is a native sidecar), containers to put first, and volumes
// to add at the end.
type Sidecar struct {
	InitContainers []corev1.Container
	Containers     []corev1.Container
	Volumes        []corev1.Volume
}

// Sidecar is the proxy for a pod whose app containers listen on appPorts (TCP
// container ports, in increasing order), with the pod's config.meshplane.io/*
// annotations cfg.
func (m *Manual) Sidecar(cfg map[string]string, appPorts []string) (Sidecar, error) {
	s, err := m.settings(cfg)
	if err != nil {
		return Sidecar{}, err
	}
	proxy, init, volumes := s.proxy(m.Namespace, appPorts)
	sc := Sidecar{Volumes: volumes}
	if init != nil {
		sc.InitContainers = append(sc.InitContainers, *init)
	}
	if s.native {
		sc.InitContainers = append(sc.InitContainers, proxy)
	} else {
		sc.Containers = append(sc.Containers, proxy)
	}
	return sc, nil
}

// meshItem tells, for each list of a pod spec, whether an item is one mesh adds.
var meshItem = map[string]func(*yaml.Node) bool{
	"initContainers": func(n *yaml.Node) bool { s := scalar(n, "name"); return s == ProxyContainer || s == InitContainer },
	"containers":     func(n *yaml.Node) bool { return scalar(n, "name") == ProxyContainer },
	"volumes":        func(n *yaml.Node) bool { return meshVolumes[scalar(n, "name")] },
}

// meshLists are the pod spec's lists mesh adds to, in a fixed order.
var meshLists = []string{"initContainers", "containers", "volumes"}

// stripMesh removes mesh's containers and volumes from a pod spec, and lists left
// empty. It reports whether there was anything to remove.
func stripMesh(d *yamlDoc, spec *yaml.Node) (bool, error) {
	changed := false
	drop := map[string]bool{}
	for _, list := range meshLists {
		seq := at(spec, list)
		if seq == nil || seq.Kind != yaml.SequenceNode {
			continue
		}
		found := false
		for _, it := range seq.Content {
			found = found || meshItem[list](it)
		}
		if !found {
			continue
		}
		changed = true
		left, err := d.removeItems(seq, meshItem[list])
		if err != nil {
			return false, err
		}
		if left == 0 {
			drop[list] = true
		}
	}
	if len(drop) > 0 {
		if left, err := d.removeKeys(spec, drop); err != nil {
			return false, err
		} else if left == 0 {
			return false, fmt.Errorf("the pod spec would be empty")
		}
	}
	return changed, nil
}

// uninject removes what inject added to the pod template tmpl: the proxy and init
// containers, their volumes, and the meshplane.io/inject (unless it is "disabled",
// the user's own opt-out), meshplane.io/proxy-version and config.meshplane.io/*
// annotations, as Linkerd's uninject does, and the marker OriginalAnnotations, when the
// template shows it was injected (mesh's containers, or injectedBy). When
// the annotations are left empty, the marker's token is written back in their place;
// without one, the mapping goes (see dropEmpty), except a flow mapping in a block
// mapping, which stays as {}.
func (in *Injector) uninject(d *yamlDoc, tmpl *yaml.Node, res Result) (Result, error) {
	changed := false
	if spec := at(tmpl, "spec"); spec != nil && spec.Kind == yaml.MappingNode {
		var err error
		if changed, err = stripMesh(d, spec); err != nil {
			return res, err
		}
	}
	meta := at(tmpl, "metadata")
	if kn, ann := lookup(meta, "annotations"); ann != nil && ann.Kind == yaml.MappingNode && (changed || injectedBy(ann)) {
		var r record
		r, res = markerRecord(ann, res)
		drop := map[string]bool{}
		for i := 0; i+1 < len(ann.Content); i += 2 {
			k, v := ann.Content[i].Value, ann.Content[i+1]
			switch {
			case !meshAnnotation(k, v):
			case !r.tracks() || k == OriginalAnnotations || slices.Contains(r.Added, k):
				drop[k] = true
			case r.Changed[k] != "":
				if ok, err := d.writeBack(ann, v, r.Changed[k]); err != nil {
					return res, err
				} else if !ok {
					res.Warnings = append(res.Warnings, fmt.Sprintf("%s/%s: %s: the text %s records for it is not a string scalar; it was removed instead",
						strings.ToLower(res.Kind), res.Name, k, OriginalAnnotations))
					drop[k] = true
				}
				changed = true
			}
		}
		if len(drop) > 0 {
			changed = true
			left, err := d.removeKeys(ann, drop)
			if err != nil {
				return res, err
			}
			if left == 0 {
				if res, err = d.emptied(tmpl, meta, kn, ann, r, res); err != nil {
					return res, err
				}
			}
		}
	}
	if changed {
		res.Changed, res.Action = true, "uninjected"
	} else {
		res.Action, res.Reason = "unchanged", "not injected"
	}
	return res, nil
}

// emptied handles the annotations ann (the value of key kn in meta, in tmpl) all of
// whose entries go: the original form the marker's record r holds is written back (of
// the annotations, or of the metadata when the annotations are all it holds), or,
// without one, the mapping goes as dropEmpty says. A token that is not a form uninject
// may write is not written: a warning says so, and the mapping goes as without one.
func (d *yamlDoc) emptied(tmpl, meta, kn, ann *yaml.Node, r record, res Result) (Result, error) {
	if r.Metadata != nil && len(meta.Content) == 2 {
		mk, _ := lookup(tmpl, "metadata")
		restored, err := d.restore(tmpl, mk, meta, *r.Metadata)
		if err != nil || restored {
			return res, err
		}
		res.Warnings = append(res.Warnings, markerWarning(res, "metadata", *r.Metadata))
	}
	if r.Annotations != nil {
		restored, err := d.restore(meta, kn, ann, *r.Annotations)
		if err != nil || restored {
			return res, err
		}
		res.Warnings = append(res.Warnings, markerWarning(res, "annotations", *r.Annotations))
	}
	return res, d.dropEmpty([]*yaml.Node{tmpl, meta, ann})
}

// markerRecord is the record of the marker in ann (none if it has no marker). A marker
// that is not a string, or not a record, is ignored with a warning: uninject then
// does what it does without one.
func markerRecord(ann *yaml.Node, res Result) (record, Result) {
	_, mv := lookup(ann, OriginalAnnotations)
	if mv == nil {
		return record{}, res
	}
	if mv.Kind != yaml.ScalarNode || mv.Tag != "!!str" {
		res.Warnings = append(res.Warnings, markerWarning(res, "annotations", mv.Value))
		return record{}, res
	}
	if r, err := parseRecord(mv.Value); err == nil {
		return r, res
	}
	res.Warnings = append(res.Warnings, fmt.Sprintf("%s/%s: %s is not a record inject writes; it was removed and nothing written back",
		strings.ToLower(res.Kind), res.Name, OriginalAnnotations))
	return record{}, res
}

// writeBack replaces the value v, in annotations ann, with text, the original text of
// a value inject changed, when it is one string scalar (and reports false otherwise).
func (d *yamlDoc) writeBack(ann, v *yaml.Node, text string) (bool, error) {
	if _, ok := scalarFromText(text, d.style(ann)); !ok || v.Kind != yaml.ScalarNode {
		return false, nil
	}
	start := d.contentStart(v)
	end, err := d.nodeEnd(v)
	if err != nil {
		return false, err
	}
	return true, d.edit(v, start, max(end, start)-start, text)
}

// injectedBy tells whether the annotations ann say inject wrote them: they hold
// meshplane.io/inject (but for the opt-out), meshplane.io/proxy-version or the marker.
// Config annotations alone do not: a template without mesh's containers and without
// these was not injected (inject left it as it was, or it is injected later, by the
// namespace's annotation), so its config annotations are the user's and stay.
func injectedBy(ann *yaml.Node) bool {
	for i := 0; i+1 < len(ann.Content); i += 2 {
		if k := ann.Content[i].Value; !strings.HasPrefix(k, ConfigPrefix) && meshAnnotation(k, ann.Content[i+1]) {
			return true
		}
	}
	return false
}

// meshAnnotation tells whether uninject removes annotation key (with value v).
func meshAnnotation(key string, v *yaml.Node) bool {
	switch key {
	case InjectAnnotation:
		return v.Kind != yaml.ScalarNode || v.Value != Disabled
	case ProxyVersion, OriginalAnnotations:
		return true
	}
	return strings.HasPrefix(key, ConfigPrefix)
}

// dropEmpty empties the mapping at the end of chain (each node a mapping value of the
// one before it), all of whose entries are to go. A flow mapping whose parent is a
// block mapping is emptied in place: `annotations: {}` and `annotations: { }` come
// back as they were written before inject filled them (inject never writes a flow
// mapping into a block one). Otherwise its key goes, and when that empties the parent
// too, the parent's key, up to chain[0], which stays.
func (d *yamlDoc) dropEmpty(chain []*yaml.Node) error {
	for i := len(chain) - 1; i > 0; i-- {
		m, parent := chain[i], chain[i-1]
		if d.keptEmpty(m, parent) {
			return d.clearFlow(m)
		}
		key := ""
		for j := 0; j+1 < len(parent.Content); j += 2 {
			if parent.Content[j+1] == m {
				key = parent.Content[j].Value
			}
		}
		left, err := d.removeKeys(parent, map[string]bool{key: true})
		if err != nil || left > 0 {
			return err
		}
	}
	return nil
}

// ImageTag is the tag of an image reference: the text after the last ":" of its last
// path element, without a digest. It is "" for an image with no tag, e.g.
// "registry:5000/proxy" or "proxy@sha256:...".
func ImageTag(image string) string {
	image, _, _ = strings.Cut(image, "@")
	last := image[strings.LastIndex(image, "/")+1:]
	if i := strings.LastIndex(last, ":"); i >= 0 {
		return last[i+1:]
	}
	return ""
}
