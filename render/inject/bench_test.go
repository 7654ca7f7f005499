package inject

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/meshplane/mesh/render/manifest"
)

// deployments is n realistic Deployments (about 800 bytes each) as one YAML stream.
func deployments(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-%d
  namespace: shop
  labels:
    app.kubernetes.io/name: app-%d
spec:
  replicas: 2
  selector:
    matchLabels:
      app.kubernetes.io/name: app-%d
  template:
    metadata:
      labels:
        app.kubernetes.io/name: app-%d
    spec:
      containers:
      - name: app
        image: registry.example.com/shop/app-%d:1.4.2
        args: ["--port=8080", "--log-level=info"]
        ports:
        - name: http
          containerPort: 8080
        env:
        - name: DATABASE_URL
          value: postgres://db.shop.svc:5432/shop
        resources:
          requests: {cpu: 100m, memory: 128Mi}
          limits: {memory: 256Mi}
        readinessProbe:
          httpGet: {path: /healthz, port: http}
`, i, i, i, i, i)
	}
	return b.String()
}

// BenchmarkStream1000 is `mesh inject` over 1,000 Deployments, in process.
func BenchmarkStream1000(b *testing.B) {
	input := deployments(1000)
	for _, mode := range []struct {
		name string
		opts Options
	}{
		{"annotation", Options{}},
		{"manual", Options{Manual: manualOptions(b, "")}},
		{"uninject", Options{Uninject: true}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			in := newInjector(b, mode.opts)
			b.SetBytes(int64(len(input)))
			b.ReportAllocs()
			for b.Loop() {
				err := in.Stream(context.Background(), manifest.Inputs{Filenames: []string{"-"}}, manifest.Env{Stdin: strings.NewReader(input)}, Auto, io.Discard, nil)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
