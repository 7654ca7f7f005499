package stat

import (
	"context"

	"k8s.io/client-go/kubernetes"
)

// KubePods is the PodCounter of the Prometheus source, from Kubernetes: the same
// resolution of a Resource to its objects and pods as Direct's, so both sources
// show the same rows and the same MESHED column.
type KubePods struct {
	Client kubernetes.Interface
}

// Pods lists the objects r names with their meshed and total pods.
func (k KubePods) Pods(ctx context.Context, r Resource) ([]PodCount, error) {
	targets, err := resolve(ctx, k.Client, r)
	if err != nil {
		return nil, err
	}
	out := make([]PodCount, 0, len(targets))
	for _, t := range targets {
		pc := PodCount{Resource: t.res, Total: len(t.pods)}
		for _, p := range t.pods {
			if _, meshed := proxyAdminPort(p); meshed {
				pc.Meshed++
			}
		}
		out = append(out, pc)
	}
	return out, nil
}
