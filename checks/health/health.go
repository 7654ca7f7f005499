// Package health is `mesh check` against an installed mesh: the CRDs and control-plane
// objects exist and are of this CLI's version, the Deployments are available, the
// webhook trusts the injector's serving certificate, the identity issuer is valid for
// long enough, and the injector really injects.
package health

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/render/identity"
	"github.com/meshplane/mesh/render/inject"
	"github.com/meshplane/mesh/render/manifest"
)

// Cluster is what the suite needs from the cluster.
type Cluster struct {
	Clientset kubernetes.Interface
	Dynamic   dynamic.Interface
}

// Options of the suite.
type Options struct {
	Namespace       string            // the control plane's
	Version         string            // this CLI's: what the cluster should run
	Objects         []manifest.Object // what this CLI installs
	MinCertValidity time.Duration
	Now             func() time.Time
}

const hint = "https://meshplane.io/docs/checks#"

func check(id, desc string, retry bool, run func(context.Context) error, deps ...string) checks.Check {
	return checks.Check{ID: id, Category: "health", Description: desc, Hint: hint + id, Severity: checks.Error, Retry: retry, DependsOn: deps, Run: run}
}

// Suite is the health checks.
func Suite(c *Cluster, o Options) []checks.Check {
	return []checks.Check{
		check("health.objects", "the CRDs and control-plane objects exist, of this CLI's version", false, func(ctx context.Context) error {
			return objects(ctx, c, o)
		}),
		check("health.deployments", "the control-plane Deployments are available", true, func(ctx context.Context) error {
			var p []string
			for _, name := range []string{"mesh-destination", "mesh-identity", "mesh-injector"} {
				d, err := c.Clientset.AppsV1().Deployments(o.Namespace).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				want := int32(1)
				if d.Spec.Replicas != nil {
					want = *d.Spec.Replicas
				}
				if d.Status.AvailableReplicas < want {
					p = append(p, fmt.Sprintf("%s: %d of %d replicas available", name, d.Status.AvailableReplicas, want))
				}
			}
			if len(p) > 0 {
				return fmt.Errorf("%s", strings.Join(p, "; "))
			}
			return nil
		}, "health.objects"),
		check("health.webhook-ca", "the injector webhook trusts the injector's serving certificate", true, func(ctx context.Context) error {
			return webhookCA(ctx, c, o)
		}, "health.objects"),
		check("health.identity-issuer", "the identity issuer is valid for long enough", true, func(ctx context.Context) error {
			return issuer(ctx, c, o)
		}, "health.objects"),
		check("health.injector", "the injector adds the proxy to a new meshed pod (server-side dry run)", true, func(ctx context.Context) error {
			return injects(ctx, c, o)
		}, "health.deployments", "health.webhook-ca"),
	}
}

func objects(ctx context.Context, c *Cluster, o Options) error {
	groups, err := restmapper.GetAPIGroupResources(c.Clientset.Discovery())
	if err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	var missing, stale []string
	for _, obj := range o.Objects {
		gv, err := schema.ParseGroupVersion(obj.APIVersion)
		if err != nil {
			return err
		}
		m, err := mapper.RESTMapping(gv.WithKind(obj.Kind).GroupKind(), gv.Version)
		if err != nil {
			if meta.IsNoMatchError(err) {
				missing = append(missing, obj.String()+" (its kind is not served)")
				continue
			}
			return err
		}
		var ri dynamic.ResourceInterface = c.Dynamic.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = c.Dynamic.Resource(m.Resource).Namespace(obj.Namespace)
		}
		got, err := ri.Get(ctx, obj.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			missing = append(missing, obj.String())
			continue
		}
		if err != nil {
			return err
		}
		if v := got.GetLabels()["app.kubernetes.io/version"]; v != "" && v != o.Version {
			stale = append(stale, fmt.Sprintf("%s is %s", obj, v))
		}
	}
	var p []string
	if len(missing) > 0 {
		p = append(p, "missing: "+strings.Join(missing, ", "))
	}
	if len(stale) > 0 {
		sort.Strings(stale)
		p = append(p, fmt.Sprintf("not of this CLI's version %s: %s", o.Version, strings.Join(stale, ", ")))
	}
	if len(p) > 0 {
		return fmt.Errorf("%s", strings.Join(p, "; "))
	}
	return nil
}

