package upgrade

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshplane/mesh/lifecycle/diff"
)

// WaitError is a wait that did not finish in time: it names what it waited for and
// what was still missing.
type WaitError struct {
	What    string
	Pending []string
}

func (e *WaitError) Error() string {
	return fmt.Sprintf("timed out waiting for %s: %s", e.What, joinRefs(e.Pending))
}

// waitPhase waits for the phase's CRDs to be Established and, with o.Wait, its
// Deployments to finish rolling out and their old pods to be gone, each bounded by
// o.Timeout.
func waitPhase(ctx context.Context, c *diff.Cluster, applied []*appliedObject, o Options) error {
	var crds, deployments []*appliedObject
	for _, a := range applied {
		switch {
		case a.ref.Kind == "CustomResourceDefinition" && a.ref.APIVersion == "apiextensions.k8s.io/v1":
			crds = append(crds, a)
		case a.ref.Kind == "Deployment" && a.ref.APIVersion == "apps/v1":
			deployments = append(deployments, a)
		}
	}
	if len(crds) > 0 {
		fmt.Fprintf(o.Progress, "Waiting for %d CustomResourceDefinitions to be Established\n", len(crds))
		if err := waitFor(ctx, "the CustomResourceDefinitions to be Established", crds, established, o); err != nil {
			return err
		}
	}
	if len(deployments) > 0 && o.Wait {
		fmt.Fprintf(o.Progress, "Waiting for %d Deployments to roll out (--timeout %s)\n", len(deployments), o.Timeout)
		if err := waitFor(ctx, "the rollouts", deployments, rolledOut, o); err != nil {
			return err
		}
		// A rollout is done while the old pods still terminate, and a stopping
		// destination answers its streams no more: proxies would act on endpoints
		// it no longer updates. The upgrade ends once they are gone.
		if err := waitFor(ctx, "the old pods to stop", deployments, oldPodsGone(ctx, c), o); err != nil {
			return err
		}
	}
	return nil
}

var podsResource = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// oldPodsGone: no pod of the Deployment's selector is terminating.
func oldPodsGone(ctx context.Context, c *diff.Cluster) func(*unstructured.Unstructured) (bool, string) {
	return func(u *unstructured.Unstructured) (bool, string) {
		sel, _, _ := unstructured.NestedStringMap(u.Object, "spec", "selector", "matchLabels")
		if len(sel) == 0 {
			return true, ""
		}
		list, err := c.Dynamic.Resource(podsResource).Namespace(u.GetNamespace()).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(sel).String()})
		if err != nil {
			return false, fmt.Sprintf("listing its pods: %v", err)
		}
		n := 0
		for _, p := range list.Items {
			if p.GetDeletionTimestamp() != nil {
				n++
			}
		}
		if n > 0 {
			return false, fmt.Sprintf("%d old pods still terminating", n)
		}
		return true, ""
	}
}

// waitFor polls each object until done says so, or the timeout passes.
func waitFor(ctx context.Context, what string, objs []*appliedObject, done func(*unstructured.Unstructured) (bool, string), o Options) error {
	deadline := o.Now().Add(o.Timeout)
	pending := objs
	for {
		var still []*appliedObject
		var why []string
		for _, a := range pending {
			cur, err := a.ri.Get(ctx, a.ref.Name, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("waiting for %s: %s: %w", what, a.ref, err)
			}
			if ok, reason := done(cur); !ok {
				still = append(still, a)
				why = append(why, fmt.Sprintf("%s (%s)", a.ref, reason))
			}
		}
		if len(still) == 0 {
			return nil
		}
		if !o.Now().Before(deadline) {
			return &WaitError{What: what, Pending: why}
		}
		if err := o.Sleep(ctx, o.Interval); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		pending = still
	}
}

// established: the CRD's Established condition is True.
func established(u *unstructured.Unstructured) (bool, string) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" {
			if m["status"] == "True" {
				return true, ""
			}
			return false, fmt.Sprintf("Established is %v: %v", m["status"], m["message"])
		}
	}
	return false, "not Established yet"
}

// rolledOut is kubectl rollout status's rule for a Deployment: the controller has seen
// the new generation, every replica is updated, no old one is left, and every updated
// one is available.
func rolledOut(u *unstructured.Unstructured) (bool, string) {
	num := func(path ...string) int64 {
		v, _, _ := unstructured.NestedInt64(u.Object, path...)
		return v
	}
	want := int64(1)
	if v, ok, _ := unstructured.NestedInt64(u.Object, "spec", "replicas"); ok {
		want = v
	}
	updated, replicas, available := num("status", "updatedReplicas"), num("status", "replicas"), num("status", "availableReplicas")
	switch {
	case num("status", "observedGeneration") < u.GetGeneration():
		return false, "the new generation is not observed yet"
	case updated < want:
		return false, fmt.Sprintf("%d of %d replicas updated", updated, want)
	case replicas > updated:
		return false, fmt.Sprintf("%d old replicas pending termination", replicas-updated)
	case available < updated:
		return false, fmt.Sprintf("%d of %d updated replicas available", available, updated)
	}
	return true, ""
}
