package inject_test

import (
	"encoding/json"
	"sort"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/meshplane/mesh/render/inject"
)

// oracleRecord is what the oracle expects the marker inject.OriginalAnnotations to
// say, as docs/inject.md describes it: the original tokens of the annotations and of
// the metadata inject filled, and, when x already had mesh annotations and was not
// injected, the mesh annotations inject added and the values of those it changed.
// Values are compared decoded (canonMarker): the marker records their original text.
type oracleRecord struct {
	Annotations *string           `json:"annotations,omitempty"`
	Metadata    *string           `json:"metadata,omitempty"`
	Added       []string          `json:"added,omitempty"`
	Changed     map[string]string `json:"changed,omitempty"`
	// Refused: the annotations are a null with an anchor, which inject does not fill.
	Refused bool `json:"-"`
}

// value is the marker's expected value: the token alone, or the canonical record.
func (r oracleRecord) value() string {
	if r.Annotations != nil && r.Metadata == nil && r.Added == nil && r.Changed == nil {
		return *r.Annotations
	}
	sort.Strings(r.Added)
	b, _ := json.Marshal(r)
	return string(b)
}

// canonMarker is a marker's value with the texts of its changed values decoded.
func canonMarker(v string) string {
	if !strings.HasPrefix(v, `{"`) {
		return v
	}
	var r oracleRecord
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return "invalid record: " + v
	}
	for k, text := range r.Changed {
		var m map[string]string
		if err := yamlv3.Unmarshal([]byte("k: "+text), &m); err != nil {
			return "invalid changed text: " + v
		}
		r.Changed[k] = m["k"]
	}
	return r.value()
}

// canonMarkers applies canonMarker to the markers of objs' pod templates.
func canonMarkers(objs []runtime.Object) {
	for _, o := range objs {
		pt, store := template(o)
		if pt == nil {
			continue
		}
		if v, ok := pt.Annotations[inject.OriginalAnnotations]; ok {
			pt.Annotations[inject.OriginalAnnotations] = canonMarker(v)
			store()
		}
	}
}

// tracking is the record's added and changed part for a pod template whose
// annotations were pre before inject and are after it: none unless pre holds a mesh
// annotation and not meshplane.io/inject: enabled.
func tracking(r *oracleRecord, pre, after map[string]string) {
	if pre[inject.InjectAnnotation] == inject.Enabled || len(meshAnnotations(pre)) == 0 {
		return
	}
	for k, v := range after {
		old, had := pre[k]
		switch {
		case k == inject.OriginalAnnotations || len(meshAnnotations(map[string]string{k: v})) == 0:
		case !had:
			r.Added = append(r.Added, k)
		case old != v:
			if r.Changed == nil {
				r.Changed = map[string]string{}
			}
			r.Changed[k] = old
		}
	}
}
