package identity

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"log/slog"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/meshplane/mesh/render/inject"
)

// Trust-root ConfigMaps that identity manages carry this label; others are left alone.
const (
	TrustRootsKey     = "ca-bundle.crt"
	managedByLabel    = "app.kubernetes.io/managed-by"
	managedByIdentity = "mesh-identity"
)

// TrustRoots publishes the trust anchors as the mesh-identity-trust-roots ConfigMap in
// every namespace with meshed workloads (a namespace or pod annotated for injection,
// or a pod with the proxy), and in the control plane's; it updates them when the
// anchors change, and deletes its ConfigMaps where nothing is meshed any more.
type TrustRoots struct {
	Client       kubernetes.Interface
	Source       *Source
	ControlPlane string
	Log          *slog.Logger
	Resync       time.Duration // a full reconcile at least this often

	kick chan struct{}
}

// NewTrustRoots returns a publisher for the control plane in namespace controlPlane.
func NewTrustRoots(client kubernetes.Interface, src *Source, controlPlane string, log *slog.Logger) *TrustRoots {
	return &TrustRoots{Client: client, Source: src, ControlPlane: controlPlane, Log: log, kick: make(chan struct{}, 1)}
}

// Kick asks for a reconcile (after an issuer change).
func (t *TrustRoots) Kick() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// Run reconciles on every change until ctx ends.
func (t *TrustRoots) Run(ctx context.Context) error {
	f := informers.NewSharedInformerFactory(t.Client, 0)
	nsInf, podInf, cmInf := f.Core().V1().Namespaces(), f.Core().V1().Pods(), f.Core().V1().ConfigMaps()
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { t.Kick() }, UpdateFunc: func(any, any) { t.Kick() }, DeleteFunc: func(any) { t.Kick() },
	}
	for _, inf := range []cache.SharedIndexInformer{nsInf.Informer(), podInf.Informer(), cmInf.Informer()} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return err
		}
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), nsInf.Informer().HasSynced, podInf.Informer().HasSynced, cmInf.Informer().HasSynced) {
		return ctx.Err()
	}
	resync := t.Resync
	if resync == 0 {
		resync = time.Minute
	}
	tick := time.NewTicker(resync)
	defer tick.Stop()
	for {
		if err := t.reconcile(ctx, nsInf.Lister().List, podInf.Lister().List, cmInf.Lister().List); err != nil && ctx.Err() == nil {
			t.Log.Warn("publishing trust roots", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.kick:
		case <-tick.C:
		}
	}
}

// MeshedNamespaces are the namespaces that need the trust roots.
func MeshedNamespaces(nss []*corev1.Namespace, pods []*corev1.Pod, controlPlane string) map[string]bool {
	out := map[string]bool{controlPlane: true}
	for _, ns := range nss {
		if ns.Annotations[inject.InjectAnnotation] == inject.Enabled {
			out[ns.Name] = true
		}
	}
	for _, p := range pods {
		if p.Annotations[inject.InjectAnnotation] == inject.Enabled {
			out[p.Namespace] = true
			continue
		}
		for _, c := range append(p.Spec.InitContainers, p.Spec.Containers...) {
			if c.Name == inject.ProxyContainer {
				out[p.Namespace] = true
			}
		}
	}
	return out
}

func anchorsPEM(i *Issuer) []byte {
	var b bytes.Buffer
	for _, a := range i.Anchors {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: a.Raw})
	}
	return b.Bytes()
}

func (t *TrustRoots) reconcile(ctx context.Context,
	listNS func(labels.Selector) ([]*corev1.Namespace, error),
	listPods func(labels.Selector) ([]*corev1.Pod, error),
	listCMs func(labels.Selector) ([]*corev1.ConfigMap, error)) error {
	iss, err := t.Source.Issuer()
	if err != nil {
		return err
	}
	bundle := string(anchorsPEM(iss))
	nss, err := listNS(labels.Everything())
	if err != nil {
		return err
	}
	pods, err := listPods(labels.Everything())
	if err != nil {
		return err
	}
	cms, err := listCMs(labels.Everything())
	if err != nil {
		return err
	}
	terminating := map[string]bool{}
	for _, ns := range nss {
		if ns.Status.Phase == corev1.NamespaceTerminating {
			terminating[ns.Name] = true
		}
	}
	want := MeshedNamespaces(nss, pods, t.ControlPlane)
	have := map[string]*corev1.ConfigMap{}
	for _, cm := range cms {
		if cm.Name == TrustRootsConfigMapName {
			have[cm.Namespace] = cm
		}
	}
	names := make([]string, 0, len(want))
	for ns := range want {
		names = append(names, ns)
	}
	sort.Strings(names)
	for _, ns := range names {
		if terminating[ns] {
			continue
		}
		cm, ok := have[ns]
		switch {
		case !ok:
			_, err := t.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: TrustRootsConfigMapName, Namespace: ns,
					Labels: map[string]string{managedByLabel: managedByIdentity, "app.kubernetes.io/part-of": "mesh"}},
				Data: map[string]string{TrustRootsKey: bundle},
			}, metav1.CreateOptions{})
			if err != nil && !apierrors.IsAlreadyExists(err) && !apierrors.IsNotFound(err) {
				return fmt.Errorf("creating %s/%s: %w", ns, TrustRootsConfigMapName, err)
			}
		case cm.Labels[managedByLabel] == managedByIdentity && cm.Data[TrustRootsKey] != bundle:
			upd := cm.DeepCopy()
			upd.Data = map[string]string{TrustRootsKey: bundle}
			if _, err := t.Client.CoreV1().ConfigMaps(ns).Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("updating %s/%s: %w", ns, TrustRootsConfigMapName, err)
			}
		}
	}
	for ns, cm := range have {
		if !want[ns] && cm.Labels[managedByLabel] == managedByIdentity {
			err := t.Client.CoreV1().ConfigMaps(ns).Delete(ctx, TrustRootsConfigMapName, metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("deleting %s/%s: %w", ns, TrustRootsConfigMapName, err)
			}
		}
	}
	return nil
}

// TrustRootsConfigMapName is the ConfigMap proxies mount their trust anchors from.
const TrustRootsConfigMapName = inject.TrustRootsConfigMap
