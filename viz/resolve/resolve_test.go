package resolve

import (
	"context"
	"errors"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func pod(name, app string, phase corev1.PodPhase, proxyRunning bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}, {Name: "mesh-proxy",
			Ports: []corev1.ContainerPort{{Name: "mesh-admin", ContainerPort: 4191}}}}},
		Status: corev1.PodStatus{Phase: phase}}
	if proxyRunning {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "mesh-proxy", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
	}
	return p
}

func TestTargets(t *testing.T) {
	t.Parallel()
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	objs := []runtime.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}},
		pod("web-b", "web", corev1.PodRunning, true), pod("web-a", "web", corev1.PodRunning, true),
		pod("web-done", "web", corev1.PodSucceeded, false), pod("batch-1", "batch", corev1.PodPending, false),
		&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-7d9f", Namespace: "shop"}, Spec: appsv1.ReplicaSetSpec{Selector: sel}},
		&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "batch", Namespace: "shop"},
			Spec: batchv1.JobSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "batch"}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "external", Namespace: "shop"}},
	}
	c := fake.NewClientset(objs...)
	ctx := context.Background()
	names := func(r Resource) string {
		ts, err := Targets(ctx, c, r)
		if err != nil {
			return "error: " + err.Error()
		}
		var s []string
		for _, t := range ts {
			var ps []string
			for _, p := range t.Pods {
				ps = append(ps, p.Name)
			}
			s = append(s, t.Resource.String()+"="+strings.Join(ps, ","))
		}
		return strings.Join(s, " ")
	}
	for r, want := range map[Resource]string{
		{Kind: KindReplicaSet, Namespace: "shop", Name: "web-7d9f"}: "replicaset/web-7d9f=web-a,web-b",
		{Kind: KindJob, Namespace: "shop"}:                          "job/batch=batch-1",
		{Kind: KindService, Namespace: "shop", Name: "external"}:    "service/external=",
		{Kind: KindNamespace, Name: "shop"}:                         "namespace/shop=batch-1,web-a,web-b",
		{Kind: KindPod, Namespace: "shop", Name: "web-done"}:        "pod/web-done=",
		{Kind: KindJob, Namespace: "shop", Name: "nope"}:            "error: job shop/nope: not found",
		{Kind: "cronjob", Namespace: "shop"}:                        `error: unknown kind "cronjob"`,
	} {
		if got := names(r); got != want {
			t.Errorf("%+v: %s, want %s", r, got, want)
		}
	}
	if _, err := Targets(ctx, c, Resource{Kind: KindDeployment, Namespace: "shop", Name: "nope"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("not ErrNotFound: %v", err)
	}

	// A namespace user may not get the namespace: its pods are listed all the same;
	// a namespace that does not exist is still not found.
	c.PrependReactor("get", "namespaces", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.(k8stesting.GetAction).GetName() == "shop" {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "namespaces"}, "shop", errors.New("no"))
		}
		return false, nil, nil
	})
	if got := names(Resource{Kind: KindNamespace, Name: "shop"}); got != "namespace/shop=batch-1,web-a,web-b" {
		t.Errorf("forbidden namespace get: %s", got)
	}
	if got := names(Resource{Kind: KindNamespace, Name: "gone"}); got != "error: namespace gone: not found" {
		t.Errorf("missing namespace: %s", got)
	}
}

func TestPodPredicates(t *testing.T) {
	t.Parallel()
	if !Tappable(pod("a", "x", corev1.PodRunning, true)) || Tappable(pod("a", "x", corev1.PodPending, true)) || Tappable(pod("a", "x", corev1.PodRunning, false)) {
		t.Error("Tappable")
	}
	if port, meshed := ProxyAdminPort(pod("a", "x", corev1.PodRunning, true)); port != "4191" || !meshed {
		t.Errorf("ProxyAdminPort %q %v", port, meshed)
	}
	plain := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	if _, meshed := ProxyAdminPort(plain); meshed {
		t.Error("plain pod meshed")
	}
	for in, want := range map[string]string{"deploy": KindDeployment, "STS": KindStatefulSet, "rs": KindReplicaSet, "jobs": KindJob, "svc": KindService} {
		if got, ok := Canonical(in); !ok || got != want {
			t.Errorf("Canonical(%q) = %q %v", in, got, ok)
		}
	}
	if _, ok := Canonical("cm"); ok {
		t.Error("cm known")
	}
}
