package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// `images -registry R -push proxy` (hack/push-images.sh) writes the proxy image to a
// registry under R, as the archive holds it, tagged as `mesh install --set
// image.registry=R` renders it.
func TestPush(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the proxy")
	}
	if err := exec.Command("dpkg-query", "-L", "iptables").Run(); err != nil {
		t.Skipf("the proxy image's local build needs Debian's iptables package: %v", err)
	}
	srv := httptest.NewServer(registry.New()) // an in-memory registry on loopback
	t.Cleanup(srv.Close)
	reg := strings.TrimPrefix(srv.URL, "http://") + "/meshplane"
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := Run(context.Background(), []string{"-root", "../..", "-o", out, "-version", "9.9.9", "-registry", reg, "-push", "proxy"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	ref := reg + "/proxy:9.9.9"
	if got, want := stdout.String(), filepath.Join(out, "proxy.tar")+" "+ref+"\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := remote.Image(tag)
	if err != nil {
		t.Fatal(err)
	}
	local, err := tarball.ImageFromPath(filepath.Join(out, "proxy.tar"), &tag)
	if err != nil {
		t.Fatal(err)
	}
	pd, _ := pushed.Digest()
	ld, _ := local.Digest()
	if pd != ld || pd.Hex == "" {
		t.Errorf("pushed %s, the archive holds %s", pd, ld)
	}
	if code := Run(context.Background(), []string{"-root", "../..", "-o", out, "no-such-image"}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), `no image "no-such-image"`) {
		t.Errorf("unknown image: exit %d, %s", code, stderr.String())
	}
}
