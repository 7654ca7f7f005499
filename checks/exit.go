package checks

import (
	"fmt"
	"time"
)

// Exit codes of `mesh check` (docs/checks.md). They never depend on the output format.
const (
	// ExitPassed: every check passed (failed warnings are allowed, unless warnings fail).
	ExitPassed = 0
	// ExitFindings: a check failed: an error, or a warning when warnings fail.
	ExitFindings = 1
	// ExitUsage: nothing was checked: bad flags, unreadable input, no objects in it, no
	// kubeconfig.
	ExitUsage = 2
	// ExitCluster: nothing was checked: the cluster did not answer, or refused the
	// credentials (ClusterError).
	ExitCluster = 3
)

// ClusterError is a cluster that cannot be checked at all: its API server does not
// answer, or refuses the credentials. Its exit code is ExitCluster.
type ClusterError struct {
	Host         string // the API server's URL
	Unauthorized bool   // it answered, and refused the credentials
	Err          error
}

func (e *ClusterError) Error() string {
	if e.Unauthorized {
		return fmt.Sprintf("the cluster at %s refused the credentials: %v", e.Host, e.Err)
	}
	return fmt.Sprintf("cannot reach the cluster at %s: %v", e.Host, e.Err)
}

// Unwrap is the underlying error.
func (e *ClusterError) Unwrap() error { return e.Err }

// ExitCode is ExitCluster.
func (e *ClusterError) ExitCode() int { return ExitCluster }

// ObjectName is how reports name a Kubernetes object: Kind/namespace/name, or
// Kind/name when it has no namespace (cluster-scoped, or none set in a manifest).
// It is what render/manifest.Object's String gives.
func ObjectName(kind, namespace, name string) string {
	if namespace == "" {
		return kind + "/" + name
	}
	return kind + "/" + namespace + "/" + name
}

// DefaultMinCertValidity is how long trust anchors and the identity issuer must stay
// valid for `mesh check` (its --min-cert-validity default, 60 days). `mesh install` and
// `mesh identity inspect` warn within the same window.
const DefaultMinCertValidity = 60 * 24 * time.Hour
