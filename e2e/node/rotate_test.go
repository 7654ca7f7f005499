package node

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testRotate is issue 15's trust-anchor rotation on the real node, by docs/identity.md's
// procedure in external mode, under the demo's constant load: trust both anchors,
// roll the issuer and then the proxies, trust the new anchor only. Each step's render
// passes mesh check -f before it is applied, and the live state is verified as the
// page says before the next step. No request fails, and the old anchor is gone at the
// end: from the Secret, every published bundle and every meshed pod's file.
//
// The install starts in bootstrap mode (and, after testUpgrade, at another version):
// it first moves to external mode with the old anchor, this tree's render, and rolls
// every meshed workload, before the load is counted.
func (n *node) testRotate(t *testing.T) {
	pki := func(name string) string {
		dir := filepath.Join(n.dir, name)
		n.mustMesh(nil, "identity", "create", "--out", dir)
		return dir
	}
	old := pki("pki-old")
	bundle := filepath.Join(n.dir, "ca.crt") // identity/ca.crt of the repository
	copyFile(t, filepath.Join(old, "ca.crt"), bundle)
	render := func(issuer string) []byte {
		return []byte(n.mustMesh(nil, "install", "--identity-trust-anchors-file", bundle,
			"--identity-issuer-certificate-file", filepath.Join(issuer, "issuer.crt"), "--identity-issuer-key-file", filepath.Join(issuer, "issuer.key")))
	}
	sync := func(step string, manifests []byte) {
		t.Helper()
		if code, o, e := n.meshCmd(manifests, "check", "-f", "-"); code != 0 {
			t.Fatalf("%s: mesh check -f of the render: exit %d\n%s%s", step, code, o, e)
		}
		n.must(manifests, n.kubectl, "apply", "--server-side", "--field-manager=mesh", "--force-conflicts", "-f", "-")
		n.waitAvailable("mesh-system")
	}
	manualDeploys := func() []string {
		var out []string
		for _, d := range strings.Fields(n.kc("get", "deploy", "-n", manual, "-o", "name")) {
			out = append(out, strings.TrimPrefix(d, "deployment.apps/"))
		}
		return out
	}
	proxiesReady := func(step string) {
		t.Helper()
		eventually(t, 150*time.Second, func() string {
			if code, o, e := n.meshCmd(nil, "check"); code != 0 {
				return fmt.Sprintf("%s: mesh check: exit %d\n%s%s", step, code, o, e)
			}
			if code, o, e := n.meshCmd(nil, "check", "--proxy"); code != 0 {
				return fmt.Sprintf("%s: mesh check --proxy: exit %d\n%s%s", step, code, o, e)
			}
			return ""
		})
	}

	// External mode with the old anchor; every meshed workload rolled onto it.
	sync("external mode", render(old))
	n.restart(auto, "web", "client", "load")
	n.restart(manual, manualDeploys()...)
	proxiesReady("external mode")

	load := n.onePod(auto, "load")
	n.loadStats(load, true)

	// Step 1: the new anchor and issuer; nothing changes in the cluster.
	next := pki("pki-new")
	oldDER, nextDER := certDER(t, filepath.Join(old, "ca.crt")), certDER(t, filepath.Join(next, "ca.crt"))

	// Step 2: trust both anchors; the issuer is unchanged.
	n.rotateBundle(t, bundle, "--add", filepath.Join(next, "ca.crt"), "--issuer-cert", filepath.Join(old, "issuer.crt"))
	sync("step 2", render(old))
	n.waitTrust(t, "step 2", [][]byte{oldDER, nextDER}, oldDER)

	// Step 3: roll the issuer, then the proxies (the load generator first, so that the
	// new one counts the rest: its counters start at zero).
	sync("step 3", render(next))
	n.waitTrust(t, "step 3", [][]byte{oldDER, nextDER}, nextDER)
	before := n.loadStats(load, false)
	if before.Failed != 0 {
		n.logs(t, auto, "app=load", "mesh-proxy")
		n.logs(t, auto, "app=web", "mesh-proxy")
	}
	n.restart(auto, "load")
	load = n.onePod(auto, "load")
	phase := func(what string) { // where a failure happened, if one does
		s := n.loadStats(load, false)
		t.Logf("%s: the new load generator has sent %d requests, %d failed %v", what, s.Requests, s.Failed, s.Errors)
	}
	n.kc("rollout", "restart", "deploy/mesh-destination", "-n", "mesh-system")
	n.waitAvailable("mesh-system")
	phase("destination restarted")
	n.restart(auto, "web", "client")
	n.restart(manual, manualDeploys()...)
	proxiesReady("step 3")
	phase("workloads restarted")

	// Step 4: trust the new anchor only.
	n.rotateBundle(t, bundle, "--remove", filepath.Join(old, "ca.crt"), "--issuer-cert", filepath.Join(next, "issuer.crt"))
	sync("step 4", render(next))
	phase("step 4 applied, control plane rolled")
	n.waitTrust(t, "step 4", [][]byte{nextDER}, nextDER)
	proxiesReady("step 4")
	after := n.loadSince(t, load, n.loadStats(load, false).Requests, 100)
	if after.Failed != 0 {
		n.logs(t, auto, "app=load", "mesh-proxy")
		n.logs(t, auto, "app=web", "mesh-proxy")
	}

	t.Logf("rotation under load: %d requests before the load generator rolled (%d failed), %d after (%d failed)", before.Requests, before.Failed, after.Requests, after.Failed)
	if before.Failed != 0 || after.Failed != 0 || before.OK < 100 || after.OK < 100 {
		t.Errorf("trust-anchor rotation under load: steps 2-3 %d ok, %d failed %v; steps 3-4 %d ok, %d failed %v",
			before.OK, before.Failed, before.Errors, after.OK, after.Failed, after.Errors)
	}
	oldPrint := fingerprint(oldDER)
	if out := n.mustMesh(nil, "identity", "inspect", "-o", "json"); strings.Contains(out, oldPrint) {
		t.Errorf("the old anchor (sha256 %s) is still in mesh identity inspect:\n%s", oldPrint, out)
	}
}

