package build

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestParseDockerfile(t *testing.T) {
	t.Parallel()
	good := "# c\nFROM debian:bookworm-slim\nRUN apt-get update \\\n && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iptables nftables \\\n && rm -rf /var/lib/apt/lists/*\nARG TARGETPLATFORM\nCOPY $TARGETPLATFORM/mesh-proxy /usr/local/bin/mesh-proxy\nUSER 2102:2102\nENV A=b\nENTRYPOINT [\"/usr/local/bin/mesh-proxy\"]\n"
	d, err := ParseDockerfile("x", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if d.From != "debian:bookworm-slim" || !slices.Equal(d.Packages, []string{"iptables", "nftables"}) || d.User != "2102:2102" ||
		!slices.Equal(d.Entrypoint, []string{"/usr/local/bin/mesh-proxy"}) || !slices.Equal(d.Env, []string{"A=b"}) ||
		len(d.Copies) != 1 || d.Copies[0] != (Copy{"mesh-proxy", "/usr/local/bin/mesh-proxy"}) {
		t.Errorf("parsed %+v", d)
	}
	for _, bad := range []struct{ src, want string }{
		{"COPY a b\n", "x:1: COPY: want COPY $TARGETPLATFORM/<binary> <path>"},
		{"FROM scratch\nRUN curl http://x | sh\n", "x:2: RUN: only apt-get"},
		{"FROM scratch\nENTRYPOINT /bin/sh\n", "x:2: ENTRYPOINT: want the JSON form"},
		{"FROM scratch\nWORKDIR /x\n", "x:2: WORKDIR: not supported"},
		{"FROM scratch\nFROM scratch\n", "only one stage"},
		{"USER 1\n", "x: no FROM"},
		{"FROM scratch\nRUN x \\\n", "continues past the end"},
	} {
		if _, err := ParseDockerfile("x", []byte(bad.src)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: error %v, want %q", bad.src, err, bad.want)
		}
	}
}

// Every image definition resolves: its Dockerfile parses, names a base the local build
// knows, and copies only binaries of its builds; its references parse.
func TestImageDefinitions(t *testing.T) {
	t.Parallel()
	ids := map[string]bool{}
	for _, f := range []string{ReleaseFile, NodeImagesFile} {
		c, err := LoadConfig("..", f)
		if err != nil {
			t.Fatal(err)
		}
		imgs, err := c.Images("..", Vars{Version: "1.2.3"})
		if err != nil {
			t.Fatal(err)
		}
		for _, img := range imgs {
			if ids[img.ID] {
				t.Errorf("%s: image id %s twice", f, img.ID)
			}
			ids[img.ID] = true
			if _, ok := LocalBase(img.Dockerfile.From); !ok {
				t.Errorf("%s: FROM %s has no local base", img.ID, img.Dockerfile.From)
			}
			if len(img.Refs) == 0 {
				t.Errorf("%s: no references", img.ID)
			}
			for _, r := range img.Refs {
				if _, err := name.NewTag(r, name.StrictValidation); err != nil {
					t.Errorf("%s: %v", img.ID, err)
				}
			}
		}
	}
	for _, want := range []string{"controller", "proxy", "pause", "coredns", "demoapp", "loadgen"} {
		if !ids[want] {
			t.Errorf("no image %s", want)
		}
	}
}

// buildImages builds the images ids into dir, as `make images` does, and returns their
// archive paths.
func buildImages(t *testing.T, dir string, ids ...string) map[string]string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	c, err := LoadConfig("..", ReleaseFile)
	if err != nil {
		t.Fatal(err)
	}
	n, err := LoadConfig("..", NodeImagesFile)
	if err != nil {
		t.Fatal(err)
	}
	c.Builds, c.DockersV2 = append(c.Builds, n.Builds...), append(c.DockersV2, n.DockersV2...)
	imgs, err := c.Images("..", Vars{Version: "0.0.0-test"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var log bytes.Buffer
	for _, img := range imgs {
		if !slices.Contains(ids, img.ID) {
			continue
		}
		bins := map[string]string{}
		for bn, b := range img.Binaries {
			p, err := Compile(context.Background(), "..", b, Vars{Version: "0.0.0-test"}, "amd64", filepath.Join(dir, "bin"), &log)
			if err != nil {
				t.Fatalf("%v\n%s", err, log.String())
			}
			bins[bn] = p
		}
		v1img, err := Assemble(img, "amd64", bins, ThisMachine{}, time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, img.ID+".tar")
		if err := WriteArchive(p, v1img, img.Refs); err != nil {
			t.Fatal(err)
		}
		out[img.ID] = p
	}
	return out
}

func debianWithIptables(t *testing.T) {
	t.Helper()
	if err := exec.Command("dpkg-query", "-L", "iptables").Run(); err != nil {
		if os.Getenv("MESH_REQUIRE_NETNS") == "1" {
			t.Fatalf("the proxy image's local build needs Debian's iptables package: %v", err)
		}
		t.Skipf("no Debian iptables package here: %v", err)
	}
}

// Two builds of the same source give byte-identical archives, and the archive loads
// back as the image the Dockerfile describes.
func TestLocalImagesReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the proxy")
	}
	debianWithIptables(t)
	a := buildImages(t, t.TempDir(), "proxy", "pause")
	b := buildImages(t, t.TempDir(), "proxy", "pause")
	for id := range a {
		x, _ := os.ReadFile(a[id])
		y, _ := os.ReadFile(b[id])
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Errorf("%s: two builds differ (%d and %d bytes)", id, len(x), len(y))
		}
	}
	tag, _ := name.NewTag("ghcr.io/meshplane/proxy:0.0.0-test")
	img, err := tarball.ImageFromPath(a["proxy"], &tag)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "2102:2102" || !slices.Equal(cfg.Config.Entrypoint, []string{"/usr/local/bin/mesh-proxy"}) || cfg.OS != "linux" {
		t.Errorf("proxy image config %+v", cfg.Config)
	}
	files := layerFiles(t, a["proxy"], "ghcr.io/meshplane/proxy:0.0.0-test")
	for _, want := range []string{"usr/local/bin/mesh-proxy", "usr/sbin/xtables-nft-multi", "usr/sbin/xtables-legacy-multi", "usr/sbin/iptables-nft-restore", "usr/sbin/iptables-legacy-save", "etc/passwd", "tmp/"} {
		if _, ok := files[want]; !ok {
			t.Errorf("proxy image has no %s", want)
		}
	}
}

