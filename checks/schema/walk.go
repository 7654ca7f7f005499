package schema

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/resource"
)

const (
	refPrefix   = "#/components/schemas/"
	quantityDef = "io.k8s.apimachinery.pkg.api.resource.Quantity"
	objectMeta  = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
)

// walker checks one value against a schema given as decoded JSON (map[string]any),
// collecting errors. It is used once per Validate call.
type walker struct {
	defs map[string]any // $ref targets
	// builtin: the schema is a published Kubernetes document, where an object schema
	// with neither properties nor additionalProperties (RawExtension, FieldsV1) takes
	// any fields. In a CRD schema such an object keeps no fields.
	builtin bool
	// customRoot: apiVersion and kind at the top are allowed without being declared.
	customRoot bool
	errs       []FieldError
}

func (w *walker) add(path, format string, args ...any) {
	w.errs = append(w.errs, FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
}

func joinKey(path, key string) string {
	simple := key != ""
	for _, r := range key {
		word := r == '_' || r == '-' || r == '$' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !word {
			simple = false
			break
		}
	}
	switch {
	case !simple:
		return path + "[" + strconv.Quote(key) + "]"
	case path == "":
		return key
	default:
		return path + "." + key
	}
}

// flatten returns s and every schema it includes through $ref and allOf, and whether
// one of them is the Quantity type.
func (w *walker) flatten(path string, s any, out []map[string]any, quantity bool, depth int) ([]map[string]any, bool) {
	m, ok := s.(map[string]any)
	if !ok {
		return out, quantity
	}
	if depth > 64 {
		w.add(path, "schema error: $ref/allOf nested too deep")
		return out, quantity
	}
	out = append(out, m)
	if ref, ok := m["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, refPrefix)
		if name == quantityDef {
			quantity = true
		}
		if t, ok := w.defs[name]; ok {
			out, quantity = w.flatten(path, t, out, quantity, depth+1)
		} else {
			w.add(path, "schema error: unresolved $ref %q", ref)
		}
	}
	if all, ok := m["allOf"].([]any); ok {
		for _, x := range all {
			out, quantity = w.flatten(path, x, out, quantity, depth+1)
		}
	}
	return out, quantity
}

// validate checks v against schema s. strict makes fields not in the schema errors;
// it is off inside anyOf, oneOf and not, which only add value constraints.
func (w *walker) validate(path string, s any, v any, strict bool) {
	ms, quantity := w.flatten(path, s, nil, false, 0)
	if v == nil || len(ms) == 0 {
		return // null means unset; the API server drops it
	}
	if quantity {
		switch x := v.(type) {
		case string:
			if _, err := resource.ParseQuantity(x); err != nil {
				w.add(path, "invalid quantity %q: %v", x, err)
			}
		default:
			if _, ok := number(v); !ok {
				w.add(path, "must be a quantity (string or number), got %s", typeName(v))
			}
		}
		return
	}
	intOrString := false
	for _, m := range ms {
		if m["format"] == "int-or-string" || m["x-kubernetes-int-or-string"] == true {
			intOrString = true
		}
	}
	if intOrString {
		if _, isStr := v.(string); !isStr && !isInteger(v) {
			w.add(path, "must be an integer or a string, got %s", typeName(v))
			return
		}
	} else {
		for _, m := range ms {
			if t, _ := m["type"].(string); t != "" && !hasType(t, v) {
				w.add(path, "must be %s, got %s", article(t), typeName(v))
				return
			}
		}
	}
	for _, m := range ms {
		w.combinators(path, m, v, intOrString)
		w.scalar(path, m, v)
	}
	switch x := v.(type) {
	case map[string]any:
		w.object(path, ms, x, strict)
	case []any:
		w.array(path, ms, x, strict)
	}
}

func (w *walker) matches(path string, s any, v any) bool {
	sub := &walker{defs: w.defs, builtin: w.builtin}
	sub.validate(path, s, v, false)
	return len(sub.errs) == 0
}

// combinators checks oneOf, anyOf and not. Branches that only name a type (as in
// Kubernetes' IntOrString and Quantity) are a type union.
func (w *walker) combinators(path string, m map[string]any, v any, intOrString bool) {
	for _, key := range []string{"oneOf", "anyOf"} {
		branches, ok := m[key].([]any)
		if !ok || len(branches) == 0 {
			continue
		}
		var types []string
		for _, b := range branches {
			bm, _ := b.(map[string]any)
			t, _ := bm["type"].(string)
			if len(bm) != 1 || t == "" {
				types = nil
				break
			}
			types = append(types, t)
		}
		if types != nil {
			if intOrString {
				continue
			}
			ok := false
			for _, t := range types {
				ok = ok || hasType(t, v)
			}
			if !ok {
				w.add(path, "must be %s, got %s", strings.Join(types, " or "), typeName(v))
			}
			continue
		}
		n := 0
		for _, b := range branches {
			if w.matches(path, b, v) {
				n++
			}
		}
		if key == "anyOf" && n == 0 {
			w.add(path, "must match at least one of the anyOf schemas")
		}
		if key == "oneOf" && n != 1 {
			w.add(path, "must match exactly one of the oneOf schemas (matches %d)", n)
		}
	}
	if not, ok := m["not"]; ok && w.matches(path, not, v) {
		w.add(path, "must not match the schema in not")
	}
}

func (w *walker) scalar(path string, m map[string]any, v any) {
	if enum, ok := m["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			if equal(e, v) {
				found = true
				break
			}
		}
		if !found {
			vals := make([]string, len(enum))
			for i, e := range enum {
				b, _ := json.Marshal(e)
				vals[i] = string(b)
			}
			w.add(path, "unsupported value %s: must be one of %s", show(v), strings.Join(vals, ", "))
		}
	}
	format, _ := m["format"].(string)
	switch x := v.(type) {
	case string:
		n := float64(utf8.RuneCountInString(x))
		if l, ok := number(m["minLength"]); ok && n < l {
			w.add(path, "must be at least %v characters long", l)
		}
		if l, ok := number(m["maxLength"]); ok && n > l {
			w.add(path, "must be at most %v characters long", l)
		}
		if p, ok := m["pattern"].(string); ok {
			re, err := regexp.Compile(p)
			if err != nil {
				w.add(path, "schema error: pattern %q: %v", p, err)
			} else if !re.MatchString(x) {
				w.add(path, "%s does not match the pattern %s", show(x), p)
			}
		}
		if msg := checkFormat(format, x); msg != "" {
			w.add(path, "%s is not a valid %s: %s", show(x), format, msg)
		}
	case bool:
	default:
		f, ok := number(v)
		if !ok {
			return
		}
		if format == "int32" && (f < math.MinInt32 || f > math.MaxInt32) {
			w.add(path, "%v is out of range for int32", f)
		}
		exMin, _ := m["exclusiveMinimum"].(bool)
		exMax, _ := m["exclusiveMaximum"].(bool)
		if l, ok := number(m["minimum"]); ok && (f < l || exMin && f == l) {
			w.add(path, "must be greater than %s%v", map[bool]string{true: "", false: "or equal to "}[exMin], l)
		}
		if l, ok := number(m["maximum"]); ok && (f > l || exMax && f == l) {
			w.add(path, "must be less than %s%v", map[bool]string{true: "", false: "or equal to "}[exMax], l)
		}
		if l, ok := number(m["multipleOf"]); ok && l > 0 && math.Mod(f, l) != 0 {
			w.add(path, "must be a multiple of %v", l)
		}
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// checkFormat returns why s is not of the format, or "" if it is or the format is
// not one checked.
func checkFormat(format, s string) string {
	var err error
	switch format {
	case "date-time":
		_, err = time.Parse(time.RFC3339, s)
	case "date":
		_, err = time.Parse(time.DateOnly, s)
	case "byte":
		_, err = base64.StdEncoding.DecodeString(s)
	case "uuid":
		if !uuidRE.MatchString(s) {
			return "want 8-4-4-4-12 hex digits"
		}
	case "ipv4":
		if ip := net.ParseIP(s); ip == nil || ip.To4() == nil {
			return "not an IPv4 address"
		}
	case "ipv6":
		if ip := net.ParseIP(s); ip == nil || ip.To4() != nil {
			return "not an IPv6 address"
		}
	case "cidr":
		_, _, err = net.ParseCIDR(s)
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

func (w *walker) object(path string, ms []map[string]any, obj map[string]any, strict bool) {
	props := map[string][]any{}
	var addl []any
	hasProps, addlAny, preserve, embedded := false, false, false, false
	for _, m := range ms {
		if p, ok := m["properties"].(map[string]any); ok {
			for k, s := range p {
				props[k] = append(props[k], s)
				hasProps = true
			}
		}
		switch a := m["additionalProperties"].(type) {
		case map[string]any:
			addl = append(addl, a)
		case bool:
			addlAny = addlAny || a
		}
		preserve = preserve || m["x-kubernetes-preserve-unknown-fields"] == true
		embedded = embedded || m["x-kubernetes-embedded-resource"] == true
		if req, ok := m["required"].([]any); ok {
			for _, r := range req {
				if k, _ := r.(string); obj[k] == nil {
					w.add(joinKey(path, k), "required field missing")
				}
			}
		}
		n := float64(len(obj))
		if l, ok := number(m["minProperties"]); ok && n < l {
			w.add(path, "must have at least %v fields", l)
		}
		if l, ok := number(m["maxProperties"]); ok && n > l {
			w.add(path, "must have at most %v fields", l)
		}
	}
	freeForm := w.builtin && !hasProps && len(addl) == 0
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		child := joinKey(path, k)
		switch {
		case len(props[k]) > 0:
			for _, s := range props[k] {
				w.validate(child, s, obj[k], strict)
			}
		case len(addl) > 0:
			for _, s := range addl {
				w.validate(child, s, obj[k], strict)
			}
		case addlAny || preserve || freeForm || !strict:
		case (embedded || path == "" && w.customRoot) && (k == "apiVersion" || k == "kind"):
			if _, ok := obj[k].(string); !ok {
				w.add(child, "must be a string, got %s", typeName(obj[k]))
			}
		case embedded && k == "metadata":
			sub := &walker{defs: w.defs, builtin: true}
			sub.validate(child, w.defs[objectMeta], obj[k], true)
			w.errs = append(w.errs, sub.errs...)
		default:
			w.add(child, "unknown field %q", k)
		}
	}
}

func (w *walker) array(path string, ms []map[string]any, arr []any, strict bool) {
	for _, m := range ms {
		n := float64(len(arr))
		if l, ok := number(m["minItems"]); ok && n < l {
			w.add(path, "must have at least %v items", l)
		}
		if l, ok := number(m["maxItems"]); ok && n > l {
			w.add(path, "must have at most %v items", l)
		}
		if items, ok := m["items"]; ok {
			for i, x := range arr {
				w.validate(path+"["+strconv.Itoa(i)+"]", items, x, strict)
			}
		}
		// The API server enforces list types for custom resources; for built-in
		// types duplicates are warnings or checked by type-specific validation.
		if w.builtin {
			continue
		}
		unique := m["uniqueItems"] == true || m["x-kubernetes-list-type"] == "set"
		keys, _ := m["x-kubernetes-list-map-keys"].([]any)
		if m["x-kubernetes-list-type"] != "map" {
			keys = nil
		}
		if !unique && len(keys) == 0 {
			continue
		}
		seen := map[string]int{}
		for i, x := range arr {
			id := x
			if len(keys) > 0 {
				xm, _ := x.(map[string]any)
				t := make([]any, len(keys))
				for j, k := range keys {
					ks, _ := k.(string)
					t[j] = xm[ks]
				}
				id = t
			}
			b, _ := json.Marshal(id)
			if j, dup := seen[string(b)]; dup {
				w.add(path+"["+strconv.Itoa(i)+"]", "duplicate entry %s (same as [%d])", b, j)
			} else {
				seen[string(b)] = i
			}
		}
	}
}

// validateCustomRoot checks a custom resource: metadata against ObjectMeta (and any
// constraints the CRD's schema puts on it), the rest against the CRD's schema.
func (w *walker) validateCustomRoot(s map[string]any, obj map[string]any) {
	rest := make(map[string]any, len(obj))
	for k, x := range obj {
		if k != "metadata" {
			rest[k] = x
		}
	}
	w.customRoot = true
	w.validate("", s, rest, true)
	w.customRoot = false
	if md, ok := obj["metadata"]; ok {
		sub := &walker{defs: w.defs, builtin: true}
		sub.validate("metadata", w.defs[objectMeta], md, true)
		w.errs = append(w.errs, sub.errs...)
		if p, ok := lookup(s, "properties", "metadata").(map[string]any); ok {
			w.validate("metadata", p, md, false)
		}
	}
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int8:
		return float64(x), true
	case int16:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint8:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

func isInteger(v any) bool {
	f, ok := number(v)
	return ok && f == math.Trunc(f) && !math.IsInf(f, 0)
}

func hasType(t string, v any) bool {
	switch t {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "integer":
		return isInteger(v)
	case "number":
		_, ok := number(v)
		return ok
	}
	return true // unknown type names are not ours to reject
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string " + show(v)
	case bool:
		return "boolean"
	}
	if isInteger(v) {
		return "integer"
	}
	if _, ok := number(v); ok {
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

func article(t string) string {
	if t == "object" || t == "array" || t == "integer" {
		return "an " + t
	}
	return "a " + t
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 60 {
		return string(b[:57]) + "..."
	}
	return string(b)
}

func equal(a, b any) bool {
	fa, okA := number(a)
	fb, okB := number(b)
	if okA || okB {
		return okA && okB && fa == fb
	}
	return reflect.DeepEqual(a, b)
}
