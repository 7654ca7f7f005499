package identity

import (
	"context"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// APIReviewer reviews tokens with the API server's TokenReview API.
type APIReviewer struct{ Client kubernetes.Interface }

// Review implements TokenReviewer.
func (r APIReviewer) Review(ctx context.Context, token string, audiences []string) (string, bool, error) {
	res, err := r.Client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: audiences},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", false, err
	}
	return res.Status.User.Username, res.Status.Authenticated, nil
}