// layer opens the one layer of an archive's image ref; close it with t.Cleanup.
func layer(t *testing.T, archive, ref string) *tar.Reader {
	t.Helper()
	tag, _ := name.NewTag(ref)
	img, err := tarball.ImageFromPath(archive, &tag)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Close() })
	return tar.NewReader(rc)
}

// layerFiles reads the one layer of an archive: name -> header.
func layerFiles(t *testing.T, archive, ref string) map[string]*tar.Header {
	t.Helper()
	out := map[string]*tar.Header{}
	tr := layer(t, archive, ref)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = h
	}
}

// The proxy image's own iptables binaries run `mesh-proxy init` with both backends: its
// layer, unpacked, is the root of the init command in a network namespace of the test's.
func TestProxyImageInit(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the proxy")
	}
	require := os.Getenv("MESH_REQUIRE_NETNS") == "1"
	for _, cmd := range []string{"ip", "unshare", "chroot", "mount"} {
		if _, err := exec.LookPath(cmd); err != nil || os.Geteuid() != 0 {
			if require {
				t.Fatalf("needs root and %s: %v", cmd, err)
			}
			t.Skipf("needs root and %s", cmd)
		}
	}
	debianWithIptables(t)
	dir := t.TempDir()
	archive := buildImages(t, dir, "proxy")["proxy"]
	root := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	unpack(t, archive, "ghcr.io/meshplane/proxy:0.0.0-test", root)
	for _, d := range []string{"proc", "dev"} { // what the container runtime mounts
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ns := "mesh-image-" + strconv.Itoa(os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", ns).Run() })
	for _, mode := range []string{"nft", "legacy"} {
		script := fmt.Sprintf("mount -t proc proc %[1]s/proc && mount --rbind /dev %[1]s/dev && "+
			"chroot %[1]s /usr/local/bin/mesh-proxy init -iptables-mode %[2]s -ipv6=false && "+
			"chroot %[1]s /usr/sbin/iptables-%[2]s-save -t nat && "+
			"chroot %[1]s /usr/local/bin/mesh-proxy init -iptables-mode %[2]s -ipv6=false -remove", root, mode)
		out, err := exec.Command("ip", "netns", "exec", ns, "unshare", "--mount", "sh", "-c", script).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", mode, err, out)
		}
		if !strings.Contains(string(out), "-j REDIRECT --to-ports 4143") || !strings.Contains(string(out), "-j REDIRECT --to-ports 4140") {
			t.Errorf("%s: the image's iptables-%s-save shows no redirect rules:\n%s", mode, mode, out)
		}
	}
}

// unpack extracts an archive's single layer into root.
func unpack(t *testing.T, archive, ref, root string) {
	t.Helper()
	tr := layer(t, archive, ref)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, os.FileMode(h.Mode)&os.ModePerm)
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, p)
		case tar.TypeReg:
			var data []byte
			if data, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(p, data, os.FileMode(h.Mode)&os.ModePerm)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
