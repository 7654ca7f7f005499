package injector

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/meshplane/mesh/render/inject"
	"github.com/meshplane/mesh/render/install"
)

// Each admission request is counted once, under the result it had.
func TestReviewResults(t *testing.T) {
	vals, err := install.EffectiveValues(install.Options{Version: "v1.2.3"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	in, err := inject.New(inject.Options{Manual: &inject.Manual{Version: "v1.2.3", Namespace: "mesh-system", Values: vals}})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	wh := &Webhook{Injector: in, OnResult: func(r string) { counts[r]++ },
		NamespaceAnnotations: func(_ context.Context, name string) (map[string]string, error) {
			switch name {
			case "meshed":
				return map[string]string{inject.InjectAnnotation: inject.Enabled}, nil
			case "broken":
				return nil, errors.New("the API server is away")
			}
			return nil, nil
		}}
	pod := func(spec string) runtime.RawExtension {
		return runtime.RawExtension{Raw: []byte(`{"metadata":{"name":"p"},"spec":{` + spec + `"containers":[{"name":"app","image":"app:1"}]}}`)}
	}
	podKind := metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	tests := []struct {
		name string
		req  admissionv1.AdmissionRequest
		want string
	}{
		{"meshed namespace", admissionv1.AdmissionRequest{Kind: podKind, Operation: admissionv1.Create, Namespace: "meshed", Object: pod("")}, ResultInjected},
		{"plain namespace", admissionv1.AdmissionRequest{Kind: podKind, Operation: admissionv1.Create, Namespace: "plain", Object: pod("")}, ResultSkipped},
		{"hostNetwork refused", admissionv1.AdmissionRequest{Kind: podKind, Operation: admissionv1.Create, Namespace: "meshed", Object: pod(`"hostNetwork":true,`)}, ResultSkipped},
		{"not a create", admissionv1.AdmissionRequest{Kind: podKind, Operation: admissionv1.Update, Namespace: "meshed", Object: pod("")}, ResultSkipped},
		{"namespace lookup fails", admissionv1.AdmissionRequest{Kind: podKind, Operation: admissionv1.Create, Namespace: "broken", Object: pod("")}, ResultError},
		{"not JSON", admissionv1.AdmissionRequest{Kind: podKind, Operation: admissionv1.Create, Namespace: "meshed", Object: runtime.RawExtension{Raw: []byte("{")}}, ResultError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clear(counts)
			resp := wh.Review(context.Background(), &tt.req)
			if len(counts) != 1 || counts[tt.want] != 1 {
				t.Errorf("results %v, want one %s", counts, tt.want)
			}
			if !resp.Allowed || (resp.Patch != nil) != (tt.want == ResultInjected) {
				t.Errorf("allowed %v, patch %s", resp.Allowed, resp.Patch)
			}
		})
	}
	// A body that is not an AdmissionReview is an error too.
	clear(counts)
	rec := httptest.NewRecorder()
	wh.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/inject", strings.NewReader(`{"kind":"Nope"}`)))
	if rec.Code != http.StatusBadRequest || counts[ResultError] != 1 {
		t.Errorf("bad body: %d, results %v", rec.Code, counts)
	}
}
