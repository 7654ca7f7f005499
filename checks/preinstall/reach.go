package preinstall

import (
	"context"
	"errors"
	"net/http"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshplane/mesh/checks"
)

// ReachTimeout bounds Reach, so that an address that drops packets fails in time.
const ReachTimeout = 15 * time.Second

// Reach tells whether the cluster can be checked at all, before any suite runs: it
// asks the API server who the user is (a SelfSubjectReview, which every authenticated
// user may create). The error is a *checks.ClusterError when the server does not
// answer (no connection, a timeout, a 5xx) or refuses the credentials (401, or 403 for
// this most basic request: anonymous, or a user without even system:basic-user).
// Any other answer means the server is there; the checks say the rest.
func (c *Cluster) Reach(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, ReachTimeout)
	defer cancel()
	_, err := c.Clientset.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err == nil {
		return nil
	}
	if apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err) {
		return &checks.ClusterError{Host: c.Config.Host, Unauthorized: true, Err: err}
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Code < http.StatusInternalServerError && !apierrors.IsTimeout(err) {
		return nil // e.g. 404 from a server without the API: reachable
	}
	return &checks.ClusterError{Host: c.Config.Host, Err: err}
}
