package install

import (
	"fmt"
	"strconv"

	"github.com/meshplane/mesh/render/manifest"
)

// SyncWaveAnnotation orders an Argo CD sync: lower waves are applied, and healthy,
// before higher ones.
const SyncWaveAnnotation = "argocd.argoproj.io/sync-wave"

// The waves of --argocd-sync-waves. Argo CD applies a wave and waits for it to be
// healthy before the next: the CRDs are Established before anything uses them, the
// control plane's Deployments are available before the webhook configurations
// exist, so no pod creation waits on an injector that is not running yet (and a
// failurePolicy Fail webhook cannot block the control plane's own pods).
const (
	WaveCRDs         = -2 // Namespace, CRDs and their ApplySet parent
	WaveConfig       = -1 // ServiceAccounts, RBAC, ConfigMaps, Secrets, Services, ApplySet parents, ...
	WaveWorkloads    = 0  // Deployments, DaemonSets, StatefulSets, Jobs, PodDisruptionBudgets
	WaveAdmission    = 1  // MutatingWebhookConfigurations, ValidatingWebhookConfigurations
	WaveCustomObject = 1  // custom resources of mesh's and others' CRDs (a PodMonitor)
)

// SyncWave is the Argo CD sync wave of o under --argocd-sync-waves.
func SyncWave(o manifest.Object) int {
	switch o.Kind {
	case "Namespace", "CustomResourceDefinition":
		return WaveCRDs
	case "Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job", "CronJob", "PodDisruptionBudget", "HorizontalPodAutoscaler":
		return WaveWorkloads
	case "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding":
		return WaveAdmission
	}
	if o.Kind == "ConfigMap" && o.Namespace == CRDsApplySetNamespace && o.Name == CRDsApplySetName {
		return WaveCRDs
	}
	switch o.Group() {
	case "", "rbac.authorization.k8s.io", "apps", "batch", "policy", "admissionregistration.k8s.io", "apiextensions.k8s.io",
		"coordination.k8s.io", "discovery.k8s.io", "networking.k8s.io", "scheduling.k8s.io", "storage.k8s.io":
		return WaveConfig
	}
	return WaveCustomObject
}

// withSyncWaves gives every object its SyncWave annotation.
func withSyncWaves(objs []manifest.Object) ([]manifest.Object, error) {
	out := make([]manifest.Object, len(objs))
	for i, o := range objs {
		w, err := manifest.AddMetadataEntry(o, "annotations", SyncWaveAnnotation, strconv.Quote(strconv.Itoa(SyncWave(o))))
		if err != nil {
			return nil, fmt.Errorf("--argocd-sync-waves: %w", err)
		}
		out[i] = w
	}
	return out, nil
}
