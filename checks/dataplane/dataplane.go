// Package dataplane is `mesh check --proxy`: the meshed pods of a namespace (or all)
// have ready proxies of the control plane's version, whose certificates chain to the
// current trust anchors.
package dataplane

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/render/inject"
)

// Options of the suite.
type Options struct {
	Namespace             string // of the pods; "" for all
	ControlPlaneNamespace string
	CLIVersion            string // the version to expect when no control plane is found
}

const hint = "https://meshplane.io/docs/checks#"

func check(id, desc string, retry bool, run func(context.Context) error, deps ...string) checks.Check {
	return checks.Check{ID: id, Category: "data-plane", Description: desc, Hint: hint + id, Severity: checks.Error, Retry: retry, DependsOn: deps, Run: run}
}

// proxy is a meshed pod's proxy container and its status.
type proxy struct {
	pod       *corev1.Pod
	container corev1.Container
	status    *corev1.ContainerStatus
}

func meshed(ctx context.Context, cs kubernetes.Interface, ns string) ([]proxy, error) {
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []proxy
	for i := range pods.Items {
		p := &pods.Items[i]
		for _, list := range []struct {
			specs    []corev1.Container
			statuses []corev1.ContainerStatus
		}{{p.Spec.InitContainers, p.Status.InitContainerStatuses}, {p.Spec.Containers, p.Status.ContainerStatuses}} {
			for _, c := range list.specs {
				if c.Name != inject.ProxyContainer {
					continue
				}
				px := proxy{pod: p, container: c}
				for j := range list.statuses {
					if list.statuses[j].Name == c.Name {
						px.status = &list.statuses[j]
					}
				}
				out = append(out, px)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].pod.Namespace+"/"+out[i].pod.Name < out[j].pod.Namespace+"/"+out[j].pod.Name
	})
	return out, nil
}

// meshedOrSkip lists the meshed pods, skipping the check when there are none.
func meshedOrSkip(ctx context.Context, cs kubernetes.Interface, ns string) ([]proxy, error) {
	ps, err := meshed(ctx, cs, ns)
	if err == nil && len(ps) == 0 {
		err = checks.Skip("no meshed pods")
	}
	return ps, err
}

// Suite is the data-plane checks.
func Suite(cs kubernetes.Interface, o Options) []checks.Check {
	where := "namespace " + o.Namespace
	if o.Namespace == "" {
		where = "all namespaces"
	}
	return []checks.Check{
		check("proxy.meshed-pods", "there are meshed pods in "+where, false, func(ctx context.Context) error {
			ps, err := meshed(ctx, cs, o.Namespace)
			if err != nil {
				return err
			}
			if len(ps) == 0 {
				return checks.Skip("no pod with the " + inject.ProxyContainer + " container in " + where)
			}
			return nil
		}),
		check("proxy.injected", "every pod meant to be meshed has a proxy", false, func(ctx context.Context) error {
			return uninjected(ctx, cs, o)
		}),
		check("proxy.ready", "every proxy is ready", true, func(ctx context.Context) error {
			ps, err := meshedOrSkip(ctx, cs, o.Namespace)
			if err != nil {
				return err
			}
			var p []string
			for _, px := range ps {
				if px.status == nil || !px.status.Ready {
					p = append(p, checks.ObjectName("Pod", px.pod.Namespace, px.pod.Name))
				}
			}
			if len(p) > 0 {
				return fmt.Errorf("proxies not ready: %s", strings.Join(p, ", "))
			}
			return nil
		}, "proxy.meshed-pods"),
		check("proxy.version", "every proxy runs the control plane's version", false, func(ctx context.Context) error {
			want, from := o.CLIVersion, "this CLI"
			d, err := cs.AppsV1().Deployments(o.ControlPlaneNamespace).Get(ctx, "mesh-identity", metav1.GetOptions{})
			switch {
			case err == nil && d.Labels["app.kubernetes.io/version"] != "":
				want, from = d.Labels["app.kubernetes.io/version"], "the control plane"
			case err != nil && !apierrors.IsNotFound(err):
				return err
			}
			ps, err := meshedOrSkip(ctx, cs, o.Namespace)
			if err != nil {
				return err
			}
			var p []string
			for _, px := range ps {
				got := px.pod.Annotations[inject.ProxyVersion]
				if got == "" {
					got = inject.ImageTag(px.container.Image)
				}
				if got != want {
					p = append(p, fmt.Sprintf("%s runs %s", checks.ObjectName("Pod", px.pod.Namespace, px.pod.Name), got))
				}
			}
			if len(p) > 0 {
				return fmt.Errorf("%s is %s; %s", from, want, strings.Join(p, ", "))
			}
			return nil
		}, "proxy.meshed-pods"),
		check("proxy.certificates", "every proxy's certificate chains to the current trust anchors", true, func(ctx context.Context) error {
			return certificates(ctx, cs, o)
		}, "proxy.ready"),
	}
}

// uninjected fails for running pods that the injector should have meshed (annotated,
// or in an annotated namespace, and not opted out or on the host network) but that
// have no proxy: created while the injector was unreachable and its failurePolicy
// Ignore let them through, or created before the annotation was set.
func uninjected(ctx context.Context, cs kubernetes.Interface, o Options) error {
	nsAnnotated := map[string]bool{}
	if o.Namespace != "" {
		ns, err := cs.CoreV1().Namespaces().Get(ctx, o.Namespace, metav1.GetOptions{})
		if err != nil {
			return err
		}
		nsAnnotated[ns.Name] = ns.Annotations[inject.InjectAnnotation] == inject.Enabled
	} else {
		list, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, ns := range list.Items {
			nsAnnotated[ns.Name] = ns.Annotations[inject.InjectAnnotation] == inject.Enabled
		}
	}
	pods, err := cs.CoreV1().Pods(o.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var p []string
	wanted := 0
	for _, pod := range pods.Items {
		ann := pod.Annotations[inject.InjectAnnotation]
		want := ann == inject.Enabled || nsAnnotated[pod.Namespace] && ann != inject.Disabled
		if !want || pod.Namespace == o.ControlPlaneNamespace || pod.Spec.HostNetwork ||
			pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		wanted++
		has := false
		for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
			has = has || c.Name == inject.ProxyContainer
		}
		if !has {
			p = append(p, checks.ObjectName("Pod", pod.Namespace, pod.Name))
		}
	}
	if wanted == 0 {
		return checks.Skip("no pod is meant to be meshed")
	}
	if len(p) > 0 {
		sort.Strings(p)
		return fmt.Errorf("pods without a proxy although %s is enabled for them (made while the injector was unreachable, or before the annotation; restart their workloads): %s",
			inject.InjectAnnotation, strings.Join(p, ", "))
	}
	return nil
}
