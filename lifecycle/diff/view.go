package diff

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/yaml"
)

// serverMetadata are the metadata fields the API server manages: never compared.
var serverMetadata = []string{
	"managedFields", "resourceVersion", "uid", "generation", "creationTimestamp",
	"deletionTimestamp", "deletionGracePeriodSeconds", "selfLink",
}

// lastApplied is kubectl's copy of what it last applied: on a Secret, its values.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// view is what the diff shows of an object: the fields of owned (all with a nil set),
// without server-managed fields and status, Secret values as hashes, and the object's
// identity (apiVersion, kind, name, namespace) always.
func view(obj map[string]any, owned *fieldpath.Set) map[string]any {
	c := runtime.DeepCopyJSON(obj)
	delete(c, "status")
	if md, ok := c["metadata"].(map[string]any); ok {
		for _, f := range serverMetadata {
			delete(md, f)
		}
	}
	out, _ := filter(c, owned).(map[string]any)
	if out == nil {
		out = map[string]any{}
	}
	for k, v := range identity(c) {
		if k != "metadata" {
			out[k] = v
			continue
		}
		md, _ := out["metadata"].(map[string]any)
		if md == nil {
			md = map[string]any{}
			out["metadata"] = md
		}
		for mk, mv := range v.(map[string]any) {
			md[mk] = mv
		}
	}
	if isSecret(out) {
		hashSecret(out)
	}
	return out
}

// identity is the object's apiVersion, kind, metadata.name and metadata.namespace.
func identity(obj map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range []string{"apiVersion", "kind"} {
		if v, ok := obj[k]; ok {
			out[k] = v
		}
	}
	md := map[string]any{}
	if m, ok := obj["metadata"].(map[string]any); ok {
		for _, k := range []string{"name", "namespace"} {
			if v, ok := m[k]; ok {
				md[k] = v
			}
		}
	}
	out["metadata"] = md
	return out
}

func isSecret(obj map[string]any) bool {
	return obj["kind"] == "Secret" && obj["apiVersion"] == "v1"
}

// hashSecret replaces every value of data and stringData (and kubectl's
// last-applied copy) by a hash of its bytes: a changed value shows as a changed hash,
// and the value itself never reaches the output.
func hashSecret(obj map[string]any) {
	for _, field := range []string{"data", "stringData"} {
		m, ok := obj[field].(map[string]any)
		if !ok {
			continue
		}
		for k, v := range m {
			s, _ := v.(string)
			b := []byte(s)
			if field == "data" {
				if d, err := base64.StdEncoding.DecodeString(s); err == nil {
					b = d
				}
			}
			m[k] = Hash(b)
		}
	}
	if md, ok := obj["metadata"].(map[string]any); ok {
		if a, ok := md["annotations"].(map[string]any); ok {
			if s, ok := a[lastApplied].(string); ok {
				a[lastApplied] = Hash([]byte(s))
			}
		}
	}
}

// Hash is how a Secret's value is shown: "sha256:" and the first 16 hex digits of the
// SHA-256 of its bytes (decoded from base64 for data). It tells values apart; it is no
// protection for a value that can be guessed.
func Hash(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])[:16]
}

// unified is the unified diff of the object's owned fields, live to merged, with
// kubectl diff's headers, naming the object as live/KIND/NAMESPACE/NAME.
func unified(r *Result) (string, error) {
	var a, b []byte
	var err error
	if r.Live != nil {
		if a, err = yaml.Marshal(r.Live); err != nil {
			return "", err
		}
	}
	if b, err = yaml.Marshal(r.Merged); err != nil {
		return "", err
	}
	name := r.Kind + "/" + r.Name
	if r.Namespace != "" {
		name = r.Kind + "/" + r.Namespace + "/" + r.Name
	}
	from, to := "live/"+name, "merged/"+name
	text, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: lines(a), B: lines(b), FromFile: from, ToFile: to, Context: 3,
	})
	if err != nil {
		return "", err
	}
	if text == "" {
		return "", nil
	}
	return fmt.Sprintf("diff -u -N %s %s\n%s", from, to, text), nil
}

// lines splits text into lines that keep their line breaks, as difflib wants them.
func lines(b []byte) []string {
	out := strings.SplitAfter(string(b), "\n")
	if out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

func deepCopy(m map[string]any) map[string]any { return runtime.DeepCopyJSON(m) }
