package install

import (
	"strings"
	"testing"
)

// BenchmarkRender is the in-process cost of `mesh install`: load both charts, build and
// validate values, render, split and order.
func BenchmarkRender(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"default", Options{Version: testVersion}},
		{"ha", Options{Version: testVersion, HA: true}},
		{"external-issuer-secret", Options{Version: testVersion, TrustAnchorsFile: "testdata/pki/ca.crt",
			IssuerCertFile: "testdata/pki/issuer.crt", IssuerKeyFile: "testdata/pki/issuer.key"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Render(tc.opts, fileReader{strings.NewReader("")}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
