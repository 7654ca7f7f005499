package offline

import (
	"github.com/meshplane/mesh/checks"
)

// Suite is every offline check of the manifests in s, in the order they run.
// The options are those s was loaded with.
func Suite(s *Set) ([]checks.Check, error) {
	var all []checks.Check
	all = append(all, kubernetesChecks(s)...)
	all = append(all, controlPlaneChecks(s)...)
	all = append(all, identityChecks(s, s.opts)...)
	all = append(all, dataPlaneChecks(s)...)
	if err := checks.Validate(all); err != nil {
		return nil, err
	}
	return all, nil
}
