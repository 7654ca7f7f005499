// Package testcluster gives Go tests the project's test cluster: a real kube-apiserver,
// etcd and kube-controller-manager on 127.0.0.1, started by hack/testenv.sh (see
// docs/development.md).
//
// A test that needs the cluster calls Kubeconfig, RESTConfig or Clientset first. When no
// cluster is configured (MESH_TEST_KUBECONFIG unset, or its file gone because the cluster
// was stopped), the test is skipped with a message that says how to start one, unless
// MESH_REQUIRE_TEST_CLUSTER=1: then it fails. `make test` sets that, so CI cannot pass by
// skipping the cluster tests.
//
// Every test shares the one cluster, so a test works in a namespace of its own
// (Namespace) and leaves cluster-scoped objects alone or cleans them up. The cluster has
// no kubelet and no scheduler: Deployments get ReplicaSets and Pods, but Pods stay
// Pending.
package testcluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Environment variables read by this package. hack/testenv.sh env prints the first two.
const (
	// EnvKubeconfig names the admin kubeconfig of the test cluster.
	EnvKubeconfig = "MESH_TEST_KUBECONFIG"
	// EnvKubectl names the kubectl binary that matches the cluster's version.
	EnvKubectl = "MESH_TEST_KUBECTL"
	// EnvRequire, set to 1, turns "no test cluster" from a skip into a failure.
	EnvRequire = "MESH_REQUIRE_TEST_CLUSTER"
)

const howToStart = `hack/testenv.sh install && hack/testenv.sh start && eval "$(hack/testenv.sh env)"`

// Kubeconfig returns the path of the test cluster's admin kubeconfig
// ($MESH_TEST_KUBECONFIG). Without one it skips the test, or fails it when
// MESH_REQUIRE_TEST_CLUSTER=1.
func Kubeconfig(t testing.TB) string {
	t.Helper()
	path := os.Getenv(EnvKubeconfig)
	var missing string
	if path == "" {
		missing = EnvKubeconfig + " is not set"
	} else if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		missing = fmt.Sprintf("%s=%s does not exist (is the cluster stopped?)", EnvKubeconfig, path)
	} else if err != nil {
		missing = fmt.Sprintf("%s=%s: %v", EnvKubeconfig, path, err)
	} else {
		return path
	}
	if required() {
		t.Fatal("testcluster: " + EnvRequire + "=1 but there is no test cluster: " + missing +
			".\nStart it with: " + howToStart)
		return ""
	}
	t.Skip("testcluster: no test cluster: " + missing + ".\nTo run this test: " +
		howToStart + "\nor run make test.")
	return ""
}

func required() bool {
	v, err := strconv.ParseBool(os.Getenv(EnvRequire))
	return err == nil && v
}

// RESTConfig returns a client configuration for the test cluster, as its admin (group
// system:masters), without client-side rate limiting. See Kubeconfig for what happens
// without a cluster.
func RESTConfig(t testing.TB) *rest.Config {
	t.Helper()
	path := Kubeconfig(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatalf("testcluster: loading %s: %v", path, err)
	}
	cfg.QPS, cfg.Burst = -1, 0 // tests create objects in bursts; the apiserver is local
	cfg.UserAgent = "mesh-testcluster/" + t.Name()
	return cfg
}

// Clientset returns a typed client for the test cluster. See Kubeconfig for what happens
// without a cluster.
func Clientset(t testing.TB) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(RESTConfig(t))
	if err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	return cs
}

// Kubectl returns the path of a kubectl binary for the test cluster: $MESH_TEST_KUBECTL,
// else the kubectl that hack/testenv.sh links next to the kubeconfig (both are the
// kubectl built with the cluster, of the same version), else kubectl on PATH. Pass it
// --kubeconfig Kubeconfig(t); it does not read the kubeconfig itself, so it works
// without a cluster too, for commands such as `kubectl kustomize`.
func Kubectl(t testing.TB) string {
	t.Helper()
	if path := os.Getenv(EnvKubectl); path != "" {
		if !executable(path) {
			t.Fatalf("testcluster: %s=%s is not an executable file (run hack/testenv.sh install)", EnvKubectl, path)
		}
		return path
	}
	if kc := os.Getenv(EnvKubeconfig); kc != "" {
		if path := filepath.Join(filepath.Dir(kc), "kubectl"); executable(path) {
			return path
		}
	}
	path, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("testcluster: no kubectl: set %s or run hack/testenv.sh install, which builds one", EnvKubectl)
	}
	return path
}

func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Namespace creates a namespace with a unique name derived from the test's name and
// returns that name. t.Cleanup deletes it; the controller-manager then deletes what it
// holds, in the background.
func Namespace(t testing.TB, cs kubernetes.Interface) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: namePrefix(t.Name()),
		Annotations:  map[string]string{"testcluster.meshplane.io/test": t.Name()},
	}}
	ns, err := cs.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("testcluster: creating a namespace: %v", err)
	}
	t.Cleanup(func() {
		// t.Context() is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := cs.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("testcluster: deleting namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}

// namePrefix turns a test name into a GenerateName prefix that keeps the result a valid
// namespace name (a DNS label of at most 63 characters; the server appends 5).
func namePrefix(testName string) string {
	var b strings.Builder
	dash := true // no leading dash
	for _, r := range strings.ToLower(testName) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	name := strings.TrimSuffix(b.String(), "-")
	if len(name) > 50 {
		name = strings.TrimSuffix(name[:50], "-")
	}
	return "t-" + name + "-"
}

// ViewerToken creates a ServiceAccount "viewer" in ns, bound to the "view"
// ClusterRole there only, and returns a token for it: a user restricted by RBAC.
func ViewerToken(t testing.TB, cs kubernetes.Interface, ns string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "viewer"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "viewer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "viewer", Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tok, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "viewer", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Status.Token
}
