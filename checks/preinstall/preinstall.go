// Package preinstall is `mesh check --pre`: before installing, it checks against the
// cluster that the install can work: the API is reachable and of a supported version,
// the user may create everything the install holds, nothing of mesh's is in the way,
// and the clocks agree.
package preinstall

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/render/manifest"
)

// Supported Kubernetes versions: native sidecars need 1.29.
const (
	MinVersion = "1.29.0"
	MaxVersion = "1.37.99"
)

// Cluster is what the suite needs from the cluster.
type Cluster struct {
	Config    *rest.Config
	Clientset kubernetes.Interface
	Dynamic   dynamic.Interface
}

// NewCluster builds the clients from a REST config.
func NewCluster(cfg *rest.Config) (*Cluster, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Cluster{Config: cfg, Clientset: cs, Dynamic: dyn}, nil
}

// Options of the suite.
type Options struct {
	Namespace    string            // the control plane's
	Objects      []manifest.Object // what the install will create (mesh install output)
	MaxClockSkew time.Duration
	Now          func() time.Time
}

const hint = "https://meshplane.io/docs/checks#"

func check(id, desc string, sev checks.Severity, run func(context.Context) error, deps ...string) checks.Check {
	return checks.Check{ID: id, Category: "pre-install", Description: desc, Hint: hint + id, Severity: sev, DependsOn: deps, Run: run}
}

// Suite is the pre-install checks.
func Suite(c *Cluster, o Options) []checks.Check {
	disc := c.Clientset.Discovery()
	return []checks.Check{
		check("pre.api", "the Kubernetes API is reachable", checks.Error, func(ctx context.Context) error {
			_, err := disc.ServerVersion()
			return err
		}),
		check("pre.kubernetes-version", fmt.Sprintf("the Kubernetes version is supported (%s to %s)", strings.TrimSuffix(MinVersion, ".0"), strings.TrimSuffix(MaxVersion, ".99")), checks.Error, func(ctx context.Context) error {
			info, err := disc.ServerVersion()
			if err != nil {
				return err
			}
			v, err := version.ParseGeneric(info.GitVersion)
			if err != nil {
				return fmt.Errorf("server version %q: %w", info.GitVersion, err)
			}
			if v.LessThan(version.MustParseGeneric(MinVersion)) || !v.LessThan(version.MustParseGeneric(MaxVersion)) {
				return fmt.Errorf("the server runs Kubernetes %s", info.GitVersion)
			}
			return nil
		}, "pre.api"),
		check("pre.permissions", "you may create everything the install holds", checks.Error, func(ctx context.Context) error {
			return permissions(ctx, c, o)
		}, "pre.api"),
		check("pre.no-namespace", fmt.Sprintf("the namespace %s does not exist yet", o.Namespace), checks.Error, func(ctx context.Context) error {
			_, err := c.Clientset.CoreV1().Namespaces().Get(ctx, o.Namespace, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				return nil
			case err != nil:
				return err
			}
			return fmt.Errorf("namespace %s exists: mesh is installed already, or something else uses it; install into another namespace with -n", o.Namespace)
		}, "pre.api"),
		check("pre.no-conflicting-crds", "no other CRD uses mesh's names", checks.Error, func(ctx context.Context) error {
			return conflictingCRDs(ctx, c, o)
		}, "pre.api"),
		check("pre.clock-skew", fmt.Sprintf("the cluster's clock is within %s of this machine's", o.MaxClockSkew), checks.Warning, func(ctx context.Context) error {
			return clockSkew(ctx, c, o)
		}, "pre.api"),
	}
}

// permissions asks the API server (SelfSubjectAccessReview) whether the user may
// create each kind of object the install holds, where it goes.
func permissions(ctx context.Context, c *Cluster, o Options) error {
	groups, err := restmapper.GetAPIGroupResources(c.Clientset.Discovery())
	if err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	type target struct{ group, resource, namespace string }
	seen := map[target]bool{}
	var denied []string
	for _, obj := range o.Objects {
		gv, err := schema.ParseGroupVersion(obj.APIVersion)
		if err != nil {
			return fmt.Errorf("%s: %w", obj, err)
		}
		m, err := mapper.RESTMapping(gv.WithKind(obj.Kind).GroupKind(), gv.Version)
		if err != nil {
			var nm *meta.NoKindMatchError
			if errors.As(err, &nm) {
				// A kind the cluster does not serve yet (cert-manager's, or mesh's own
				// CRDs' resources): the CRDs come first in the install.
				continue
			}
			return err
		}
		ns := obj.Namespace
		if m.Scope.Name() == meta.RESTScopeNameNamespace && ns == "" {
			ns = o.Namespace
		}
		t := target{m.Resource.Group, m.Resource.Resource, ns}
		if seen[t] {
			continue
		}
		seen[t] = true
		review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "create", Group: t.group, Resource: t.resource, Namespace: ns},
		}}
		res, err := c.Clientset.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("access review: %w", err)
		}
		if !res.Status.Allowed {
			where := "cluster-wide"
			if ns != "" {
				where = "in namespace " + ns
			}
			res := t.resource
			if t.group != "" {
				res += "." + t.group
			}
			denied = append(denied, fmt.Sprintf("create %s %s", res, where))
		}
	}
	if len(denied) > 0 {
		sort.Strings(denied)
		return fmt.Errorf("you may not: %s", strings.Join(denied, "; "))
	}
	return nil
}

// conflictingCRDs fails for a CRD the install holds that exists without mesh's label.
func conflictingCRDs(ctx context.Context, c *Cluster, o Options) error {
	gvr := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	var bad []string
	for _, obj := range o.Objects {
		if obj.Kind != "CustomResourceDefinition" {
			continue
		}
		got, err := c.Dynamic.Resource(gvr).Get(ctx, obj.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		if got.GetLabels()["app.kubernetes.io/part-of"] != "mesh" {
			bad = append(bad, obj.String())
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("CRDs not installed by mesh already exist: %s", strings.Join(bad, ", "))
	}
	return nil
}

// clockSkew compares the API server's Date header with the local clock.
func clockSkew(ctx context.Context, c *Cluster, o Options) error {
	tr, err := rest.TransportFor(c.Config)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.Config.Host, "/")+"/version", nil)
	if err != nil {
		return err
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	date := resp.Header.Get("Date")
	server, err := http.ParseTime(date)
	if err != nil {
		return fmt.Errorf("the API server sent no usable Date header (%q)", date)
	}
	skew := o.Now().Sub(server)
	if skew < 0 {
		skew = -skew
	}
	if skew > o.MaxClockSkew {
		return fmt.Errorf("this machine's clock and the API server's differ by %s", skew.Round(time.Second))
	}
	return nil
}
