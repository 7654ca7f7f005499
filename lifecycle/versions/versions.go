// Package versions is the cluster side of `mesh version`: the live control plane's
// version and a proxy-status view, the meshed workloads with their proxies' versions
// and pod counts, from one LIST of pods.
//
// A pod's workload is its controller owner reference, resolved one step further by
// name for the controllers that name their children after themselves: a ReplicaSet
// named <deployment>-<pod-template-hash> (the pod's pod-template-hash label) is
// reported as that Deployment, without reading the ReplicaSet. A ReplicaSet whose name
// does not follow the convention is reported as itself, a pod without a controller as
// the Pod. Pods that have finished (Succeeded, Failed) run no proxy and are left out.
package versions

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/checks/upgrade"
)

// ControlPlane is the live control plane.
type ControlPlane struct {
	Namespace string `json:"namespace"`
	Installed bool   `json:"installed"`
	Version   string `json:"version,omitempty"`
}

// Count is how many pods of a workload run a proxy version.
type Count struct {
	Version string `json:"version"`
	Pods    int    `json:"pods"`
}

// Workload is a meshed workload and its proxies' versions, by version.
type Workload struct {
	Namespace string  `json:"namespace"`
	Kind      string  `json:"kind"`
	Name      string  `json:"name"`
	Pods      int     `json:"pods"`
	Versions  []Count `json:"versions"`
}

// Report is the cluster side of `mesh version`.
type Report struct {
	ControlPlane ControlPlane `json:"controlPlane"`
	Proxies      []Workload   `json:"proxies"`
}

// Options of Read.
type Options struct {
	Namespace    string // the control plane's
	PodNamespace string // "" for all namespaces
}

// Read reads the control plane's version and lists the pods once. Refused credentials
// or a forbidden request are a *checks.ClusterError.
func Read(ctx context.Context, cs kubernetes.Interface, host string, o Options) (*Report, error) {
	r := &Report{ControlPlane: ControlPlane{Namespace: o.Namespace}, Proxies: []Workload{}}
	v, err := upgrade.ControlPlaneVersion(ctx, cs, o.Namespace)
	switch {
	case errors.Is(err, upgrade.ErrNoControlPlane):
	case err != nil:
		return nil, clusterError(host, err)
	default:
		r.ControlPlane.Installed, r.ControlPlane.Version = true, v
	}
	pods, err := cs.CoreV1().Pods(o.PodNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, clusterError(host, fmt.Errorf("listing pods: %w", err))
	}
	r.Proxies = Workloads(pods.Items)
	return r, nil
}

func clusterError(host string, err error) error {
	if apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err) {
		return &checks.ClusterError{Host: host, Unauthorized: true, Err: err}
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Code < 500 && !apierrors.IsTimeout(err) {
		return err
	}
	return &checks.ClusterError{Host: host, Err: err}
}

// Workloads groups the meshed pods by workload, sorted by namespace, kind and name,
// their versions sorted.
func Workloads(pods []corev1.Pod) []Workload {
	type key struct{ ns, kind, name string }
	counts := map[key]map[string]int{}
	for i := range pods {
		p := &pods[i]
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		v, meshed := upgrade.ProxyVersion(p)
		if !meshed {
			continue
		}
		kind, name := Owner(p)
		k := key{p.Namespace, kind, name}
		if counts[k] == nil {
			counts[k] = map[string]int{}
		}
		counts[k][v]++
	}
	out := make([]Workload, 0, len(counts))
	for k, byVersion := range counts {
		w := Workload{Namespace: k.ns, Kind: k.kind, Name: k.name}
		for v, n := range byVersion {
			w.Versions = append(w.Versions, Count{Version: v, Pods: n})
			w.Pods += n
		}
		sort.Slice(w.Versions, func(i, j int) bool { return w.Versions[i].Version < w.Versions[j].Version })
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Name < b.Name
	})
	return out
}

// Owner is the workload a pod belongs to (see the package comment).
func Owner(p *corev1.Pod) (kind, name string) {
	ref := metav1.GetControllerOf(p)
	if ref == nil {
		return "Pod", p.Name
	}
	if ref.Kind == "ReplicaSet" && strings.HasPrefix(ref.APIVersion, "apps/") {
		if hash := p.Labels["pod-template-hash"]; hash != "" {
			if d, ok := strings.CutSuffix(ref.Name, "-"+hash); ok && d != "" {
				return "Deployment", d
			}
		}
	}
	return ref.Kind, ref.Name
}
