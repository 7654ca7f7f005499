// Package upgrade is `mesh upgrade`: it renders the new install from the values given
// (never from the cluster), runs the upgrade checks (checks/upgrade) against the
// cluster and that render, and applies the render in two phases with server-side
// apply as the field manager mesh: the CRDs first, waited for until Established, then
// the control plane, waited for until its rollouts finish. Deleting what the new
// render dropped is `mesh prune`'s job, never this package's.
package upgrade

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/lifecycle/diff"
	"github.com/meshplane/mesh/render/manifest"
)

// DryRun is how an upgrade applies: for real, not at all (client: the objects are
// listed), or as a server-side dry run (server: the API server validates and admits
// each apply, and persists nothing).
type DryRun string

// Dry-run modes.
const (
	DryRunNone   DryRun = "none"
	DryRunClient DryRun = "client"
	DryRunServer DryRun = "server"
)

// Options of an apply.
type Options struct {
	// FieldManager is the manager of the applies; diff.FieldManager ("mesh") if empty.
	FieldManager string
	// ForceConflicts takes the fields other managers own (kubectl's --force-conflicts);
	// without it a conflict fails the upgrade, naming the manager and the field.
	ForceConflicts bool
	DryRun         DryRun
	// Wait waits for the control plane's rollouts after phase 2 (the CRDs are always
	// waited for: the control plane may need them).
	Wait bool
	// Timeout bounds each wait; DefaultTimeout if 0.
	Timeout time.Duration
	// Interval between polls of a wait; DefaultInterval if 0.
	Interval time.Duration
	// Now and Sleep are the clock (time.Now and a timer if nil).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// Progress receives one line per step and object (stderr); io.Discard if nil.
	Progress io.Writer
}

// Defaults of the waits.
const (
	DefaultTimeout  = 5 * time.Minute
	DefaultInterval = time.Second
)

func (o Options) withDefaults() Options {
	if o.FieldManager == "" {
		o.FieldManager = diff.FieldManager
	}
	if o.DryRun == "" {
		o.DryRun = DryRunNone
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = checks.Sleep
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o
}

// Phase is one half of the render, applied before the next begins.
type Phase struct {
	Name    string // "CRDs", "control plane"
	Objects []manifest.Object
}

// Action is what an apply did to one object.
type Action string

// Actions.
const (
	Created    Action = "created"
	Configured Action = "configured"
	Unchanged  Action = "unchanged"
	Listed     Action = "would be applied" // --dry-run=client
)

// Applied is one object applied.
type Applied struct {
	Phase  string
	Ref    diff.Ref
	Action Action
}

// Report is what an upgrade applied, in order.
type Report struct {
	Applied []Applied
}

// Apply applies the phases in order: each phase's objects in apply order, then its
// wait: CRDs until Established, Deployments until rolled out and their old pods gone
// (with o.Wait). It stops
// at the first error: a *ConflictError, a *diff.InputError (an object the server
// rejects), a *checks.ClusterError, or a *WaitError.
func Apply(ctx context.Context, c *diff.Cluster, phases []Phase, o Options) (*Report, error) {
	o = o.withDefaults()
	rep := &Report{}
	for i, ph := range phases {
		fmt.Fprintf(o.Progress, "Phase %d/%d: %s\n", i+1, len(phases), ph.Name)
		objs, err := diff.FromManifest(ph.Objects)
		if err != nil {
			return rep, &diff.InputError{Err: err}
		}
		var applied []*appliedObject
		for _, obj := range sortObjects(objs) {
			a, err := apply(ctx, c, obj, o)
			if err != nil {
				return rep, err
			}
			rep.Applied = append(rep.Applied, Applied{Phase: ph.Name, Ref: a.ref, Action: a.action})
			fmt.Fprintf(o.Progress, "%s %s\n", a.ref, a.action)
			applied = append(applied, a)
		}
		if o.DryRun != DryRunNone {
			continue
		}
		if err := waitPhase(ctx, c, applied, o); err != nil {
			return rep, err
		}
		// The next phase may use kinds this one added.
		if r, ok := c.Mapper.(interface{ Reset() }); ok {
			r.Reset()
		}
	}
	return rep, nil
}
