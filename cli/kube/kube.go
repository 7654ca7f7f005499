// Package kube is how commands reach the cluster of the kubeconfig: the --kubeconfig and
// --context flags, the REST configuration they select, and a connection that is checked
// before a command does anything with it.
package kube

import (
	"context"
	"fmt"
	"slices"
	"strings"

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

// Client-side rate limits, kubectl's: client-go's defaults (5 per second, bursts of
// 10) would make a diff of a whole install wait seconds on itself.
const (
	QPS   = 50
	Burst = 300
)

// RESTConfig loads the REST configuration of the kubeconfig and context, with kubectl's
// rate limits. A kubeconfig that cannot be loaded is a usage error (exit 2).
func (f Flags) RESTConfig() (*rest.Config, error) {
	if err := f.checkContext(); err != nil {
		return nil, exitcode.Usage(err)
	}
	cfg, err := f.clientConfig().ClientConfig()
	if err != nil {
		return nil, exitcode.Usage(fmt.Errorf("kubeconfig: %w", err))
	}
	cfg.QPS, cfg.Burst = QPS, Burst
	return cfg, nil
}

// checkContext names the context when the kubeconfig does not hold it (client-go's
// own message for a current-context that is gone is "cluster has no server defined").
func (f Flags) checkContext() error {
	raw, err := f.clientConfig().RawConfig()
	if err != nil {
		return nil // ClientConfig says what is wrong
	}
	name := f.ContextName()
	if _, ok := raw.Contexts[name]; ok || name == "" {
		return nil
	}
	have := make([]string, 0, len(raw.Contexts))
	for n := range raw.Contexts {
		have = append(have, n)
	}
	slices.Sort(have)
	return fmt.Errorf("kubeconfig: context %q does not exist (its contexts: %s)", name, strings.Join(have, ", "))
}

// ContextName is the context the flags select: --context, else the kubeconfig's
// current context ("" when the kubeconfig cannot be read).
func (f Flags) ContextName() string {
	if f.Context != "" {
		return f.Context
	}
	raw, err := f.clientConfig().RawConfig()
	if err != nil {
		return ""
	}
	return raw.CurrentContext
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
