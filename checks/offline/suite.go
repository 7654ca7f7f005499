package offline

import (
	"github.com/meshplane/mesh/checks"
)

// Suite is every offline check of the manifests in s, in the order they run.
func Suite(s *Set, opts Options) ([]checks.Check, error) {
	var all []checks.Check
	k8s, err := kubernetesChecks(s, opts)
	if err != nil {
		return nil, err
	}
	all = append(all, k8s...)
	all = append(all, controlPlaneChecks(s)...)
	all = append(all, identityChecks(s, opts)...)
	all = append(all, dataPlaneChecks(s, opts)...)
	if err := checks.Validate(all); err != nil {
		return nil, err
	}
	return all, nil
}
