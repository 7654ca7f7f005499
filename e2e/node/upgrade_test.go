package node

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// previousRelease is the commit the upgrade starts from: main as the session before
// this one landed it (CI passed there). Move it forward when a release is cut; it must
// be in the checkout's history (a shallow clone skips the upgrade, saying so).
const previousRelease = "2f4e9381dd3bb79895575826ebb2a710389f11d8"

// The versions the two releases are stamped and tagged with: the upgrade is one minor,
// as the skew rules allow (docs/lifecycle.md).
const (
	previousVersion = "v0.1.0"
	currentVersion  = "v0.2.0"
)

const versionVar = "github.com/meshplane/mesh/controlplane/api/version.version"

// release is a mesh CLI stamped with a version whose controller and proxy images are
// in the node's containerd.
type release struct{ mesh, version string }

// buildRelease builds, from the source tree src, the mesh CLI stamped with version and
// the controller and proxy images tagged with it (build/images, as make images does),
// and imports the images into the node.
func (n *node) buildRelease(t *testing.T, src, version string) release {
	t.Helper()
	out := filepath.Join(n.dir, version)
	r := release{mesh: filepath.Join(out, "mesh"), version: version}
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s (in %s): %v\n%s", name, strings.Join(args, " "), src, err, b)
		}
	}
	run("go", "build", "-ldflags", "-X "+versionVar+"="+version, "-o", r.mesh, "./cli/mesh")
	run("go", "run", "./build/images", "-root", ".", "-o", filepath.Join(out, "images"), "-version", version, "controller", "proxy")
	run(filepath.Join(n.root, "hack", "cluster.sh"), "load", filepath.Join(out, "images", "controller.tar"), filepath.Join(out, "images", "proxy.tar"))
	return r
}

// previous extracts previousRelease's tree (git archive) and builds its release.
func (n *node) previous(t *testing.T) release {
	t.Helper()
	git := func(args ...string) ([]byte, error) {
		cmd := exec.Command("git", append([]string{"-C", n.root}, args...)...)
		return cmd.Output()
	}
	if _, err := git("cat-file", "-e", previousRelease+"^{commit}"); err != nil {
		if shallow, _ := git("rev-parse", "--is-shallow-repository"); strings.TrimSpace(string(shallow)) == "true" {
			t.Skipf("the previous release %s is not in this shallow clone: the upgrade from it needs the history", previousRelease)
		}
		t.Fatalf("the previous release %s is not in this checkout's history: %v", previousRelease, err)
	}
	src := filepath.Join(n.dir, "previous-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	archive := exec.Command("sh", "-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "sh", n.root, previousRelease, src)
	if b, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("git archive %s: %v\n%s", previousRelease, err, b)
	}
	return n.buildRelease(t, src, previousVersion)
}

// meshAt runs a release's CLI, which has to exit 0.
func (n *node) meshAt(r release, stdin []byte, args ...string) string {
	n.t.Helper()
	o, e, err := n.run(stdin, r.mesh, args...)
	if err != nil {
		n.t.Fatalf("mesh %s (%s) %s: %v\nstdout:\n%s\nstderr:\n%s", r.version, r.mesh, strings.Join(args, " "), err, o, e)
	}
	return o
}

// proxyVersions is `mesh version -o json` of a release's CLI: the control plane's
// version and, per namespace/kind/name, the versions its proxies run.
func (n *node) proxyVersions(r release) (string, map[string][]string) {
	n.t.Helper()
	var v struct {
		ControlPlane struct{ Version string } `json:"controlPlane"`
		Proxies      []struct {
			Namespace, Kind, Name string
			Versions              []struct{ Version string }
		} `json:"proxies"`
	}
	out := n.meshAt(r, nil, "version", "-o", "json")
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		n.t.Fatalf("mesh version -o json: %v\n%s", err, out)
	}
	m := map[string][]string{}
	for _, w := range v.Proxies {
		key := w.Namespace + "/" + strings.ToLower(w.Kind) + "/" + w.Name
		for _, pv := range w.Versions {
			m[key] = append(m[key], pv.Version)
		}
	}
	return v.ControlPlane.Version, m
}

// restart rolls the Deployments of ns and waits for the rollouts.
func (n *node) restart(ns string, deployments ...string) {
	n.t.Helper()
	for _, d := range deployments {
		n.kc("rollout", "restart", "deploy/"+d, "-n", ns)
	}
	for _, d := range deployments {
		n.kc("rollout", "status", "deploy/"+d, "-n", ns, "--timeout=300s")
	}
}

