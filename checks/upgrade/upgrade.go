// Package upgrade is `mesh check --pre --upgrade`: before an upgrade, it checks the
// live cluster against the new render. The versions of the CLI doing the upgrade, the
// control plane and every proxy are within the skew rules (docs/lifecycle.md,
// "Version skew"); every version of a mesh CRD that the cluster still stores objects
// at is served by the new render's CRD; and the values set no renamed or removed key.
package upgrade

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/render/manifest"
	"github.com/meshplane/mesh/render/values"
)

// Cluster is what the suite needs from the cluster.
type Cluster struct {
	Clientset kubernetes.Interface
	Dynamic   dynamic.Interface
}

// Options of the suite.
type Options struct {
	Namespace    string // the control plane's
	PodNamespace string // of the meshed pods whose proxies are checked; "" for all
	// CLIVersion is the version of the CLI doing the upgrade: the version the new
	// render's control plane runs.
	CLIVersion string
	// Objects is the new render; nil when it could not be rendered because the values
	// set moved keys (the values check says which).
	Objects []manifest.Object
	// Sources are the values sources of the new render, checked for moved keys.
	Sources []values.Source
	// Moved is the table of renamed and removed keys; nil means values.MovedKeys().
	Moved []values.Moved
	// Force allows a downgrade: components newer than the CLI.
	Force bool
}

const hint = "https://meshplane.io/docs/lifecycle#"

func check(id, desc, anchor string, sev checks.Severity, run func(context.Context) error, deps ...string) checks.Check {
	return checks.Check{ID: id, Category: "upgrade", Description: desc, Hint: hint + anchor, Severity: sev, DependsOn: deps, Run: run}
}

// Check IDs.
const (
	IDControlPlane   = "upgrade.control-plane"
	IDControlSkew    = "upgrade.control-plane-skew"
	IDProxySkew      = "upgrade.proxy-skew"
	IDDevVersions    = "upgrade.dev-versions"
	IDValuesKeys     = "upgrade.values-keys"
	IDStoredVersions = "upgrade.crd-stored-versions"
)

// Suite is the upgrade checks.
func Suite(c *Cluster, o Options) []checks.Check {
	moved := o.Moved
	if moved == nil {
		moved = values.MovedKeys()
	}
	cpVersion := func(ctx context.Context) (string, error) {
		return ControlPlaneVersion(ctx, c.Clientset, o.Namespace)
	}
	return []checks.Check{
		check(IDControlPlane, "a control plane is installed in "+o.Namespace, "upgrade", checks.Error, func(ctx context.Context) error {
			_, err := cpVersion(ctx)
			if errors.Is(err, ErrNoControlPlane) {
				return fmt.Errorf("%w: nothing to upgrade; install with mesh install, or pass the control plane's namespace with -n", err)
			}
			return err
		}),
		check(IDControlSkew, fmt.Sprintf("this CLI (%s) is at most one minor ahead of the control plane, and not behind it", o.CLIVersion), "version-skew", checks.Error, func(ctx context.Context) error {
			v, err := cpVersion(ctx)
			if err != nil {
				return err
			}
			where := fmt.Sprintf("the control plane (Deployment/%s/%s) runs %s", o.Namespace, ControlPlaneDeployment, orNone(v))
			switch Compare(o.CLIVersion, v, o.Force) {
			case Dev:
				return checks.Skip(where + ", this CLI " + orNone(o.CLIVersion) + ": a development build, the skew is unknown")
			case Newer:
				return fmt.Errorf("%s, newer than this CLI (%s): a downgrade; use the CLI of %s, or pass --force", where, o.CLIVersion, v)
			case TooOld:
				return fmt.Errorf("%s, more than one minor behind this CLI (%s): upgrade one minor at a time, with the CLI of each minor in between", where, o.CLIVersion)
			}
			return nil
		}, IDControlPlane),
		check(IDProxySkew, fmt.Sprintf("every proxy is at most one minor behind the new control plane (%s), and not newer", o.CLIVersion), "version-skew", checks.Error, func(ctx context.Context) error {
			return proxySkew(ctx, c, o)
		}),
		check(IDDevVersions, "no component is a development build", "version-skew", checks.Warning, func(ctx context.Context) error {
			return devVersions(ctx, c, o)
		}),
		check(IDValuesKeys, "the values set no renamed or removed key", "renamed-and-removed-values-keys", checks.Error, func(context.Context) error {
			var p []string
			for _, src := range o.Sources {
				for _, m := range values.FindMoved(src, moved) {
					p = append(p, fmt.Sprintf("%s: %s: %s", src.Name, m.Key, m.Message))
				}
			}
			if len(p) > 0 {
				return errors.New(strings.Join(p, "; "))
			}
			return nil
		}),
		check(IDStoredVersions, "every version the cluster stores mesh's custom resources at is served by the new CRDs", "crd-stored-versions", checks.Error, func(ctx context.Context) error {
			if o.Objects == nil {
				return checks.Skip("no render")
			}
			return storedVersions(ctx, c, o.Objects)
		}, IDValuesKeys),
	}
}

