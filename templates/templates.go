// Package templates embeds mesh's Helm charts: mesh-crds (the CustomResourceDefinitions)
// and mesh-control-plane (identity, destination and the proxy injector). The same chart
// directories ship for `helm install`; `mesh install` renders them with the Helm engine.
//
// This package imports nothing from the module: it only carries files.
package templates

import (
	"embed"
	"fmt"
	"io/fs"
)

// Chart names, which are also the chart directories below this package.
const (
	CRDs         = "mesh-crds"
	ControlPlane = "mesh-control-plane"
)

//go:embed all:mesh-crds all:mesh-control-plane
var charts embed.FS

// Chart returns the files of the named chart, rooted at the chart directory.
func Chart(name string) (fs.FS, error) {
	switch name {
	case CRDs, ControlPlane:
		return fs.Sub(charts, name)
	default:
		return nil, fmt.Errorf("no embedded chart %q (have %s, %s)", name, CRDs, ControlPlane)
	}
}
