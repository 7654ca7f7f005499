package testcluster_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/meshplane/mesh/internal/testing/testcluster"
)

// These tests check the test cluster itself: that hack/testenv.sh starts what other tests
// rely on.

func TestServerVersion(t *testing.T) {
	cs := testcluster.Clientset(t)
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v.GitVersion, "v1.36.") {
		t.Errorf("server version %s, want v1.36.x (the version hack/testenv.sh builds)", v.GitVersion)
	}
}

// The controller-manager runs: a Deployment gets a ReplicaSet, and the ReplicaSet a Pod
// (which stays Pending: there is no scheduler or kubelet).
func TestDeploymentGetsReplicaSetAndPod(t *testing.T) {
	cs := testcluster.Clientset(t)
	ns := testcluster.Namespace(t, cs)
	ctx := t.Context()

	labels := map[string]string{"app": "web"}
	dep, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{
					{Name: "web", Image: "registry.invalid/web:1"},
				}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	var rs *appsv1.ReplicaSet
	eventually(t, "a ReplicaSet controlled by Deployment web", func(ctx context.Context) (bool, error) {
		list, err := cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for i := range list.Items {
			if metav1.IsControlledBy(&list.Items[i], dep) {
				rs = &list.Items[i]
				return true, nil
			}
		}
		return false, nil
	})

	var pod *corev1.Pod
	eventually(t, "a Pod controlled by ReplicaSet "+rs.Name, func(ctx context.Context) (bool, error) {
		list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for i := range list.Items {
			if metav1.IsControlledBy(&list.Items[i], rs) {
				pod = &list.Items[i]
				return true, nil
			}
		}
		return false, nil
	})
	// The ServiceAccount admission plugin only admits the Pod once the controller-manager
	// has created the namespace's default ServiceAccount.
	if pod.Spec.ServiceAccountName != "default" {
		t.Errorf("pod %s: serviceAccountName %q, want default", pod.Name, pod.Spec.ServiceAccountName)
	}
}

// eventually polls check until it reports true, for at most a minute; the apiserver's
// errors end the wait.
func eventually(t *testing.T, what string, check wait.ConditionWithContextFunc) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, time.Minute, true, check); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

const configMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels: {app: web}
data:
  key: value
`

// kubectl (the version built with the cluster) reaches the apiserver, and the apiserver
// validates fields strictly when asked to.
func TestKubectlServerDryRun(t *testing.T) {
	cs := testcluster.Clientset(t)
	ns := testcluster.Namespace(t, cs)
	kubeconfig, kubectl := testcluster.Kubeconfig(t), testcluster.Kubectl(t)
	apply := func(manifest string) (string, error) {
		cmd := exec.CommandContext(t.Context(), kubectl, "--kubeconfig", kubeconfig, "--namespace", ns,
			"apply", "--dry-run=server", "--validate=strict", "-f", "-")
		cmd.Stdin = strings.NewReader(manifest)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}

	out, err := apply(configMap)
	if err != nil {
		t.Fatalf("kubectl apply --dry-run=server of a valid ConfigMap: %v\n%s", err, out)
	}
	if want := "configmap/settings created (server dry run)"; out != want {
		t.Errorf("kubectl apply --dry-run=server: got %q, want %q", out, want)
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(t.Context(), "settings", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after a dry run, getting the ConfigMap: got error %v, want NotFound", err)
	}

	typo := strings.Replace(configMap, "labels:", "lables:", 1)
	out, err = apply(typo)
	if err == nil {
		t.Fatalf("kubectl apply --validate=strict of a ConfigMap with an unknown field succeeded:\n%s", out)
	}
	t.Logf("kubectl apply --validate=strict of a ConfigMap with a typo: %v\n%s", err, out)
	if want := `unknown field "metadata.lables"`; !strings.Contains(out, want) {
		t.Errorf("kubectl apply --validate=strict of a ConfigMap with an unknown field: output does not name it (%s):\n%s", want, out)
	}
}
