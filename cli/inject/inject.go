// Package inject is `mesh inject`: it marks workloads for the mesh in manifests, for
// `mesh inject -f app.yaml | kubectl apply -f -` or for committing to Git.
package inject

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/cli/version"
	"github.com/meshplane/mesh/render/identity"
	"github.com/meshplane/mesh/render/inject"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
	"github.com/meshplane/mesh/render/values"
)

// Options of `mesh inject`.
type Options struct {
	Inputs     manifest.Inputs
	Namespaces bool
	Output     string // "", yaml or json
	Quiet      bool
	// Config flags, by annotation name under config.meshplane.io/.
	Config map[string]string

	// --manual: write the proxy into the pod spec, with the settings of an install.
	Manual         bool
	Version        string
	ControlPlaneNS string
	// ControlPlaneNSSet: --control-plane-namespace was given; otherwise the namespace
	// the install values record (mesh install --print-values) wins over the default.
	ControlPlaneNSSet bool
	InstallValues     []string // values files of the install (mesh install --print-values)
	TrustAnchorsFile  string
	Uninject          bool
	// KRM reads a ResourceList on stdin and writes one on stdout; settings come from
	// its functionConfig.
	KRM bool
}

// NewCmd builds `mesh inject`. runF replaces the run function in tests.
func NewCmd(io *iostreams.IOStreams, runF func(*Options) error) *cobra.Command {
	opts := &Options{Config: map[string]string{}, Version: version.Version(), ControlPlaneNS: install.DefaultNamespace}
	flagValues := make([]string, len(inject.ConfigSettings()))
	cmd := &cobra.Command{
		Use:   "inject [-f FILE|DIR|URL|-]... [-k DIR] [FILE...]",
		Short: "Add workloads to the mesh: annotate pod templates for the proxy injector",
		Long: `Add the meshplane.io/inject: enabled annotation to the pod templates of Deployments,
StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs, CronJobs and Pods
(and, with --namespaces, to Namespaces). Documents are edited in place: comments, key
order, quoting and untouched documents stay exactly as they were. Output goes to
stdout only if every document is valid; a report goes to stderr.`,
		Example: `  mesh inject -f app.yaml | kubectl apply -f -
  mesh inject -R -f k8s/ --proxy-log-level debug > meshed.yaml
  kubectl get deploy -o yaml | mesh inject - | kubectl apply -f -`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Inputs.Filenames = append(opts.Inputs.Filenames, args...)
			opts.ControlPlaneNSSet = opts.ControlPlaneNSSet || cmd.Flags().Changed("control-plane-namespace")
			if err := opts.checkInputs(); err != nil {
				return exitcode.Usage(err)
			}
			if !opts.Manual && (len(opts.InstallValues) > 0 || opts.TrustAnchorsFile != "") {
				return exitcode.Usage(fmt.Errorf("--install-values and --identity-trust-anchors-file go with --manual"))
			}
			if opts.Output != "" && opts.Output != inject.YAML && opts.Output != inject.JSON {
				return exitcode.Usage(fmt.Errorf("--output must be yaml or json, not %q", opts.Output))
			}
			for i, f := range inject.ConfigSettings() {
				if !cmd.Flags().Changed(f.Name) {
					continue
				}
				if err := f.Check(flagValues[i]); err != nil {
					return exitcode.Usage(fmt.Errorf("--%s %q: %w", f.Name, flagValues[i], err))
				}
				opts.Config[inject.ConfigPrefix+f.Name] = flagValues[i]
			}
			if runF != nil {
				return runF(opts)
			}
			return Run(cmd, io, opts)
		},
	}
	inputFlags(cmd, opts)
	f := cmd.Flags()
	f.BoolVar(&opts.KRM, "krm", false, "run as a KRM function: a ResourceList on stdin, settings from its functionConfig (keys: these flags' names)")
	f.BoolVar(&opts.Manual, "manual", false, "write the proxy into the pod spec offline, instead of leaving it to the injector webhook")
	f.StringVar(&opts.ControlPlaneNS, "control-plane-namespace", opts.ControlPlaneNS, "namespace of the control plane (--manual)")
	f.StringArrayVar(&opts.InstallValues, "install-values", nil, "values the control plane was installed with, e.g. from mesh install --print-values (--manual; repeatable)")
	f.StringVar(&opts.TrustAnchorsFile, "identity-trust-anchors-file", "", "PEM trust anchors to write into the pod (--manual; default: a mount of the mesh-identity-trust-roots ConfigMap the controller publishes, which follows a rotation)")
	for i, c := range inject.ConfigSettings() {
		f.StringVar(&flagValues[i], c.Name, "", c.Usage+" (annotation "+inject.ConfigPrefix+c.Name+")")
	}
	return cmd
}

