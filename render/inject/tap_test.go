package inject

import (
	"strings"
	"testing"

	"github.com/meshplane/mesh/controlplane/api/proxyenv"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/values"
)

// The tap's install-wide values (proxy.tap.*) reach every injected proxy as its
// environment, a pod's config.meshplane.io/tap-* annotations override them, values of
// an install that predates them leave the proxy's defaults, and an invalid value,
// install-wide or per pod, is an error naming it.
func TestManualTapSettings(t *testing.T) {
	t.Parallel()
	manual := func(t *testing.T, set ...string) *Manual {
		t.Helper()
		v, err := install.EffectiveValues(install.Options{Version: "v1.2.3", Values: values.Options{Values: set}}, readerFor{})
		if err != nil {
			t.Fatal(err)
		}
		return &Manual{Version: "v1.2.3", Namespace: install.DefaultNamespace, Values: v}
	}
	const unset = "(unset)"
	custom := []string{"proxy.tap.maxEventsPerSecond=250", "proxy.tap.redactHeaders={X-Api-Key,X-Session}"}
	for _, tc := range []struct {
		name         string
		m            *Manual
		cfg          map[string]string
		rate, redact string
	}{
		{"chart defaults", manual(t), nil, "100", unset},
		{"install-wide", manual(t, custom...), nil, "250", "X-Api-Key,X-Session"},
		{"annotations override", manual(t, custom...), map[string]string{
			ConfigPrefix + "tap-max-events-per-second": "10", ConfigPrefix + "tap-redact-headers": "X-Other"}, "10", "X-Other"},
		{"one annotation", manual(t, custom...), map[string]string{ConfigPrefix + "tap-max-events-per-second": "2.5"}, "2.5", "X-Api-Key,X-Session"},
		{"an older install's values", withoutKey(manual(t), "proxy", "tap"), nil, unset, unset},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := tc.m.Sidecar(tc.cfg, []string{"8080"})
			if err != nil {
				t.Fatal(err)
			}
			env := map[string]string{}
			for _, c := range append(sc.InitContainers, sc.Containers...) {
				for _, e := range c.Env {
					if c.Name == ProxyContainer {
						env[e.Name] = e.Value
					}
				}
			}
			for name, want := range map[string]string{proxyenv.TapMaxEventsPerSecond: tc.rate, proxyenv.TapRedactHeaders: tc.redact} {
				got, ok := env[name]
				if !ok {
					got = unset
				}
				if got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}

	bad := func(path string, v any) *Manual {
		m := manual(t)
		values.Set(m.Values, path, v)
		return m
	}
	for _, tc := range []struct {
		name string
		m    *Manual
		cfg  map[string]string
		want string
	}{
		{"rate 0", bad("proxy.tap.maxEventsPerSecond", float64(0)), nil, `values: proxy.tap.maxEventsPerSecond "0": want a number of events per second above 0`},
		{"rate too high", bad("proxy.tap.maxEventsPerSecond", float64(2e6)), nil, `values: proxy.tap.maxEventsPerSecond "2000000"`},
		{"rate not a number", bad("proxy.tap.maxEventsPerSecond", "lots"), nil, `values: proxy.tap.maxEventsPerSecond "lots"`},
		{"header not a token", bad("proxy.tap.redactHeaders", []any{"X-Ok", "X Bad"}), nil, `values: proxy.tap.redactHeaders[1]: "X Bad" is not a header name`},
		{"headers not a list", bad("proxy.tap.redactHeaders", "X-Api-Key"), nil, "values: proxy.tap.redactHeaders: want a list of header names"},
		{"annotation rate", manual(t), map[string]string{ConfigPrefix + "tap-max-events-per-second": "0"},
			`config.meshplane.io/tap-max-events-per-second "0": want a number of events per second above 0`},
		{"annotation header", manual(t), map[string]string{ConfigPrefix + "tap-redact-headers": "X-Api-Key,a:b"},
			`config.meshplane.io/tap-redact-headers "X-Api-Key,a:b": "a:b" is not a header name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.m.Sidecar(tc.cfg, []string{"8080"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
		})
	}
}

// withoutKey drops path's last key from m's values, as values recorded by an install
// that predates the key hold them.
func withoutKey(m *Manual, path ...string) *Manual {
	parent, _ := values.Lookup(m.Values, strings.Join(path[:len(path)-1], "."))
	delete(parent.(map[string]any), path[len(path)-1])
	return m
}
