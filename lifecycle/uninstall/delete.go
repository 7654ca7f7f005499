package uninstall

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// pollInterval is how often Delete looks whether a phase's objects are gone.
const pollInterval = 200 * time.Millisecond

// Result is what Delete did: the objects it deleted (or found gone), in order.
type Result struct {
	Deleted []Ref `json:"deleted"`
}

// TimeoutError is a phase whose objects were not all gone in time: each one left, with
// what holds it (its finalizers; a namespace's remaining content and finalizers).
type TimeoutError struct {
	Phase   Phase
	Timeout time.Duration
	Blocked []Left
}

func (e *TimeoutError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "timed out after %s waiting for the %s to be gone:", e.Timeout, e.Phase)
	for _, l := range e.Blocked {
		fmt.Fprintf(&b, "\n  %s: %s", l.Ref, l.Reason)
	}
	return b.String()
}

// Delete deletes the plan's objects phase by phase, with foreground propagation (an
// object is gone once its dependents are) and its UID as a precondition (an object
// recreated since the plan is someone else's: left alone), and waits for each phase's
// objects to be gone before the next. The whole run is bounded by o.Timeout; a phase
// not gone in time is a *TimeoutError naming what blocks it. What was deleted before
// an error is in the result.
func Delete(ctx context.Context, c *Cluster, p *Plan, o Options) (*Result, error) {
	clk := o.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	deadline := clk.Now().Add(timeout)
	res := &Result{Deleted: []Ref{}}
	for start := 0; start < len(p.Delete); {
		phase := p.Delete[start].Phase()
		end := start
		for end < len(p.Delete) && p.Delete[end].Phase() == phase {
			end++
		}
		var wait []Ref
		for _, r := range p.Delete[start:end] {
			gone, err := deleteOne(ctx, c, r)
			if err != nil {
				return res, err
			}
			res.Deleted = append(res.Deleted, r)
			if o.Progress != nil {
				o.Progress(Event{Phase: phase, Ref: &r})
			}
			if !gone {
				wait = append(wait, r)
			}
		}
		if err := waitGone(ctx, c, clk, deadline, timeout, phase, wait); err != nil {
			return res, err
		}
		if o.Progress != nil {
			o.Progress(Event{Phase: phase, Done: true})
		}
		start = end
	}
	return res, nil
}

// deleteOne deletes r; gone tells that there is nothing to wait for (already gone, or
// recreated by someone else since the plan).
func deleteOne(ctx context.Context, c *Cluster, r Ref) (gone bool, err error) {
	m, err := mapping(c.Mapper, r.APIVersion, r.Kind)
	if err != nil {
		return false, fmt.Errorf("deleting %s: %w", r, err)
	}
	fg := metav1.DeletePropagationForeground
	opts := metav1.DeleteOptions{PropagationPolicy: &fg}
	if r.UID != "" {
		uid := types.UID(r.UID)
		opts.Preconditions = &metav1.Preconditions{UID: &uid}
	}
	err = c.Dynamic.Resource(m.Resource).Namespace(r.Namespace).Delete(ctx, r.Name, opts)
	switch {
	case apierrors.IsNotFound(err), apierrors.IsConflict(err): // gone, or another object now
		return true, nil
	case err != nil:
		return false, fmt.Errorf("deleting %s: %w", r, err)
	}
	return false, nil
}

// waitGone polls until every ref is gone (or is another object), or the deadline.
func waitGone(ctx context.Context, c *Cluster, clk clock.Clock, deadline time.Time, timeout time.Duration, phase Phase, refs []Ref) error {
	for {
		var left []*unstructured.Unstructured
		var leftRefs []Ref
		for _, r := range refs {
			live, err := get(ctx, c, r)
			if err != nil {
				return err
			}
			if live != nil {
				left, leftRefs = append(left, live), append(leftRefs, r)
			}
		}
		if len(left) == 0 {
			return nil
		}
		refs = leftRefs
		if !clk.Now().Before(deadline) {
			e := &TimeoutError{Phase: phase, Timeout: timeout}
			for i, u := range left {
				e.Blocked = append(e.Blocked, Left{Ref: leftRefs[i], Reason: blockers(u)})
			}
			return e
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the %s to be gone: %w", phase, ctx.Err())
		case <-clk.After(pollInterval):
		}
	}
}

// get reads r; nil when it is gone or is another object (another UID).
func get(ctx context.Context, c *Cluster, r Ref) (*unstructured.Unstructured, error) {
	m, err := mapping(c.Mapper, r.APIVersion, r.Kind)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", r, err)
	}
	live, err := c.Dynamic.Resource(m.Resource).Namespace(r.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", r, err)
	}
	if r.UID != "" && string(live.GetUID()) != r.UID {
		return nil, nil
	}
	return live, nil
}

// blockers says what keeps an object from going: for a namespace, the conditions the
// namespace controller sets (content and finalizers remaining, failures) and its
// spec.finalizers; for any object, its metadata.finalizers.
func blockers(u *unstructured.Unstructured) string {
	var why []string
	if u.GetDeletionTimestamp() == nil {
		why = append(why, "not being deleted")
	}
	if u.GetKind() == "Namespace" {
		phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
		if phase != "" {
			why = append(why, "phase "+phase)
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			cm, _ := c.(map[string]any)
			if cm["status"] == "True" {
				why = append(why, fmt.Sprintf("%v: %v", cm["type"], cm["message"]))
			}
		}
		fins, _, _ := unstructured.NestedStringSlice(u.Object, "spec", "finalizers")
		if len(fins) > 0 {
			why = append(why, "spec.finalizers "+strings.Join(fins, ", "))
		}
	}
	if fins := u.GetFinalizers(); len(fins) > 0 {
		why = append(why, "finalizers "+strings.Join(fins, ", "))
	}
	if len(why) == 0 {
		return "still there"
	}
	return strings.Join(why, "; ")
}
