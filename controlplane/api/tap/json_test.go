package tap

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// marshalOracle is what AppendJSON must equal: encoding/json's Marshal.
func marshalOracle(t testing.TB, e *Event) []byte {
	t.Helper()
	want, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return want
}

func checkAppendJSON(t testing.TB, e *Event) {
	t.Helper()
	want := marshalOracle(t, e)
	if got := e.AppendJSON(nil); !bytes.Equal(got, want) {
		t.Fatalf("AppendJSON differs from json.Marshal:\n got %s\nwant %s", got, want)
	}
}

func TestAppendJSONMatchesMarshal(t *testing.T) {
	t.Parallel()
	full := &Event{
		Type: TypeHTTP, ID: 7, Time: time.Date(2026, 12, 3, 17, 0, 1, 123456789, time.UTC), Proxy: "web-1",
		Direction: Outbound, Method: "POST", Scheme: "http", Authority: "api.shop.svc.cluster.local:8080",
		Path: "/api/items?q=<script>&x=\"1\"", Status: 503, GRPCStatus: "14", Error: "no endpoint\n",
		LatencyToHeadersNs: 1500, LatencyToEndNs: -1, RequestBytes: -1, ResponseBytes: 42,
		SrcAddr: "10.0.0.1:5000", DstAddr: "[fd00::1]:8080", ClientID: "web.shop.serviceaccount.identity.cluster.local",
		ServerID: "api", TLS: true, NoTLSReason: "none",
		Dst:   map[string]string{"service": "api", "namespace": "shop", "pod": "api-0", "workloadKind": "deployment"},
		Route: "GET /items/{id}",
		RequestHeaders: map[string][]string{
			"User-Agent": {"curl/8"}, "X-Empty": {}, "X-Nil": nil, "X-Many": {"a", "b\u2028", "\x00\x1f\x7f"},
		},
		ResponseHeaders: map[string][]string{"Content-Type": {"text/plain; charset=utf-8"}},
		Dropped:         3,
	}
	zone := time.FixedZone("x", -7*3600-30*60)
	for name, e := range map[string]*Event{
		"zero":        {},
		"full":        full,
		"dropped":     {Type: TypeDropped, Time: time.Unix(1, 0).In(zone), Dropped: 12},
		"empty maps":  {Type: TypeHTTP, Dst: map[string]string{}, RequestHeaders: map[string][]string{}},
		"invalid utf": {Path: "/\xff\xfe\xc3", Authority: "é\u2029→\U0001F600", Error: "\b\f\r\t\\"},
		"monotonic":   {Time: time.Now()},
	} {
		t.Run(name, func(t *testing.T) { checkAppendJSON(t, e) })
	}
}

// TestAppendJSONEveryField fails when Event gains a field AppendJSON does not know:
// every field set to a non-zero value must change the output.
func TestAppendJSONEveryField(t *testing.T) {
	t.Parallel()
	base := (&Event{}).AppendJSON(nil)
	v := reflect.ValueOf(Event{})
	for i := 0; i < v.NumField(); i++ {
		e := &Event{}
		f := reflect.ValueOf(e).Elem().Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("x")
		case reflect.Int, reflect.Int64:
			f.SetInt(2)
		case reflect.Uint64:
			f.SetUint(2)
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Map:
			m := reflect.MakeMap(f.Type())
			elem := reflect.New(f.Type().Elem()).Elem()
			if elem.Kind() == reflect.Slice {
				elem = reflect.ValueOf([]string{"v"})
			} else {
				elem.SetString("v")
			}
			m.SetMapIndex(reflect.ValueOf("k"), elem)
			f.Set(m)
		case reflect.Struct: // time.Time
			f.Set(reflect.ValueOf(time.Unix(5, 0).UTC()))
		default:
			t.Fatalf("field %s: kind %s not covered by this test", v.Type().Field(i).Name, f.Kind())
		}
		got := e.AppendJSON(nil)
		if bytes.Equal(got, base) {
			t.Errorf("field %s does not reach AppendJSON's output", v.Type().Field(i).Name)
		}
		checkAppendJSON(t, e)
	}
}

func TestAppendJSONRandom(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "Z", "0", " ", "\"", "\\", "<", ">", "&", "\n", "\x00", "\x1f", "\x7f", "é", "\u2028", "\u2029", "\xff", "\xe2\x80", "😀", "/", ":"}
	str := func() string {
		var b []byte
		for n := r.IntN(6); n > 0; n-- {
			b = append(b, alphabet[r.IntN(len(alphabet))]...)
		}
		return string(b)
	}
	for i := 0; i < 2000; i++ {
		e := &Event{Type: str(), ID: r.Uint64N(3), Time: time.Unix(r.Int64N(1<<35), r.Int64N(1e9)).UTC(),
			Method: str(), Path: str(), Authority: str(), Status: r.IntN(3) * 200, TLS: r.IntN(2) == 1,
			RequestBytes: r.Int64N(3) - 1, LatencyToEndNs: r.Int64N(1 << 40), Error: str(), Route: str()}
		if r.IntN(2) == 0 {
			e.Dst = map[string]string{str(): str(), str(): str()}
		}
		if r.IntN(2) == 0 {
			e.ResponseHeaders = map[string][]string{str(): {str(), str()}, str(): nil}
		}
		checkAppendJSON(t, e)
	}
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("GET", "/a?b=<c>", "h:80", "k", "v", int64(3))
	f.Add("\xff", "\u2028", "", "\x00", "\"", int64(-1))
	f.Fuzz(func(t *testing.T, method, path, authority, k, v string, n int64) {
		e := &Event{Type: TypeHTTP, Time: time.Unix(0, n).UTC(), Method: method, Path: path, Authority: authority,
			RequestBytes: n, Dst: map[string]string{k: v}, RequestHeaders: map[string][]string{k: {v, path}}}
		checkAppendJSON(t, e)
	})
}

func BenchmarkAppendJSON(b *testing.B) {
	e := &Event{Type: TypeHTTP, ID: 1, Time: time.Now(), Direction: Inbound, Method: "GET", Scheme: "http",
		Authority: "web.shop.svc.cluster.local:8080", Path: "/api/items", Status: 200, LatencyToHeadersNs: 900000,
		LatencyToEndNs: 1000000, ResponseBytes: 120, SrcAddr: "10.0.0.1:5000", DstAddr: "127.0.0.1:8080",
		ClientID: "web.shop.serviceaccount.identity.cluster.local", ServerID: "api.shop.serviceaccount.identity.cluster.local",
		TLS: true, RequestHeaders: map[string][]string{"User-Agent": {"fortio"}, "Accept": {"*/*"}},
		ResponseHeaders: map[string][]string{"Content-Type": {"text/plain"}}}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = e.AppendJSON(buf[:0])
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		for b.Loop() {
			buf.Reset()
			_ = enc.Encode(e)
		}
	})
}
