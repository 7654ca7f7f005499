package versions

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"sigs.k8s.io/yaml"
)

// View is everything `mesh version` prints with cluster access: the client's version
// and the cluster's report.
type View struct {
	ClientVersion string `json:"clientVersion"`
	GoVersion     string `json:"goVersion"`
	Platform      string `json:"platform"`
	Report
}

// Write prints the view: "" is the human text (the client line, the control plane
// line, then a table of the meshed workloads), short the two versions alone, one a
// line, json and yaml the whole view.
func Write(w io.Writer, v View, output string) error {
	switch output {
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	case "short":
		_, err := fmt.Fprintf(w, "%s\n%s\n", v.ClientVersion, controlPlane(v.ControlPlane, true))
		return err
	case "":
	default:
		return fmt.Errorf("--output must be json, yaml or short, not %q", output)
	}
	fmt.Fprintf(w, "Client version: %s\n", v.ClientVersion)
	fmt.Fprintf(w, "Control plane version: %s\n", controlPlane(v.ControlPlane, false))
	if len(v.Proxies) == 0 {
		_, err := fmt.Fprintln(w, "No meshed pods.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tKIND\tNAME\tPROXY VERSION\tPODS")
	for _, wl := range v.Proxies {
		for _, c := range wl.Versions {
			version := c.Version
			if version == "" {
				version = "(unknown)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", wl.Namespace, wl.Kind, wl.Name, version, c.Pods)
		}
	}
	return tw.Flush()
}

func controlPlane(cp ControlPlane, short bool) string {
	switch {
	case !cp.Installed && short:
		return "none"
	case !cp.Installed:
		return "not installed (no control plane in namespace " + cp.Namespace + ")"
	case short:
		return cp.Version
	}
	return fmt.Sprintf("%s (namespace %s)", cp.Version, cp.Namespace)
}