// loadSince waits until the continuous load has sent more requests than after, then
// returns its counters.
func (n *node) loadSince(t *testing.T, load pod, after, more int) stats {
	t.Helper()
	eventually(t, 90*time.Second, func() string {
		if got := n.loadStats(load, false).Requests; got < after+more {
			return fmt.Sprintf("the load sent %d requests since, want %d", got-after, more)
		}
		return ""
	})
	return n.loadStats(load, false)
}

// testUpgrade is issue 15's upgrade proof: from the previous release's render (built
// from previousRelease, its images included) to this one with mesh upgrade, under the
// demo's constant load, then the proxies by a rolling restart: no request fails, mesh
// check passes and mesh version shows every proxy of the namespace at the new version.
func (n *node) testUpgrade(t *testing.T) {
	prev := n.previous(t)
	cur := n.buildRelease(t, n.root, currentVersion)

	// The previous release, installed as a user of it did (its render, server-side
	// apply as mesh), and the demo's proxies restarted onto it.
	n.must([]byte(n.meshAt(prev, nil, "install")), n.kubectl, "apply", "--server-side", "--field-manager=mesh", "--force-conflicts", "-f", "-")
	n.waitAvailable("mesh-system")
	n.restart(auto, "web", "client", "load")
	n.waitAvailable(auto)
	// (eventually: the old pods may still be terminating)
	eventually(t, 120*time.Second, func() string {
		if cp, proxies := n.proxyVersions(cur); cp != previousVersion || strings.Join(proxies[auto+"/deployment/web"], ",") != previousVersion {
			return fmt.Sprintf("before the upgrade: control plane %s, %s/web's proxies %v; want both at %s", cp, auto, proxies[auto+"/deployment/web"], previousVersion)
		}
		return ""
	})

	// The values from Git: the install used the defaults.
	values := filepath.Join(n.dir, "values.yaml")
	if err := os.WriteFile(values, []byte("# mesh install's values, as committed\n{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	load := n.onePod(auto, "load")
	n.loadStats(load, true)
	o, e, err := n.run(nil, cur.mesh, "upgrade", "--from", values, "--timeout", "5m")
	if err != nil {
		t.Fatalf("mesh upgrade --from values.yaml: %v\nstdout:\n%s\nstderr:\n%s", err, o, e)
	}
	cpDone := n.loadStats(load, false)
	// Then the data plane: web and client roll onto the new proxy while load sends.
	n.restart(auto, "web", "client")
	s := n.loadSince(t, load, n.loadStats(load, false).Requests, 100)
	t.Logf("upgrade under load: %d requests, %d failed (%d requests, %d failed, by the end of the control plane's upgrade)", s.Requests, s.Failed, cpDone.Requests, cpDone.Failed)
	if s.Failed != 0 || s.OK < 100 {
		t.Errorf("upgrade %s → %s under load: %d ok, %d failed %v (control plane's phase: %d failed %v)", previousVersion, currentVersion, s.OK, s.Failed, s.Errors, cpDone.Failed, cpDone.Errors)
		n.logs(t, auto, "app=load", "mesh-proxy")
		n.logs(t, auto, "app=web", "mesh-proxy")
	}
	n.restart(auto, "load")

	eventually(t, 90*time.Second, func() string {
		if o, e, err := n.run(nil, cur.mesh, "check"); err != nil {
			return fmt.Sprintf("mesh check after the upgrade: %v\n%s%s", err, o, e)
		}
		return ""
	})
	eventually(t, 120*time.Second, func() string {
		cp, proxies := n.proxyVersions(cur)
		if cp != currentVersion {
			return fmt.Sprintf("after the upgrade the control plane runs %s, want %s", cp, currentVersion)
		}
		for _, d := range []string{"web", "client", "load"} {
			if got := proxies[auto+"/deployment/"+d]; strings.Join(got, ",") != currentVersion {
				return fmt.Sprintf("after the upgrade %s/%s's proxies run %v, want all at %s", auto, d, got, currentVersion)
			}
		}
		// The manually injected workloads keep their proxies until re-injected, and
		// mesh version shows them.
		if got := proxies[manual+"/deployment/web"]; len(got) == 0 {
			return fmt.Sprintf("mesh version does not list %s/web's proxies after the upgrade: %v", manual, proxies)
		}
		return ""
	})
}

// logs logs the last lines of container c of the pods of ns matching selector (and of
// their previous instances): what a failure needs to be understood.
func (n *node) logs(t *testing.T, ns, selector, c string) {
	t.Helper()
	o, e, err := n.run(nil, n.kubectl, "logs", "-n", ns, "-l", selector, "-c", c, "--tail=80", "--prefix")
	t.Logf("kubectl logs -n %s -l %s -c %s (%v):\n%s%s", ns, selector, c, err, o, e)
}
