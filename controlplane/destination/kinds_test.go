package destination

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"

	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
)

// Headless Services and Services without a selector (their EndpointSlices written by
// someone else) resolve through their EndpointSlices like any other; addresses with no
// pod behind them get no identity.
func TestHeadlessAndSelectorlessServices(t *testing.T) {
	port, name, ready := int32(9000), "tcp", true
	slice := func(svc, ip string) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: svc + "-x", Namespace: "apps", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		}
	}
	svcPort := []corev1.ServicePort{{Name: name, Port: 9000, TargetPort: intstr.FromInt32(9000)}}
	cs := fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "apps"},
			Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": "db"}, Ports: svcPort}},
		slice("db", "10.1.0.7"),
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "legacy", Namespace: "apps"}, Spec: corev1.ServiceSpec{Ports: svcPort}},
		slice("legacy", "192.0.2.10"),
	)
	_, _, dyn := fakeServerWith(t, cs)
	ctx, client := serve(t, cs, dyn)
	for path, want := range map[string]string{
		"db.apps.svc.cluster.local:9000":     "add 10.1.0.7:9000 pod=",
		"legacy.apps.svc.cluster.local:9000": "add 192.0.2.10:9000 pod=",
	} {
		stream, err := client.Get(ctx, &meshv1.GetDestination{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		expect(t, recv(t, stream.Recv, describe), want)
	}
}
