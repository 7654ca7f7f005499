package destination

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A pod event wakes the streams of the Services whose slices point at the pod and of
// its IP, no others in its namespace; a status-only update wakes none.
func TestPodEventWakesOnlyItsStreams(t *testing.T) {
	srv, _, _ := fakeServer(t, benchSlice(0), benchSlice(10), benchPod(0, 0)) // same namespace
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if !srv.Start(ctx) {
		t.Fatal("not synced")
	}
	keys := []string{endpointsKey(benchNS(0), "svc-0"), endpointsKey(benchNS(10), "svc-10"), ipKey(benchIP(0, 0)), ipKey(benchIP(0, 1))}
	chans := map[string]<-chan struct{}{}
	for _, k := range keys {
		ch, unsubscribe := srv.hub.subscribe(k)
		defer unsubscribe()
		chans[k] = ch
	}
	check := func(what string, want ...string) {
		t.Helper()
		wanted := map[string]bool{}
		for _, k := range want {
			wanted[k] = true
		}
		for k, ch := range chans {
			select {
			case <-ch:
				if !wanted[k] {
					t.Errorf("%s: woke %s", what, k)
				}
			default:
				if wanted[k] {
					t.Errorf("%s: did not wake %s", what, k)
				}
			}
		}
	}
	pod := benchPod(0, 0)
	old, _ := trimPod(pod)
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
	cur, _ := trimPod(pod)
	srv.onPod(old, cur)
	check("a status-only update")

	pod.Annotations[opaqueAnnotation] = "8080"
	cur, _ = trimPod(pod)
	srv.onPod(old, cur)
	check("an opaque-ports change", endpointsKey(benchNS(0), "svc-0"), ipKey(benchIP(0, 0)))

	now := metav1.Now()
	pod.DeletionTimestamp = &now
	gone, _ := trimPod(pod)
	srv.onPod(gone, nil)
	check("a deletion", endpointsKey(benchNS(0), "svc-0"), ipKey(benchIP(0, 0)))
}
