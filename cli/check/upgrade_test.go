package check

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/checks/upgrade"
	"github.com/meshplane/mesh/internal/testing/testcluster"
)

// mesh check --pre --upgrade against the real API server: no control plane is a
// finding; a control plane passes (this test binary is a dev build: the skew is a
// warning, which fails only with --fail-on warning); values that cannot be read are
// bad input. The codes do not depend on -o.
func TestPreUpgrade(t *testing.T) {
	t.Parallel()
	kc := testcluster.Kubeconfig(t)
	cs := testcluster.Clientset(t)
	empty := testcluster.Namespace(t, cs)
	ns := testcluster.Namespace(t, cs)
	labels := map[string]string{"app": "identity"}
	if _, err := cs.AppsV1().Deployments(ns).Create(context.Background(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: upgrade.ControlPlaneDeployment, Labels: map[string]string{upgrade.VersionLabel: "1.2.0"}},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "identity", Image: "controller:1.2.0"}}},
		}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	values := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(values, []byte("controller:\n  logLevel: debug\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		fail string // a check that fails
	}{
		{"no control plane", []string{"-n", empty}, checks.ExitFindings, upgrade.IDControlPlane},
		{"a control plane", []string{"-n", ns, "--from", values}, checks.ExitPassed, ""},
		{"dev build, --fail-on warning", []string{"-n", ns, "--fail-on", "warning"}, checks.ExitFindings, upgrade.IDDevVersions},
		{"unreadable values", []string{"-n", ns, "--from", values + ".missing"}, checks.ExitUsage, ""},
	} {
		for _, o := range outputs {
			code, out, msg := execute(t, "", append([]string{"--pre", "--upgrade", "--kubeconfig", kc, "-o", o}, tc.args...)...)
			if code != tc.code {
				t.Errorf("%s -o %s: exit %d, want %d (%s)\n%s", tc.name, o, code, tc.code, msg, out)
			}
			if o != "json" || code >= checks.ExitUsage {
				continue
			}
			var doc struct {
				Categories []struct {
					Checks []struct{ ID, Result string }
				}
			}
			if err := json.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatal(err)
			}
			var ids []string
			failed := ""
			for _, c := range doc.Categories {
				for _, ch := range c.Checks {
					ids = append(ids, ch.ID)
					if ch.ID == tc.fail && ch.Result != "success" {
						failed = ch.ID
					}
				}
			}
			if got := strings.Join(ids, " "); !strings.Contains(got, "pre.api") || strings.Contains(got, "pre.no-namespace") || !strings.Contains(got, upgrade.IDStoredVersions) {
				t.Errorf("%s: checks run: %s", tc.name, got)
			}
			if failed != tc.fail {
				t.Errorf("%s: %q did not fail:\n%s", tc.name, tc.fail, out)
			}
		}
	}
}
