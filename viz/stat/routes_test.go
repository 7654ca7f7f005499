package stat

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
)

// A ServiceProfile list that fails because the CRD is missing or the user may not
// list it leaves the routes with traffic, with a warning; another failure is an
// error naming the list.
func TestRoutesProfileErrors(t *testing.T) {
	t.Parallel()
	gr := schema.GroupResource{Group: ServiceProfiles.Group, Resource: ServiceProfiles.Resource}
	for _, tc := range []struct {
		name    string
		err     error
		wantErr string
	}{
		{"missing CRD", apierrors.NewNotFound(gr, ""), ""},
		{"forbidden", apierrors.NewForbidden(gr, "", errors.New("no")), ""},
		{"server error", apierrors.NewInternalError(errors.New("etcd down")), "list serviceprofiles in shop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newScenario("shop", "10.0.0.1", "10.0.0.2", fakePorts)
			dyn := dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{ServiceProfiles: "ServiceProfileList"})
			dyn.PrependReactor("list", "serviceprofiles", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, tc.err })
			var warnings bytes.Buffer
			clock := &fakeClock{now: time.Unix(1e9, 0)}
			d := &Direct{Client: fakeCluster(t, s), Now: clock.Now, Sleep: clock.Sleep, Warnings: &warnings}
			rows, err := d.Routes(context.Background(), dyn, Resource{Kind: KindDeployment, Namespace: "shop", Name: "web"}, window)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// The scenario's series have no route: all of web's inbound traffic is
			// the default route, the same figures as mesh stat deploy/web.
			want := s.want()["deploy/web"]
			want.TCPConnections = math.NaN()
			if len(rows) != 1 || rows[0].Route != DefaultRoute || rows[0].Service != "" || !sameRow(rows[0].Row, want) {
				t.Errorf("rows %+v, want one [DEFAULT] row %+v", rows, want)
			}
			if !strings.Contains(warnings.String(), "serviceprofiles in shop") {
				t.Errorf("warnings %q", warnings.String())
			}
		})
	}
}
