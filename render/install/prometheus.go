package install

import "github.com/meshplane/mesh/templates"

// PrometheusRelabelFile is the chart file holding the relabel_configs and
// metric_relabel_configs of a scrape of the proxies.
const PrometheusRelabelFile = "files/prometheus-relabel.yaml"

// PrometheusRelabeling returns the relabelling (YAML with relabel_configs and
// metric_relabel_configs) that the Prometheus scrape config of the install uses,
// for tests and docs that must scrape the proxies the same way.
func PrometheusRelabeling() ([]byte, error) {
	ch, err := LoadChart(templates.ControlPlane, "")
	if err != nil {
		return nil, err
	}
	return chartFile(ch, PrometheusRelabelFile)
}

// PrometheusRulesFile is the chart file holding the recording rules of the stat queries.
const PrometheusRulesFile = "files/prometheus-rules.yaml"

// PrometheusRecordingRules returns the recording rules (a Prometheus rule file) the
// install's Prometheus loads.
func PrometheusRecordingRules() ([]byte, error) {
	ch, err := LoadChart(templates.ControlPlane, "")
	if err != nil {
		return nil, err
	}
	return chartFile(ch, PrometheusRulesFile)
}
