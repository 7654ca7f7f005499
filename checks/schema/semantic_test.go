package schema

import (
	"strings"
	"testing"
)

// The rules that changed between minors, for every minor mesh has schemas of: each
// object is rejected (a finding on path) exactly from or up to the minor the API
// server's default feature gates changed.
func TestSemanticPerMinor(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, doc, path string
		rejected        func(minor int) bool
	}{
		{
			// RelaxedServiceNameValidation: alpha (off) in 1.34 and 1.35, on from 1.36.
			name:     "Service name starting with a digit",
			doc:      "apiVersion: v1\nkind: Service\nmetadata: {name: 1st-service}\nspec: {ports: [{port: 80}]}\n",
			path:     "metadata.name",
			rejected: func(m int) bool { return m < 36 },
		},
		{
			name:     "Service name with a dot (never a label)",
			doc:      "apiVersion: v1\nkind: Service\nmetadata: {name: web.shop}\nspec: {ports: [{port: 80}]}\n",
			path:     "metadata.name",
			rejected: func(int) bool { return true },
		},
		{
			// RelaxedEnvironmentVariableValidation: on by default from 1.32.
			name:     "environment variable name that is not a C identifier",
			doc:      "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: a, env: [{name: 1-A.b, value: x}]}]}\n",
			path:     "spec.containers[0].env[0].name",
			rejected: func(m int) bool { return m < 32 },
		},
		{
			name:     "envFrom prefix starting with a digit",
			doc:      "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: a, envFrom: [{prefix: 1a, configMapRef: {name: c}}]}]}\n",
			path:     "spec.containers[0].envFrom[0].prefix",
			rejected: func(m int) bool { return m < 32 },
		},
		{
			name:     "environment variable name with '='",
			doc:      "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: a, env: [{name: A=B, value: x}]}]}\n",
			path:     "spec.containers[0].env[0].name",
			rejected: func(int) bool { return true },
		},
		{
			// kubernetes/kubernetes#130233: serviceName is checked from 1.33.
			name:     "StatefulSet serviceName with a dot",
			doc:      "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s}\nspec:\n  serviceName: db.headless\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: a, image: a}]}\n",
			path:     "spec.serviceName",
			rejected: func(m int) bool { return m >= 33 },
		},
	}
	for _, version := range Versions() {
		v, err := New(version)
		if err != nil {
			t.Fatal(err)
		}
		minor := minorOf(t, version)
		for _, tc := range cases {
			var got []string
			for _, e := range v.Semantic(obj(t, tc.doc)) {
				if strings.HasPrefix(e.Path, tc.path) {
					got = append(got, e.Path+": "+e.Message)
				}
			}
			if want := tc.rejected(minor); (len(got) > 0) != want {
				t.Errorf("%s: %s: rejected %v, want %v (%v)", version, tc.name, len(got) > 0, want, got)
			}
		}
	}
}

// Schedules robfig/cron refuses, some by panicking (a bare "TZ="), are errors, not
// crashes; ones it accepts (an @every under a second is rounded up) are not.
func TestParseSchedule(t *testing.T) {
	t.Parallel()
	for s, ok := range map[string]bool{
		"TZ=": false, "CRON_TZ=": false, "* * * * * * *": false, "0-": false, "*/0 * * * *": false, "@every": false,
		"@every -1s": true, "@every 0s": true, "@yearly": true, "0 0 1 */2 SUN": true, "*/15 9-17 * * 1-5": true,
	} {
		if err := parseSchedule(s); (err == nil) != ok {
			t.Errorf("%q: error %v, want ok %v", s, err, ok)
		}
	}
}
