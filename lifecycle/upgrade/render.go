package upgrade

import (
	"time"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/checks/preinstall"
	checkupgrade "github.com/meshplane/mesh/checks/upgrade"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
	"github.com/meshplane/mesh/render/values"
)

// Plan is an upgrade's render and the checks to run before applying it.
type Plan struct {
	// Phases are the render's two halves, CRDs first; nil when the render failed
	// because the values set renamed or removed keys (the checks name them).
	Phases    []Phase
	Namespace string // the control plane's
	Checks    []checks.Check
	Warnings  []string // the render's, for stderr
}

// CheckOptions are the upgrade checks' settings besides the render.
type CheckOptions struct {
	Force bool             // allow a downgrade
	Now   func() time.Time // the clock of the clock-skew check
	// Moved is the table of renamed and removed values keys; nil means
	// values.MovedKeys() (tests give their own).
	Moved []values.Moved
	// PodNamespace narrows the proxies checked to one namespace; "" is all (mesh
	// upgrade's).
	PodNamespace string
}

// NewPlan renders the upgrade from the render options and the files they name only,
// never from the cluster, and builds the checks of `mesh check --pre --upgrade`: the
// pre-install checks that apply to an installed cluster (the API, its version, the
// clocks), then checks/upgrade's. r reads the values files, each once. A render that
// fails for any reason but moved values keys is an error.
func NewPlan(c *preinstall.Cluster, render install.Options, r values.Reader, o CheckOptions) (*Plan, error) {
	render.Part, render.Moved = install.All, o.Moved
	r = checkupgrade.OnceReader(r)
	res, sources, err := checkupgrade.Render(render, r)
	if err != nil {
		return nil, err
	}
	p := &Plan{Namespace: render.Namespace}
	var all []manifest.Object
	if res != nil {
		p.Namespace, p.Warnings = res.Namespace, res.Warnings
		// The two halves, as `mesh install crds` and `mesh install control-plane`
		// render them; the CRDs take no values.
		crds, err := install.Render(install.Options{Version: render.Version, Namespace: res.Namespace, Part: install.CRDs, WithoutApplySet: render.WithoutApplySet}, nil)
		if err != nil {
			return nil, err
		}
		cpOpts := render
		cpOpts.Part = install.ControlPlane
		cp, _, err := checkupgrade.Render(cpOpts, r)
		if err != nil {
			return nil, err
		}
		p.Phases = []Phase{{Name: "CRDs", Objects: crds.Objects}, {Name: "control plane", Objects: cp.Objects}}
		all = res.Objects
	}
	if p.Namespace == "" {
		p.Namespace = install.DefaultNamespace
	}
	for _, ch := range preinstall.Suite(c, preinstall.Options{Namespace: p.Namespace, Objects: all, MaxClockSkew: 5 * time.Minute, Now: o.Now}) {
		switch ch.ID {
		case "pre.api", "pre.kubernetes-version", "pre.clock-skew":
			p.Checks = append(p.Checks, ch)
		}
	}
	p.Checks = append(p.Checks, checkupgrade.Suite(&checkupgrade.Cluster{Clientset: c.Clientset, Dynamic: c.Dynamic}, checkupgrade.Options{
		Namespace: p.Namespace, PodNamespace: o.PodNamespace, CLIVersion: render.Version, Objects: all, Sources: sources, Force: o.Force, Moved: o.Moved,
	})...)
	return p, nil
}
