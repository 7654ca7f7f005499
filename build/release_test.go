package build

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/meshplane/mesh/render/inject"
	"github.com/meshplane/mesh/render/install"
)

// expand evaluates a goreleaser template for a release of version (the tag without its
// v), with no environment set.
func expand(t *testing.T, text, version string) string {
	t.Helper()
	s, err := Vars{Version: version}.Expand(text)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The images a release builds are exactly those `mesh install` of that release (its
// CLI version is the ldflag .goreleaser.yaml sets) renders by default: the controller's
// in the Deployments, the proxy's in injected pods (proxy and init container). Each
// image is built for linux/amd64 and linux/arm64 from a binary of the same name, and
// runs as the user the chart's values name.
func TestReleaseImagesMatchInstall(t *testing.T) {
	cfg, err := LoadConfig("..", ReleaseFile)
	if err != nil {
		t.Fatal(err)
	}
	const release = "1.2.3" // goreleaser's .Version for the tag v1.2.3

	// The CLI's version in that release.
	var cliVersion string
	builds := map[string]string{}
	for _, b := range cfg.Builds {
		builds[b.ID] = b.Main
		// The proxy is built without grpc's x/net/trace (html/template and more):
		// about 3 MB less binary, and less resident memory per pod.
		if b.Main == "./proxy/mesh-proxy" && !slices.Contains(b.Tags, "grpcnotrace") {
			t.Errorf("build %s: tags %v, want grpcnotrace", b.ID, b.Tags)
		}
		for _, f := range b.Ldflags {
			if m := regexp.MustCompile(`-X github.com/meshplane/mesh/controlplane/api/version\.version=(\S+)`).FindStringSubmatch(f); m != nil {
				cliVersion = expand(t, m[1], release)
			}
		}
	}
	if cliVersion == "" {
		t.Fatal("no -X .../controlplane/api/version.version ldflag in .goreleaser.yaml")
	}

	// What that CLI renders by default.
	res, err := install.Render(install.Options{Version: cliVersion}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, o := range res.Objects {
		if o.Kind != "Deployment" {
			continue
		}
		for _, m := range regexp.MustCompile(`(?m)^\s*image: (\S+)$`).FindAllSubmatch(o.YAML, -1) {
			want = append(want, string(m[1]))
		}
	}
	in, err := inject.New(inject.Options{Manual: &inject.Manual{Version: cliVersion, Namespace: install.DefaultNamespace, Values: res.Values}})
	if err != nil {
		t.Fatal(err)
	}
	pod, _, err := in.JSON([]byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"app","image":"app:1"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`"image":\s*"([^"]+)"`).FindAllSubmatch(pod, -1) {
		if s := string(m[1]); s != "app:1" {
			want = append(want, s)
		}
	}
	slices.Sort(want)
	want = slices.Compact(want)
	if len(want) != 2 {
		t.Fatalf("install renders images %v, want two (controller and proxy)", want)
	}

	// What the release builds.
	var got []string
	binaries := map[string]string{"./controlplane/mesh-controller": "mesh-controller", "./proxy/mesh-proxy": "mesh-proxy"}
	for _, d := range cfg.DockersV2 {
		for _, img := range d.Images {
			for _, tag := range d.Tags {
				got = append(got, expand(t, img, release)+":"+expand(t, tag, release))
			}
		}
		if !slices.Equal(d.Platforms, []string{"linux/amd64", "linux/arm64"}) {
			t.Errorf("%s: platforms %v, want linux/amd64 and linux/arm64", d.ID, d.Platforms)
		}
		if len(d.IDs) != 1 || binaries[builds[d.IDs[0]]] == "" {
			t.Errorf("%s: builds %v, want the one of mesh-controller or mesh-proxy", d.ID, d.IDs)
			continue
		}
		bin := binaries[builds[d.IDs[0]]]
		df, err := os.ReadFile("../" + d.Dockerfile)
		if err != nil {
			t.Errorf("%s: %v", d.ID, err)
			continue
		}
		if !strings.Contains(string(df), "COPY $TARGETPLATFORM/"+bin+" ") {
			t.Errorf("%s: %s does not copy the %s binary from the build context", d.ID, d.Dockerfile, bin)
		}
		uid := map[string]string{"mesh-controller": "controller.uid", "mesh-proxy": "proxy.uid"}[bin]
		v := res.Values[strings.Split(uid, ".")[0]].(map[string]any)["uid"]
		if want := "USER " + fmt.Sprint(v) + ":" + fmt.Sprint(v); !strings.Contains(string(df), want) {
			t.Errorf("%s: %s does not run as %s (%s)", d.ID, d.Dockerfile, want, uid)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("release %s builds images\n  %v\nbut mesh install %s renders\n  %v", release, got, cliVersion, want)
	}
}
