package kube

import (
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/meshplane/mesh/cli/exitcode"
)

func TestFlags(t *testing.T) {
	t.Parallel()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["a"] = &clientcmdapi.Cluster{Server: "https://a.example:6443"}
	cfg.Clusters["b"] = &clientcmdapi.Cluster{Server: "https://b.example:6443"}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "t"}
	cfg.Contexts["a"] = &clientcmdapi.Context{Cluster: "a", AuthInfo: "u"}
	cfg.Contexts["b"] = &clientcmdapi.Context{Cluster: "b", AuthInfo: "u", Namespace: "shop"}
	cfg.CurrentContext = "a"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ context, host, ns string }{{"", "https://a.example:6443", "default"}, {"b", "https://b.example:6443", "shop"}} {
		f := Flags{Kubeconfig: path, Context: tc.context}
		rc, err := f.RESTConfig()
		if err != nil || rc.Host != tc.host || rc.QPS != QPS || rc.Burst != Burst {
			t.Errorf("context %q: %v, host %s, QPS %v, burst %d", tc.context, err, rc.Host, rc.QPS, rc.Burst)
		}
		if ns, err := f.Namespace(); err != nil || ns != tc.ns {
			t.Errorf("context %q: namespace %q, %v; want %q", tc.context, ns, err, tc.ns)
		}
	}
	_, err := Flags{Kubeconfig: path, Context: "nope"}.RESTConfig()
	if exitcode.For(err) != exitcode.UsageCode || !strings.Contains(err.Error(), `kubeconfig: context "nope" does not exist (its contexts: a, b)`) {
		t.Errorf("unknown context: %v (exit %d)", err, exitcode.For(err))
	}
	// A current-context that is gone is named too (client-go says "cluster has no
	// server defined").
	cfg.CurrentContext = "gone"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	_, err = Flags{Kubeconfig: path}.RESTConfig()
	if exitcode.For(err) != exitcode.UsageCode || !strings.Contains(err.Error(), `context "gone" does not exist`) {
		t.Errorf("gone current context: %v (exit %d)", err, exitcode.For(err))
	}
	if got := (Flags{Kubeconfig: path}).ContextName(); got != "gone" {
		t.Errorf("ContextName %q, want the current one", got)
	}
}
