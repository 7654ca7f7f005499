package identity

import (
	"context"
	"fmt"
	"os"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/checks/offline"
	"github.com/meshplane/mesh/lifecycle/diff"
)

// The objects an inspection reads.
const (
	IssuerSecret      = "mesh-identity-issuer"
	TrustRootsMap     = "mesh-identity-trust-roots"
	TrustRootsKey     = "ca-bundle.crt"
	ConfigMap         = "mesh-config"
	anchorsValue      = "identity.trustAnchorsPEM"
	issuerCertValue   = "identity.issuer.tls.crtPEM"
	secretCAKey       = "ca.crt"
	secretCertKey     = corev1.TLSCertKey
	valuesKey         = "values.yaml"
	allNamespacesNote = "listing the trust roots of every namespace was refused (%v); showing the control plane's only"
)

// Files are PEM files given on the command line; they replace what manifests or
// the cluster give.
type Files struct {
	TrustAnchors string // --trust-anchors-file
	IssuerCert   string // --issuer-cert-file
}

// Apply reads the files into m. An unreadable file is an error naming it.
func (f Files) Apply(m *Material) error {
	for _, x := range []struct {
		flag, path string
		into       **PEM
	}{{"--trust-anchors-file", f.TrustAnchors, &m.Anchors}, {"--issuer-cert-file", f.IssuerCert, &m.Issuer}} {
		if x.path == "" {
			continue
		}
		b, err := os.ReadFile(x.path)
		if err != nil {
			return fmt.Errorf("%s: %w", x.flag, err)
		}
		*x.into = &PEM{Source: x.path, Data: b}
	}
	return nil
}

// FromObjects finds the identity material of manifests (a render of mesh install):
// the control plane's trust-roots ConfigMap, else mesh-config's recorded
// identity.trustAnchorsPEM; the issuer Secret's tls.crt and ca.crt, else the recorded
// identity.issuer.tls.crtPEM; and every trust-roots ConfigMap as published. namespace,
// when set, is the control plane's; else the namespace of mesh-config or of the
// issuer Secret.
func FromObjects(objs []diff.Object, namespace string) (Material, error) {
	var m Material
	find := func(kind, name string) []diff.Object {
		var out []diff.Object
		for _, o := range objs {
			if o.Kind == kind && o.Name == name && o.Group() == "" && (namespace == "" || o.Namespace == namespace) {
				out = append(out, o)
			}
		}
		return out
	}
	if namespace == "" {
		for _, o := range append(find("ConfigMap", ConfigMap), find("Secret", IssuerSecret)...) {
			namespace = o.Namespace
			break
		}
	}
	for _, o := range find("Secret", IssuerSecret) {
		if v, ok := offline.SecretValue(o.Body, secretCertKey); ok {
			m.Issuer = &PEM{Source: name(o) + " " + secretCertKey, Data: []byte(v)}
		}
		if v, ok := offline.SecretValue(o.Body, secretCAKey); ok {
			m.IssuerAnchors = &PEM{Source: name(o) + " " + secretCAKey, Data: []byte(v)}
		}
	}
	for _, o := range objs {
		if o.Kind != "ConfigMap" || o.Name != TrustRootsMap || o.Group() != "" {
			continue
		}
		v := str(o.Body, "data", TrustRootsKey)
		if v == "" {
			continue
		}
		p := PEM{Source: name(o) + " " + TrustRootsKey, Data: []byte(v)}
		if o.Namespace == namespace && m.Anchors == nil {
			m.Anchors = &p
		}
		m.Published = append(m.Published, Published{Namespace: o.Namespace, PEM: p})
	}
	for _, o := range find("ConfigMap", ConfigMap) {
		vals := map[string]any{}
		if err := yaml.Unmarshal([]byte(str(o.Body, "data", valuesKey)), &vals); err != nil {
			return m, fmt.Errorf("%s %s: %w", name(o), valuesKey, err)
		}
		src := name(o) + " " + valuesKey + " "
		if v := str(vals, "identity", "trustAnchorsPEM"); v != "" && m.Anchors == nil {
			m.Anchors = &PEM{Source: src + anchorsValue, Data: []byte(v)}
		}
		if v := str(vals, "identity", "issuer", "tls", "crtPEM"); v != "" && m.Issuer == nil {
			m.Issuer = &PEM{Source: src + issuerCertValue, Data: []byte(v)}
		}
	}
	return m, nil
}

// FromCluster reads the identity material of the control plane in namespace: the
// issuer Secret, the control plane's trust-roots ConfigMap, and the trust-roots
// ConfigMaps of every namespace (the control plane's only, with a note, when listing
// them all is refused). Missing objects are left out; other API errors are returned.
func FromCluster(ctx context.Context, c kubernetes.Interface, namespace string) (Material, error) {
	var m Material
	sec, err := c.CoreV1().Secrets(namespace).Get(ctx, IssuerSecret, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return m, fmt.Errorf("reading %s: %w", checks.ObjectName("Secret", namespace, IssuerSecret), err)
	default:
		src := checks.ObjectName("Secret", namespace, IssuerSecret) + " "
		if b := sec.Data[secretCertKey]; len(b) > 0 {
			m.Issuer = &PEM{Source: src + secretCertKey, Data: b}
		}
		if b := sec.Data[secretCAKey]; len(b) > 0 {
			m.IssuerAnchors = &PEM{Source: src + secretCAKey, Data: b}
		}
	}
	sel := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", TrustRootsMap).String()}
	list, err := c.CoreV1().ConfigMaps(metav1.NamespaceAll).List(ctx, sel)
	if apierrors.IsForbidden(err) {
		m.Notes = append(m.Notes, fmt.Sprintf(allNamespacesNote, err))
		list, err = c.CoreV1().ConfigMaps(namespace).List(ctx, sel)
	}
	if err != nil {
		return m, fmt.Errorf("listing the %s ConfigMaps: %w", TrustRootsMap, err)
	}
	items := list.Items
	sort.Slice(items, func(i, j int) bool { return items[i].Namespace < items[j].Namespace })
	for _, cm := range items {
		v := cm.Data[TrustRootsKey]
		if v == "" {
			continue
		}
		p := PEM{Source: checks.ObjectName("ConfigMap", cm.Namespace, cm.Name) + " " + TrustRootsKey, Data: []byte(v)}
		if cm.Namespace == namespace {
			m.Anchors = &p
		}
		m.Published = append(m.Published, Published{Namespace: cm.Namespace, PEM: p})
	}
	return m, nil
}

func name(o diff.Object) string { return checks.ObjectName(o.Kind, o.Namespace, o.Name) }

func str(m map[string]any, path ...string) string {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = mm[p]
	}
	s, _ := cur.(string)
	return s
}
