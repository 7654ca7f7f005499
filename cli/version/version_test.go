package version

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/cli/kube"
	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/lifecycle/versions"
	"github.com/meshplane/mesh/render/inject"
)

// argv -> options.
func TestNewCmdOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args    []string
		want    Options
		wantErr string
	}{
		{[]string{}, Options{Namespace: "mesh-system"}, ""},
		{[]string{"-o", "json"}, Options{Output: "json", Namespace: "mesh-system"}, ""},
		{[]string{"--output", "short", "--client"}, Options{Output: "short", Client: true, Namespace: "mesh-system"}, ""},
		{[]string{"-n", "mesh", "--kubeconfig", "kc", "--context", "c", "-o", "yaml"},
			Options{Output: "yaml", Namespace: "mesh", Kube: kube.Flags{Kubeconfig: "kc", Context: "c"}}, ""},
		{[]string{"-o", "toml"}, Options{}, "--output must be"},
		{[]string{"extra"}, Options{}, "unknown command"},
	} {
		io, _, _, _ := iostreams.Test()
		var got *Options
		cmd := NewCmd(io, func(o *Options) error { got = o; return nil })
		cmd.SetArgs(tc.args)
		cmd.SilenceErrors, cmd.SilenceUsage = true, true
		err := cmd.Execute()
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: err %v, want %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got.Info.Version != Version() || got.Info.Component != "client" {
			t.Errorf("%v: info %+v", tc.args, got.Info)
		}
		got.Info = Info{}
		if !reflect.DeepEqual(*got, tc.want) {
			t.Errorf("%v: got %+v, want %+v", tc.args, *got, tc.want)
		}
	}
}

func run(t *testing.T, o *Options) (stdout, stderr string, err error) {
	t.Helper()
	io, _, out, errOut := iostreams.Test()
	cmd := &cobra.Command{}
	cmd.SetContext(context.Background())
	err = Run(cmd, io, o)
	return out.String(), errOut.String(), err
}

var info = Info{Component: "client", Version: "v1.0.0", GoVersion: "go1.26.8", Platform: "linux/amd64"}

// options -> output: --client prints the client alone, in each format.
func TestRunClient(t *testing.T) {
	t.Parallel()
	for output, want := range map[string]string{
		"":      "Client version: v1.0.0\n",
		"short": "v1.0.0\n",
		"json":  "{\n  \"clientVersion\": \"v1.0.0\",\n  \"goVersion\": \"go1.26.8\",\n  \"platform\": \"linux/amd64\"\n}\n",
		"yaml":  "clientVersion: v1.0.0\ngoVersion: go1.26.8\nplatform: linux/amd64\n",
	} {
		out, errOut, err := run(t, &Options{Output: output, Info: info, Client: true})
		if err != nil || out != want || errOut != "" {
			t.Errorf("-o %q: %v, got %q, stderr %q", output, err, out, errOut)
		}
	}
}

// An unreachable cluster: the client's version, then the error, exit 3, whatever -o;
// a kubeconfig that cannot be loaded exits 2.
func TestRunUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: \"https://"+addr+"\"}\n"+
		"users:\n- name: u\n  user: {token: t}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for output, want := range map[string]string{"": "Client version: v1.0.0\n", "short": "v1.0.0\n", "json": "\"clientVersion\": \"v1.0.0\""} {
		out, _, err := run(t, &Options{Output: output, Info: info, Kube: kube.Flags{Kubeconfig: kc}, Namespace: "mesh-system"})
		if exitcode.For(err) != exitcode.Cluster || !strings.Contains(out, want) || !strings.Contains(err.Error(), "cannot reach the cluster at https://"+addr) {
			t.Errorf("-o %q: exit %d (%v), stdout %q", output, exitcode.For(err), err, out)
		}
	}
	out, _, err := run(t, &Options{Info: info, Kube: kube.Flags{Kubeconfig: filepath.Join(t.TempDir(), "missing")}})
	if exitcode.For(err) != exitcode.UsageCode || out != "Client version: v1.0.0\n" {
		t.Errorf("missing kubeconfig: exit %d (%v), stdout %q", exitcode.For(err), err, out)
	}
}