func orNone(v string) string {
	if v == "" {
		return `"" (no version)`
	}
	return v
}

// meshedPods lists the meshed pods of o.PodNamespace (one LIST) with their proxies'
// versions, by Pod/namespace/name.
func meshedPods(ctx context.Context, c *Cluster, o Options) (map[string]string, error) {
	pods, err := c.Clientset.CoreV1().Pods(o.PodNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	out := map[string]string{}
	for i := range pods.Items {
		p := &pods.Items[i]
		if v, ok := ProxyVersion(p); ok {
			out[checks.ObjectName("Pod", p.Namespace, p.Name)] = v
		}
	}
	return out, nil
}

func proxySkew(ctx context.Context, c *Cluster, o Options) error {
	pods, err := meshedPods(ctx, c, o)
	if err != nil {
		return err
	}
	if len(pods) == 0 {
		return checks.Skip("no meshed pods")
	}
	var newer, old []string
	for _, name := range sortedKeys(pods) {
		v := pods[name]
		switch Compare(o.CLIVersion, v, o.Force) {
		case Newer:
			newer = append(newer, name+" runs "+v)
		case TooOld:
			old = append(old, name+" runs "+v)
		}
	}
	var p []string
	if len(newer) > 0 {
		p = append(p, fmt.Sprintf("proxies newer than this CLI (%s), a downgrade (pass --force): %s", o.CLIVersion, strings.Join(newer, ", ")))
	}
	if len(old) > 0 {
		p = append(p, fmt.Sprintf("proxies more than one minor behind %s: %s; restart their workloads on the current control plane first (kubectl rollout restart)", o.CLIVersion, strings.Join(old, ", ")))
	}
	if len(p) > 0 {
		return errors.New(strings.Join(p, "; "))
	}
	return nil
}

func devVersions(ctx context.Context, c *Cluster, o Options) error {
	var dev []string
	if Parse(o.CLIVersion) == nil {
		dev = append(dev, "this CLI runs "+orNone(o.CLIVersion))
	}
	v, err := ControlPlaneVersion(ctx, c.Clientset, o.Namespace)
	switch {
	case errors.Is(err, ErrNoControlPlane):
	case err != nil:
		return err
	case Parse(v) == nil:
		dev = append(dev, fmt.Sprintf("the control plane runs %s", orNone(v)))
	}
	pods, err := meshedPods(ctx, c, o)
	if err != nil {
		return err
	}
	for _, name := range sortedKeys(pods) {
		if Parse(pods[name]) == nil {
			dev = append(dev, name+" runs "+orNone(pods[name]))
		}
	}
	if len(dev) > 0 {
		return fmt.Errorf("development builds, whose skew cannot be checked: %s", strings.Join(dev, ", "))
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