// checkInputs: some input, and none with --krm (which reads stdin).
func (o *Options) checkInputs() error {
	hasInput := len(o.Inputs.Filenames) > 0 || o.Inputs.Kustomize != ""
	switch {
	case o.KRM && (hasInput || o.Output != ""):
		return fmt.Errorf("--krm reads a ResourceList on stdin and writes one on stdout: it takes no -f, -k, file arguments or -o")
	case !o.KRM && !hasInput:
		return fmt.Errorf("no input: pass -f FILE|DIR|URL|-, a file argument, or -k DIR")
	}
	return nil
}

// Run injects and prints: manifests on stdout, the report on stderr.
func Run(cmd *cobra.Command, io *iostreams.IOStreams, o *Options) error {
	if o.KRM {
		return inject.KRM(io.In, io.Out, func(settings map[string]string) (*inject.Injector, error) {
			fo := *o
			fo.Config = map[string]string{}
			keys := make([]string, 0, len(settings))
			for k := range settings {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if err := fo.apply(k, settings[k]); err != nil {
					return nil, err
				}
			}
			return injector(io, &fo)
		})
	}
	in, err := injector(io, o)
	if err != nil {
		return err
	}
	// The report: warnings first, then a line per object, in input order. Only the
	// lines are kept.
	type line struct {
		doc  int
		text string
	}
	var warnings, lines []line
	report := func(r inject.Result) {
		for _, w := range r.Warnings {
			warnings = append(warnings, line{r.Doc, w})
		}
		lines = append(lines, line{r.Doc, r.String()})
	}
	if o.Quiet {
		report = nil
	}
	if err := in.Stream(cmd.Context(), o.Inputs, manifest.Env{Stdin: io.In}, o.Output, io.Out, report); err != nil {
		return err
	}
	byDoc := func(ls []line) { sort.SliceStable(ls, func(i, j int) bool { return ls[i].doc < ls[j].doc }) }
	byDoc(warnings)
	byDoc(lines)
	var b strings.Builder
	for _, w := range warnings {
		b.WriteString("Warning: " + w.text + "\n")
	}
	for _, l := range lines {
		b.WriteString(l.text + "\n")
	}
	_, err = io.ErrOut.Write([]byte(b.String()))
	return err
}

func injector(io *iostreams.IOStreams, o *Options) (*inject.Injector, error) {
	opts := inject.Options{Namespaces: o.Namespaces, Config: o.Config, Uninject: o.Uninject}
	if o.Manual && !o.Uninject {
		m, err := manualOptions(io, o)
		if err != nil {
			return nil, err
		}
		opts.Manual = m
	}
	return inject.New(opts)
}

// apply sets one setting by its flag name, as a KRM functionConfig gives it.
func (o *Options) apply(name, value string) error {
	boolean := func(dst *bool) error {
		b, err := strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("%s: %q is not true or false", name, value)
		}
		*dst = b
		return nil
	}
	switch name {
	case "manual":
		return boolean(&o.Manual)
	case "namespaces":
		return boolean(&o.Namespaces)
	case "control-plane-namespace":
		o.ControlPlaneNS = value
		o.ControlPlaneNSSet = true
	case "install-values":
		o.InstallValues = append(o.InstallValues, strings.Split(value, ",")...)
	case "identity-trust-anchors-file":
		o.TrustAnchorsFile = value
	default:
		for _, f := range inject.ConfigSettings() {
			if f.Name == name {
				if err := f.Check(value); err != nil {
					return fmt.Errorf("%s %q: %w", name, value, err)
				}
				o.Config[inject.ConfigPrefix+name] = value
				return nil
			}
		}
		return fmt.Errorf("unknown setting %q", name)
	}
	return nil
}

