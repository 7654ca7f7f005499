package install

import (
	"fmt"
	"io/fs"
	"sort"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"

	"github.com/meshplane/mesh/templates"
)

// LoadChart loads an embedded chart. Its appVersion becomes version, as it is stamped
// into the chart that ships with the same release, so templates see one version.
func LoadChart(name, version string) (*chart.Chart, error) {
	fsys, err := templates.Chart(name)
	if err != nil {
		return nil, err
	}
	var files []*loader.BufferedFile
	err = fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		files = append(files, &loader.BufferedFile{Name: path, Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", name, err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	ch, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", name, err)
	}
	if version != "" {
		ch.Metadata.AppVersion = version
	}
	return ch, nil
}

// chartFile returns a file shipped in the chart outside templates/, such as values-ha.yaml.
func chartFile(ch *chart.Chart, name string) ([]byte, error) {
	for _, f := range ch.Files {
		if f.Name == name {
			return f.Data, nil
		}
	}
	return nil, fmt.Errorf("chart %s has no %s", ch.Name(), name)
}
