// Package version is the version of mesh's binaries (mesh, mesh-controller and
// mesh-proxy), set at build time by one linker flag for all three, and the formats
// their `version` commands print it in. It imports the standard library only, so that
// the CLI, the control plane and the proxy may all import it.
package version

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
)

// version is set by the linker:
// -X github.com/meshplane/mesh/controlplane/api/version.version=1.2.3 (goreleaser
// stamps {{.Version}}, without a v; images are tagged the same). Nothing writes it at
// run time.
var version = "dev"

// Version is the binaries' version.
func Version() string { return version }

// Outputs are the formats Write takes ("" is the human one).
var Outputs = []string{"json", "yaml", "short"}

// Info is what a `version` command reports. Component names the binary's side in
// the text and the keys: "client" gives "Client version: 1.2.3" and clientVersion,
// "controller" gives "Controller version: 1.2.3" and controllerVersion.
type Info struct {
	Component string
	Version   string
	GoVersion string
	Platform  string
}

// Current is this binary's Info.
func Current(component string) Info {
	return Info{Component: component, Version: version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
}

// CheckOutput tells whether output is a format Write takes.
func CheckOutput(output string) error {
	switch output {
	case "", "json", "yaml", "short":
		return nil
	}
	return fmt.Errorf("--output must be json, yaml or short, not %q", output)
}

// Write prints info in the output format: "" (the human line), json, yaml or short
// (the version alone).
func Write(w io.Writer, info Info, output string) error {
	if err := CheckOutput(output); err != nil {
		return err
	}
	key := info.Component + "Version"
	switch output {
	case "json":
		k, _ := json.Marshal(key)
		v, _ := json.Marshal(info.Version)
		g, _ := json.Marshal(info.GoVersion)
		p, _ := json.Marshal(info.Platform)
		_, err := fmt.Fprintf(w, "{\n  %s: %s,\n  \"goVersion\": %s,\n  \"platform\": %s\n}\n", k, v, g, p)
		return err
	case "yaml":
		_, err := fmt.Fprintf(w, "%s: %s\ngoVersion: %s\nplatform: %s\n", key, info.Version, info.GoVersion, info.Platform)
		return err
	case "short":
		_, err := fmt.Fprintln(w, info.Version)
		return err
	}
	label := info.Component
	if label != "" {
		label = string(label[0]-'a'+'A') + label[1:]
	}
	_, err := fmt.Fprintf(w, "%s version: %s\n", label, info.Version)
	return err
}
