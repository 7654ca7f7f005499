// Package kube is how commands reach the cluster of the kubeconfig: the --kubeconfig and
// --context flags, the REST configuration they select, and a connection that is checked
// before a command does anything with it.
package kube

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshplane/mesh/checks/preinstall"
	"github.com/meshplane/mesh/cli/exitcode"
)

// Flags select the kubeconfig and its context.
type Flags struct {
	Kubeconfig string
	Context    string
}

// Bind adds --kubeconfig and --context to fs.
func (f *Flags) Bind(fs *pflag.FlagSet) {
	fs.StringVar(&f.Kubeconfig, "kubeconfig", f.Kubeconfig, "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
	fs.StringVar(&f.Context, "context", f.Context, "kubeconfig context (default: the current one)")
}

func (f Flags) clientConfig() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.Kubeconfig
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: f.Context})
}

// RESTConfig loads the REST configuration of the kubeconfig and context. A kubeconfig
// that cannot be loaded is a usage error (exit 2).
func (f Flags) RESTConfig() (*rest.Config, error) {
	cfg, err := f.clientConfig().ClientConfig()
	if err != nil {
		return nil, exitcode.Usage(fmt.Errorf("kubeconfig: %w", err))
	}
	return cfg, nil
}

// Namespace is the context's namespace, "default" when it names none.
func (f Flags) Namespace() (string, error) {
	ns, _, err := f.clientConfig().Namespace()
	if err != nil {
		return "", exitcode.Usage(fmt.Errorf("kubeconfig: %w", err))
	}
	return ns, nil
}

// Connect connects to the cluster of the kubeconfig: a kubeconfig that cannot be loaded
// is a usage error (exit 2); a cluster that does not answer or refuses the credentials
// is a *checks.ClusterError (exit 3), before the command does anything.
func (f Flags) Connect(ctx context.Context) (*preinstall.Cluster, error) {
	cfg, err := f.RESTConfig()
	if err != nil {
		return nil, err
	}
	c, err := preinstall.NewCluster(cfg)
	if err != nil {
		return nil, exitcode.Usage(fmt.Errorf("kubeconfig: %w", err))
	}
	if err := c.Reach(ctx); err != nil {
		return nil, err
	}
	return c, nil
}