// webhookName is the injector's MutatingWebhookConfiguration: the one this CLI installs.
func webhookName(o Options) string {
	for _, obj := range o.Objects {
		if obj.Kind == "MutatingWebhookConfiguration" {
			return obj.Name
		}
	}
	return "mesh-proxy-injector"
}

func webhook(ctx context.Context, c *Cluster, o Options) (*admissionregistrationv1.MutatingWebhookConfiguration, error) {
	wh, err := c.Clientset.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, webhookName(o), metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if len(wh.Webhooks) == 0 {
		return nil, fmt.Errorf("%s has no webhook", checks.ObjectName("MutatingWebhookConfiguration", "", wh.Name))
	}
	return wh, nil
}

// serverName is the name the API server checks the webhook's certificate for: the
// host of its URL, or its Service's DNS name.
func serverName(cc admissionregistrationv1.WebhookClientConfig) (string, error) {
	if cc.URL != nil {
		u, err := url.Parse(*cc.URL)
		if err != nil || u.Hostname() == "" {
			return "", fmt.Errorf("the webhook's url %q has no host", *cc.URL)
		}
		return u.Hostname(), nil
	}
	if cc.Service == nil {
		return "", fmt.Errorf("the webhook has neither a url nor a service")
	}
	return cc.Service.Name + "." + cc.Service.Namespace + ".svc", nil
}