func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Against the real API server: a Deployment whose rollout from proxy 1.3.0 to 1.4.0 is
// stuck halfway (no kubelet: the new pod never becomes ready) shows both versions with
// their pod counts, under the Deployment (its ReplicaSets named by the
// pod-template-hash convention); a bare meshed pod shows as a Pod; an unmeshed pod not
// at all; the control plane's version comes from its Deployment.
func TestRunCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cs := testcluster.Clientset(t)
	kc := testcluster.Kubeconfig(t)
	ns := testcluster.Namespace(t, cs)
	template := func(version string) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}, Annotations: map[string]string{inject.ProxyVersion: version}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"},
				{Name: inject.ProxyContainer, Image: "ghcr.io/meshplane/proxy:" + version}}},
		}
	}
	two := int32(2)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: appsv1.DeploymentSpec{
		Replicas: &two, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, Template: template("1.3.0")}}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	countPods := func(n int) func() error {
		return func() error {
			pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				return err
			}
			if len(pods.Items) != n {
				return fmt.Errorf("%d pods, want %d", len(pods.Items), n)
			}
			return nil
		}
	}
	waitFor(t, "the first ReplicaSet's pods", countPods(2))
	waitFor(t, "the new template", func() error {
		cur, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Spec.Template = template("1.4.0")
		_, err = cs.AppsV1().Deployments(ns).Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	waitFor(t, "the surge pod of the new ReplicaSet", countPods(3))

	cp := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "mesh-identity", Labels: map[string]string{"app.kubernetes.io/version": "1.4.0"}},
		Spec: appsv1.DeploymentSpec{Replicas: new(int32), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "identity"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "identity"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "identity", Image: "controller:1.4.0"}}}}}}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, cp, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Name: "bare", Annotations: map[string]string{inject.ProxyVersion: "1.4.0"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}, {Name: inject.ProxyContainer, Image: "proxy:1.4.0"}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "unmeshed"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}}},
	} {
		waitFor(t, "Pod "+p.Name, func() error { _, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); return err })
	}

	out, errOut, err := run(t, &Options{Output: "json", Info: info, Namespace: ns, Kube: kube.Flags{Kubeconfig: kc}})
	if err != nil || errOut != "" {
		t.Fatalf("%v %s", err, errOut)
	}
	var view versions.View
	if err := json.Unmarshal([]byte(out), &view); err != nil {
		t.Fatal(err)
	}
	var mine []versions.Workload
	for _, w := range view.Proxies {
		if w.Namespace == ns {
			mine = append(mine, w)
		}
	}
	want := []versions.Workload{
		{Namespace: ns, Kind: "Deployment", Name: "web", Pods: 3, Versions: []versions.Count{{Version: "1.3.0", Pods: 2}, {Version: "1.4.0", Pods: 1}}},
		{Namespace: ns, Kind: "Pod", Name: "bare", Pods: 1, Versions: []versions.Count{{Version: "1.4.0", Pods: 1}}},
	}
	if !reflect.DeepEqual(mine, want) || view.ClientVersion != "v1.0.0" || view.ControlPlane != (versions.ControlPlane{Namespace: ns, Installed: true, Version: "1.4.0"}) {
		t.Errorf("got %+v\n%s", mine, out)
	}
	out, _, err = run(t, &Options{Info: info, Namespace: ns, Kube: kube.Flags{Kubeconfig: kc}})
	for _, line := range []string{"Control plane version: 1.4.0 (namespace " + ns + ")\n", ns + "  Deployment", "web   1.3.0          2\n"} {
		if err != nil || !strings.Contains(out, line) {
			t.Errorf("text lacks %q (%v):\n%s", line, err, out)
		}
	}
}
