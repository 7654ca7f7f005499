package versions

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshplane/mesh/render/inject"
)

func pod(ns, name, version string, owner *metav1.OwnerReference, labels map[string]string) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}}
	if owner != nil {
		owner.Controller = new(bool)
		*owner.Controller = true
		p.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	p.Spec.Containers = []corev1.Container{{Name: "app", Image: "app:1"}}
	if version != "" {
		p.Annotations = map[string]string{inject.ProxyVersion: version}
		p.Spec.InitContainers = []corev1.Container{{Name: inject.ProxyContainer, Image: "proxy:" + version}}
	}
	return p
}

func TestOwnerAndWorkloads(t *testing.T) {
	t.Parallel()
	rs := func(name string) *metav1.OwnerReference {
		return &metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: name}
	}
	hash := func(h string) map[string]string { return map[string]string{"pod-template-hash": h} }
	done := pod("shop", "job-x", "1.3.0", &metav1.OwnerReference{APIVersion: "batch/v1", Kind: "Job", Name: "job"}, nil)
	done.Status.Phase = corev1.PodSucceeded
	pods := []corev1.Pod{
		pod("shop", "web-abc-1", "1.4.0", rs("web-abc"), hash("abc")),
		pod("shop", "web-def-1", "1.3.0", rs("web-def"), hash("def")),
		pod("shop", "web-abc-2", "1.4.0", rs("web-abc"), hash("abc")),
		pod("shop", "odd-1", "1.4.0", rs("odd"), hash("abc")), // not <deployment>-<hash>
		pod("shop", "db-0", "1.4.0", &metav1.OwnerReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db"}, nil),
		pod("shop", "plain", "1.4.0", nil, nil),
		pod("shop", "unmeshed", "", rs("web-abc"), hash("abc")),
		pod("a", "x", "", nil, nil),
		done,
	}
	want := []Workload{
		{Namespace: "shop", Kind: "Deployment", Name: "web", Pods: 3, Versions: []Count{{"1.3.0", 1}, {"1.4.0", 2}}},
		{Namespace: "shop", Kind: "Pod", Name: "plain", Pods: 1, Versions: []Count{{"1.4.0", 1}}},
		{Namespace: "shop", Kind: "ReplicaSet", Name: "odd", Pods: 1, Versions: []Count{{"1.4.0", 1}}},
		{Namespace: "shop", Kind: "StatefulSet", Name: "db", Pods: 1, Versions: []Count{{"1.4.0", 1}}},
	}
	if got := Workloads(pods); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

// options -> output, in every format.
func TestWrite(t *testing.T) {
	t.Parallel()
	v := View{ClientVersion: "1.4.0", GoVersion: "go1.26", Platform: "linux/amd64", Report: Report{
		ControlPlane: ControlPlane{Namespace: "mesh-system", Installed: true, Version: "1.4.0"},
		Proxies:      []Workload{{Namespace: "shop", Kind: "Deployment", Name: "web", Pods: 3, Versions: []Count{{"1.3.0", 1}, {"1.4.0", 2}}}},
	}}
	none := View{ClientVersion: "1.4.0", Report: Report{ControlPlane: ControlPlane{Namespace: "mesh"}, Proxies: []Workload{}}}
	for _, tc := range []struct {
		name, output string
		view         View
		want         string
	}{
		{"text", "", v, "Client version: 1.4.0\nControl plane version: 1.4.0 (namespace mesh-system)\n" +
			"NAMESPACE  KIND        NAME  PROXY VERSION  PODS\n" +
			"shop       Deployment  web   1.3.0          1\n" +
			"shop       Deployment  web   1.4.0          2\n"},
		{"short", "short", v, "1.4.0\n1.4.0\n"},
		{"text, nothing installed", "", none, "Client version: 1.4.0\nControl plane version: not installed (no control plane in namespace mesh)\nNo meshed pods.\n"},
		{"short, nothing installed", "short", none, "1.4.0\nnone\n"},
		{"yaml", "yaml", none, "clientVersion: 1.4.0\ncontrolPlane:\n  installed: false\n  namespace: mesh\ngoVersion: \"\"\nplatform: \"\"\nproxies: []\n"},
	} {
		var b bytes.Buffer
		if err := Write(&b, tc.view, tc.output); err != nil || b.String() != tc.want {
			t.Errorf("%s: %v\n got %q\nwant %q", tc.name, err, b.String(), tc.want)
		}
	}
	var b bytes.Buffer
	if err := Write(&b, v, "json"); err != nil {
		t.Fatal(err)
	}
	var back View
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || !reflect.DeepEqual(back, v) {
		t.Errorf("json: %v\n%s", err, b.String())
	}
	if err := Write(&b, v, "toml"); err == nil {
		t.Error("-o toml wrote")
	}
}