// webhookCA: each webhook's caBundle verifies the serving certificate in the injector's
// Secret, for the name the API server calls it by.
func webhookCA(ctx context.Context, c *Cluster, o Options) error {
	wh, err := webhook(ctx, c, o)
	if err != nil {
		return err
	}
	for _, w := range wh.Webhooks {
		if len(w.ClientConfig.CABundle) == 0 {
			return fmt.Errorf("webhook %s has no caBundle yet: the injector (or cert-manager) fills it in once it runs", w.Name)
		}
	}
	secret, err := c.Clientset.CoreV1().Secrets(o.Namespace).Get(ctx, "mesh-injector-tls", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("the injector's serving certificate %s: %w", checks.ObjectName("Secret", o.Namespace, "mesh-injector-tls"), err)
	}
	chain, err := identity.ParseCertificates(checks.ObjectName("Secret", o.Namespace, "mesh-injector-tls")+" tls.crt", secret.Data[corev1.TLSCertKey])
	if err != nil {
		return err
	}
	inter := x509.NewCertPool()
	for _, ic := range chain[1:] {
		inter.AddCert(ic)
	}
	for _, w := range wh.Webhooks {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(w.ClientConfig.CABundle) {
			return fmt.Errorf("webhook %s: the caBundle holds no PEM certificate", w.Name)
		}
		name, err := serverName(w.ClientConfig)
		if err != nil {
			return fmt.Errorf("webhook %s: %w", w.Name, err)
		}
		_, err = chain[0].Verify(x509.VerifyOptions{
			Roots: pool, Intermediates: inter, DNSName: name, CurrentTime: o.Now(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		if err != nil {
			return fmt.Errorf("webhook %s: the caBundle does not verify the injector's certificate for %s: %w", w.Name, name, err)
		}
	}
	return nil
}

func issuer(ctx context.Context, c *Cluster, o Options) error {
	secret, err := c.Clientset.CoreV1().Secrets(o.Namespace).Get(ctx, "mesh-identity-issuer", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("the issuer %s does not exist yet (the identity controller creates it in bootstrap mode)", checks.ObjectName("Secret", o.Namespace, "mesh-identity-issuer"))
	}
	if err != nil {
		return err
	}
	chain, err := identity.ParseCertificates(checks.ObjectName("Secret", o.Namespace, "mesh-identity-issuer")+" tls.crt", secret.Data[corev1.TLSCertKey])
	if err != nil {
		return err
	}
	anchors, err := identity.ParseCertificates(checks.ObjectName("Secret", o.Namespace, "mesh-identity-issuer")+" ca.crt", secret.Data["ca.crt"])
	if err != nil {
		return err
	}
	if err := identity.CheckIssuer(anchors, chain); err != nil {
		return err
	}
	now := o.Now()
	for _, c := range append([]*x509.Certificate{chain[0]}, anchors...) {
		if !now.Before(c.NotAfter) {
			return fmt.Errorf("%s expired on %s", c.Subject, c.NotAfter.UTC().Format(time.RFC3339))
		}
		if c.NotAfter.Sub(now) < o.MinCertValidity {
			return fmt.Errorf("%s expires on %s, in less than %s", c.Subject, c.NotAfter.UTC().Format(time.RFC3339), o.MinCertValidity)
		}
	}
	return nil
}

// injects creates a meshed pod with a server-side dry run, in a namespace the webhook
// selects, and looks for the proxy. The pod must come back with it: with failurePolicy
// Ignore an unreachable injector admits the pod unchanged.
func injects(ctx context.Context, c *Cluster, o Options) error {
	wh, err := webhook(ctx, c, o)
	if err != nil {
		return err
	}
	ns, err := selectedNamespace(ctx, c, wh.Webhooks[0])
	if err != nil {
		return err
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "mesh-check-", Namespace: ns, Annotations: map[string]string{inject.InjectAnnotation: inject.Enabled}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/mesh-check:0"}}},
	}
	if sel := wh.Webhooks[0].ObjectSelector; sel != nil && len(sel.MatchLabels) > 0 {
		pod.Labels = sel.MatchLabels
	}
	got, err := c.Clientset.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return fmt.Errorf("dry-run create of a meshed pod in namespace %s: %w", ns, err)
	}
	for _, cs := range append(got.Spec.InitContainers, got.Spec.Containers...) {
		if cs.Name == inject.ProxyContainer {
			return nil
		}
	}
	return fmt.Errorf("a pod annotated %s: %s in namespace %s was admitted without the %s container (is the injector running and reachable? with failurePolicy %s the API server admits pods it cannot inject)",
		inject.InjectAnnotation, inject.Enabled, ns, inject.ProxyContainer, failurePolicy(wh.Webhooks[0]))
}

func failurePolicy(w admissionregistrationv1.MutatingWebhook) string {
	if w.FailurePolicy == nil {
		return string(admissionregistrationv1.Fail)
	}
	return string(*w.FailurePolicy)
}

// selectedNamespace is a namespace the webhook's namespaceSelector selects: default if it
// does, else the first by name. Terminating namespaces take no pods.
func selectedNamespace(ctx context.Context, c *Cluster, w admissionregistrationv1.MutatingWebhook) (string, error) {
	sel := labels.Everything()
	if w.NamespaceSelector != nil {
		var err error
		if sel, err = metav1.LabelSelectorAsSelector(w.NamespaceSelector); err != nil {
			return "", fmt.Errorf("webhook %s: namespaceSelector: %w", w.Name, err)
		}
	}
	list, err := c.Clientset.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	var names []string
	for _, n := range list.Items {
		if n.Status.Phase != corev1.NamespaceTerminating && n.DeletionTimestamp == nil && sel.Matches(labels.Set(n.Labels)) {
			if n.Name == "default" {
				return n.Name, nil
			}
			names = append(names, n.Name)
		}
	}
	if len(names) == 0 {
		return "", fmt.Errorf("webhook %s selects no namespace: no pod would be injected", w.Name)
	}
	sort.Strings(names)
	return names[0], nil
}
