package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tapEvent is what the test reads of mesh tap -o json (controlplane/api/tap.Event).
type tapEvent struct {
	Type           string              `json:"type"`
	Proxy          string              `json:"proxy"`
	Direction      string              `json:"direction"`
	Path           string              `json:"path"`
	Status         int                 `json:"status"`
	ClientID       string              `json:"clientId"`
	TLS            bool                `json:"tls"`
	RequestHeaders map[string][]string `json:"requestHeaders"`
}

// testTap is mesh tap on the real node (issue 14), through the API server's
// pods/portforward and kubelet: web's live requests from the meshed client, with the
// client's mTLS identity, and never a redacted header; and a namespace ServiceAccount
// holding only docs/tap.md's Role taps in its namespace and is refused in another.
func (n *node) testTap(t *testing.T) {
	const marker = "/?tap-test=1"
	client := n.onePod(auto, "client")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	tap := exec.CommandContext(ctx, n.mesh, "tap", "deploy/web", "-n", auto, "--path", marker, "-o", "json", "--max-events", "10", "--timeout", "90s")
	tap.Env = append(os.Environ(), "KUBECONFIG="+n.kubeconfig)
	tap.Stdout, tap.Stderr = &stdout, &stderr
	if err := tap.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- tap.Wait() }()
	target := "http://web:8080" + marker
	headers := "&header=" + url.QueryEscape("Authorization: Bearer secret-token") + "&header=" + url.QueryEscape("Cookie: session=secret-cookie") + "&header=" + url.QueryEscape("X-Visible: yes")
	var tapErr error
send:
	for {
		if _, err := runLoad(client, "http", url.QueryEscape(target)+headers, 5, 1, 0); err != nil {
			t.Fatal(err)
		}
		select {
		case tapErr = <-done:
			break send
		case <-time.After(time.Second):
		}
	}
	if tapErr != nil {
		t.Fatalf("mesh tap deploy/web: %v\nstdout:\n%s\nstderr:\n%s", tapErr, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, secret := range []string{"secret-token", "secret-cookie", "Authorization", "Cookie"} {
		if strings.Contains(out, secret) {
			t.Errorf("mesh tap shows the redacted %q:\n%s", secret, out)
		}
	}
	id := "default." + auto + ".serviceaccount.identity.cluster.local"
	events := 0
	for sc := bufio.NewScanner(strings.NewReader(out)); sc.Scan(); {
		var ev tapEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("mesh tap -o json: %v: %s", err, sc.Text())
		}
		if ev.Type != "http" {
			continue
		}
		events++
		if ev.Direction != "inbound" || ev.Path != marker || ev.Status != 200 || !ev.TLS || ev.ClientID != id ||
			!strings.HasPrefix(ev.Proxy, auto+"/web-") || strings.Join(ev.RequestHeaders["X-Visible"], ",") != "yes" {
			t.Errorf("tap event %s: want inbound %s, 200 over mTLS from %s, seen by a web pod, with X-Visible: yes", sc.Text(), marker, id)
		}
	}
	if events != 10 {
		t.Errorf("mesh tap --max-events 10 printed %d request events:\n%s", events, out)
	}

	// A namespace user: docs/tap.md's Role in demo-auto, nothing elsewhere.
	role := fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata: {name: tapper, namespace: %[1]s}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: mesh-tap, namespace: %[1]s}
rules:
- apiGroups: [""]
  resources: [pods, services]
  verbs: [get, list]
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets, replicasets]
  verbs: [get]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get]
- apiGroups: [""]
  resources: [pods/portforward]
  verbs: [create]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: mesh-tap, namespace: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: mesh-tap}
subjects:
- {kind: ServiceAccount, name: tapper, namespace: %[1]s}
`, auto)
	n.apply("", []byte(role))
	kc := n.tokenKubeconfig(t, strings.TrimSpace(n.kc("create", "token", "tapper", "-n", auto)))
	o, e, err := n.run(nil, n.mesh, "tap", "deploy/load", "-n", auto, "--kubeconfig", kc, "-o", "json", "--max-events", "1", "--timeout", "60s")
	if err != nil || !strings.Contains(o, `"type":"http"`) {
		t.Errorf("mesh tap as a namespace ServiceAccount in its namespace: %v\nstdout:\n%s\nstderr:\n%s", err, o, e)
	}
	o, e, err = n.run(nil, n.mesh, "tap", "deploy/web", "-n", manual, "--kubeconfig", kc, "-o", "json", "--max-events", "1", "--timeout", "30s")
	if err == nil || !strings.Contains(strings.ToLower(e), "forbidden") || strings.Contains(o, `"type":"http"`) {
		t.Errorf("mesh tap as a namespace ServiceAccount in another namespace: %v, want refused (forbidden)\nstdout:\n%s\nstderr:\n%s", err, o, e)
	}
}

// tokenKubeconfig writes a kubeconfig for the node's API server that authenticates
// with token.
func (n *node) tokenKubeconfig(t *testing.T, token string) string {
	t.Helper()
	server := strings.TrimSpace(n.kc("config", "view", "--raw", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"))
	ca := strings.TrimSpace(n.kc("config", "view", "--raw", "--minify", "-o", "jsonpath={.clusters[0].cluster.certificate-authority-data}"))
	if ca == "" {
		file := strings.TrimSpace(n.kc("config", "view", "--raw", "--minify", "-o", "jsonpath={.clusters[0].cluster.certificate-authority}"))
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		ca = base64.StdEncoding.EncodeToString(b)
	}
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: node
  cluster: {server: %q, certificate-authority-data: %s}
users:
- name: tapper
  user: {token: %q}
contexts:
- name: tapper
  context: {cluster: node, user: tapper}
current-context: tapper
`, server, ca, token)
	file := filepath.Join(n.dir, "tapper.kubeconfig")
	if err := os.WriteFile(file, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}
