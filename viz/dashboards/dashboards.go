// Package dashboards embeds mesh's Grafana dashboards (JSON, schemaVersion 39): the
// top line of every namespace, one namespace's deployments, one deployment's inbound
// and outbound traffic, and one deployment's inbound traffic by route. Their PromQL is Linkerd's, over the labels mesh's
// scrape config gives the proxies' metrics (docs/viz.md); viz/stat's tests run every
// query in them against a real Prometheus. Import them into Grafana as they are, with
// a Prometheus data source.
package dashboards

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
)

//go:embed *.json
var files embed.FS

// Names lists the dashboards' file names, sorted.
func Names() ([]string, error) {
	names, err := fs.Glob(files, "*.json")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

// File returns one dashboard's JSON.
func File(name string) ([]byte, error) {
	b, err := files.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("dashboard %s: %w", name, err)
	}
	return b, nil
}
