package upgrade

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/client-go/kubernetes"

	"github.com/meshplane/mesh/render/inject"
)

// ControlPlaneDeployment is the Deployment whose version is the control plane's: every
// install has it, and its app.kubernetes.io/version label is the chart's mesh version.
const ControlPlaneDeployment = "mesh-identity"

// VersionLabel is the label the chart gives every control-plane object: the mesh version.
const VersionLabel = "app.kubernetes.io/version"

// ErrNoControlPlane is the control plane's version read from a namespace without one.
var ErrNoControlPlane = errors.New("no control plane")

// ControlPlaneVersion reads the live control plane's version in ns: the version label
// of its Deployment, else its controller container's image tag. The error wraps
// ErrNoControlPlane when the Deployment does not exist.
func ControlPlaneVersion(ctx context.Context, cs kubernetes.Interface, ns string) (string, error) {
	d, err := cs.AppsV1().Deployments(ns).Get(ctx, ControlPlaneDeployment, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", fmt.Errorf("%w in namespace %s (no Deployment %s)", ErrNoControlPlane, ns, ControlPlaneDeployment)
	}
	if err != nil {
		return "", fmt.Errorf("reading the control plane's Deployment %s/%s: %w", ns, ControlPlaneDeployment, err)
	}
	if v := d.Labels[VersionLabel]; v != "" {
		return v, nil
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if tag := inject.ImageTag(c.Image); tag != "" {
			return tag, nil
		}
	}
	return "", nil
}

// ProxyVersion is the version of a pod's proxy and whether the pod is meshed (has the
// mesh-proxy container, as a native sidecar or a container): the
// meshplane.io/proxy-version annotation that inject writes, else the proxy image's tag.
func ProxyVersion(pod *corev1.Pod) (string, bool) {
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			if c.Name != inject.ProxyContainer {
				continue
			}
			if v := pod.Annotations[inject.ProxyVersion]; v != "" {
				return v, true
			}
			return inject.ImageTag(c.Image), true
		}
	}
	return "", false
}

// Parse reads a release version ("1.4.2", "v1.4.2", "1.5.0-rc.1"); nil for a
// development build ("dev", "", or anything without major.minor).
func Parse(v string) *version.Version {
	p, err := version.ParseGeneric(v)
	if err != nil {
		return nil
	}
	return p
}

// Skew is how a component's version stands to the version of the CLI doing the
// upgrade, by the rules of docs/lifecycle.md ("Version skew").
type Skew int

// Skews.
const (
	InSkew      Skew = iota // allowed
	Dev                     // a development build on either side: unknown, a warning
	Newer                   // newer than the CLI: a downgrade, refused unless forced
	TooOld                  // more than MaxMinorSkew minors behind the CLI, or another major
	InSkewForce             // newer than the CLI, allowed by --force
)

// MaxMinorSkew is how many minors a component may be behind the CLI doing the upgrade:
// the control plane (the CLI is at most one minor ahead), and the proxies (they may lag
// the new control plane, which runs the CLI's version, by one minor).
const MaxMinorSkew = 1

// Compare applies the skew rules to a component at v, upgraded by a CLI at cli.
func Compare(cli, v string, force bool) Skew {
	c, p := Parse(cli), Parse(v)
	switch {
	case c == nil || p == nil:
		return Dev
	case p.Major() != c.Major():
		if p.Major() > c.Major() {
			return newer(force)
		}
		return TooOld
	case p.Minor() > c.Minor():
		return newer(force)
	case p.Minor() == c.Minor():
		if c.LessThan(p) {
			return newer(force) // a patch downgrade is still a downgrade
		}
		return InSkew
	case c.Minor()-p.Minor() > MaxMinorSkew:
		return TooOld
	}
	return InSkew
}

func newer(force bool) Skew {
	if force {
		return InSkewForce
	}
	return Newer
}