// manualOptions reads the install's values and trust anchors for --manual.
func manualOptions(io *iostreams.IOStreams, o *Options) (*inject.Manual, error) {
	ns := o.ControlPlaneNS
	if !o.ControlPlaneNSSet {
		ns = "" // the install values' namespace, else the default
	}
	v, err := install.EffectiveValues(install.Options{
		Version: o.Version, Namespace: ns, Values: values.Options{ValueFiles: o.InstallValues},
	}, io)
	if err != nil {
		return nil, fmt.Errorf("install values: %w", err)
	}
	ns, _ = v["namespace"].(string)
	m := &inject.Manual{Version: o.Version, Namespace: ns, Values: v}
	if o.TrustAnchorsFile != "" {
		b, err := io.ReadFile(o.TrustAnchorsFile)
		if err != nil {
			return nil, fmt.Errorf("--identity-trust-anchors-file: %w", err)
		}
		certs, err := identity.ParseCertificates("--identity-trust-anchors-file "+o.TrustAnchorsFile, b)
		if err != nil {
			return nil, err
		}
		if err := identity.CheckAnchors(o.TrustAnchorsFile, certs); err != nil {
			return nil, err
		}
		m.TrustAnchorsPEM = string(b)
	}
	return m, nil
}

// NewCmdUninject builds `mesh uninject`: it removes what `mesh inject` added.
func NewCmdUninject(io *iostreams.IOStreams, runF func(*Options) error) *cobra.Command {
	opts := &Options{Config: map[string]string{}, Uninject: true}
	cmd := &cobra.Command{
		Use:   "uninject [-f FILE|DIR|URL|-]... [-k DIR] [FILE...]",
		Short: "Remove workloads from the mesh: undo mesh inject (annotation or --manual)",
		Long: `Remove what mesh inject added: the proxy and init containers, their volumes, and the
meshplane.io/inject, meshplane.io/proxy-version and config.meshplane.io/* annotations
(with --namespaces, from Namespaces too), as Linkerd's uninject does. An opt-out,
meshplane.io/inject: disabled, stays, and so do config annotations where nothing shows
an injection (no mesh container, inject annotation, proxy version or marker). Documents are edited in place; output goes to
stdout only if every document is valid.`,
		Example: `  mesh uninject -f meshed.yaml | kubectl apply -f -`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Inputs.Filenames = append(opts.Inputs.Filenames, args...)
			if err := opts.checkInputs(); err != nil {
				return exitcode.Usage(err)
			}
			if opts.Output != "" && opts.Output != inject.YAML && opts.Output != inject.JSON {
				return exitcode.Usage(fmt.Errorf("--output must be yaml or json, not %q", opts.Output))
			}
			if runF != nil {
				return runF(opts)
			}
			return Run(cmd, io, opts)
		},
	}
	inputFlags(cmd, opts)
	cmd.Flags().BoolVar(&opts.KRM, "krm", false, "run as a KRM function: a ResourceList on stdin and stdout")
	return cmd
}

// inputFlags are the flags inject and uninject share.
func inputFlags(cmd *cobra.Command, opts *Options) {
	f := cmd.Flags()
	f.StringArrayVarP(&opts.Inputs.Filenames, "filename", "f", nil, "file, directory, https URL or - (stdin); repeatable")
	f.BoolVarP(&opts.Inputs.Recursive, "recursive", "R", false, "read directories recursively")
	f.StringVarP(&opts.Inputs.Kustomize, "kustomize", "k", "", "build this kustomization directory first")
	f.BoolVar(&opts.Namespaces, "namespaces", false, "also edit Namespace objects")
	f.StringVarP(&opts.Output, "output", "o", "", "output format: yaml or json (default: the input's)")
	f.BoolVarP(&opts.Quiet, "quiet", "q", false, "no report on stderr (warnings too)")
}
