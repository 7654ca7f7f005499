package testcluster

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshplane/mesh/render/inject"
)

// MeshedDeployment creates, in ns, a Deployment app (no replicas: nothing runs
// it) with the ServiceAccount app and one pending meshed pod, app-1, of that
// account: a mesh-proxy container with its admin port. For tests of commands that
// resolve workloads and identities but reach no proxy (their metrics come from
// elsewhere, such as a Prometheus).
func MeshedDeployment(t testing.TB, cs kubernetes.Interface, ns, app string) {
	t.Helper()
	ctx := context.Background()
	sel := map[string]string{"app": app}
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: app}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: app},
		Spec: appsv1.DeploymentSpec{Replicas: new(int32), Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: app, Image: "app"}}}}},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: app + "-1", Labels: sel},
		Spec: corev1.PodSpec{ServiceAccountName: app, Containers: []corev1.Container{
			{Name: app, Image: "app"},
			{Name: inject.ProxyContainer, Image: "proxy", Ports: []corev1.ContainerPort{{Name: inject.AdminPortName, ContainerPort: 4191}}},
		}},
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