// rotateBundle runs mesh identity rotate bundle --from bundle with args and moves the
// result over bundle, as the procedure does.
func (n *node) rotateBundle(t *testing.T, bundle string, args ...string) {
	t.Helper()
	out := n.mustMesh(nil, append([]string{"identity", "rotate", "bundle", "--from", bundle}, args...)...)
	if err := os.WriteFile(bundle, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitTrust waits until the live install trusts exactly anchors: the issuer Secret's
// ca.crt (mesh identity inspect), every published trust-roots ConfigMap, and the file
// every meshed pod of the demo mounts (read where kubelet keeps it, on this machine),
// with the issuer chaining to issuer.
func (n *node) waitTrust(t *testing.T, step string, anchors [][]byte, issuer []byte) {
	t.Helper()
	want := fingerprints(anchors)
	eventually(t, 180*time.Second, func() string {
		var r struct {
			Issuer *struct {
				ChainsTo   string `json:"chainsTo"`
				ChainValid bool   `json:"chainValid"`
			} `json:"issuer"`
			IssuerAnchors *struct {
				Certificates []struct{ SHA256 string } `json:"certificates"`
			} `json:"issuerAnchors"`
			Published []struct {
				Namespaces           []string `json:"namespaces"`
				Fingerprints         []string `json:"fingerprints"`
				TrustsIssuer         bool     `json:"trustsIssuer"`
				MatchesIssuerAnchors bool     `json:"matchesIssuerAnchors"`
			} `json:"published"`
		}
		code, o, e := n.meshCmd(nil, "identity", "inspect", "-o", "json")
		if code != 0 {
			return fmt.Sprintf("%s: mesh identity inspect: exit %d\n%s%s", step, code, o, e)
		}
		if err := json.Unmarshal([]byte(o), &r); err != nil {
			return fmt.Sprintf("%s: mesh identity inspect -o json: %v\n%s", step, err, o)
		}
		if r.Issuer == nil || !r.Issuer.ChainValid || r.Issuer.ChainsTo != fingerprint(issuer) {
			return fmt.Sprintf("%s: the issuer %+v, want it chaining to %s", step, r.Issuer, fingerprint(issuer))
		}
		var secret []string
		if r.IssuerAnchors != nil {
			for _, c := range r.IssuerAnchors.Certificates {
				secret = append(secret, c.SHA256)
			}
		}
		if slices.Sort(secret); !slices.Equal(secret, want) {
			return fmt.Sprintf("%s: the issuer Secret's ca.crt holds %v, want %v", step, secret, want)
		}
		for _, p := range r.Published {
			got := slices.Clone(p.Fingerprints)
			if slices.Sort(got); !slices.Equal(got, want) || !p.TrustsIssuer || !p.MatchesIssuerAnchors {
				return fmt.Sprintf("%s: published in %v: %v (trusts issuer %v, matches %v), want %v", step, p.Namespaces, got, p.TrustsIssuer, p.MatchesIssuerAnchors, want)
			}
		}
		for _, ns := range []string{auto, manual} {
			for _, p := range n.pods(ns, "app") {
				file := filepath.Join(filepath.Dir(n.kubeconfig), "kubelet", "pods", p.Metadata.UID, "volumes", "kubernetes.io~configmap", "mesh-identity-trust-roots", "ca-bundle.crt")
				b, err := os.ReadFile(file)
				if err != nil {
					return fmt.Sprintf("%s: %s/%s's trust roots: %v", step, ns, p.Metadata.Name, err)
				}
				if got := fingerprints(pemDER(b)); !slices.Equal(got, want) {
					return fmt.Sprintf("%s: %s/%s trusts %v, want %v", step, ns, p.Metadata.Name, got, want)
				}
			}
		}
		return ""
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// certDER is the one certificate of a PEM file.
func certDER(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ders := pemDER(b)
	if len(ders) != 1 {
		t.Fatalf("%s holds %d certificates, want 1", file, len(ders))
	}
	return ders[0]
}

// pemDER is the DER of each CERTIFICATE block of b.
func pemDER(b []byte) [][]byte {
	var out [][]byte
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			return out
		}
		if blk.Type == "CERTIFICATE" {
			out = append(out, blk.Bytes)
		}
	}
}

// fingerprint is a certificate's SHA-256, hex, as mesh identity inspect shows it.
func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// fingerprints are the sorted, distinct fingerprints of ders.
func fingerprints(ders [][]byte) []string {
	var out []string
	for _, d := range ders {
		out = append(out, fingerprint(d))
	}
	slices.Sort(out)
	return slices.Compact(out)
}
