package tap

import (
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends e as encoding/json's Marshal writes it (same bytes: field
// order, omitempty, sorted map keys, HTML-safe string escapes, invalid UTF-8 as
// U+FFFD), without the reflection: the proxy encodes one record per tapped request
// (docs/benchmarks.md, tap overhead). A Time outside years 0-9999, which Marshal
// refuses, is written as Format writes it. TestAppendJSONMatchesMarshal and
// FuzzAppendJSON hold it to encoding/json byte for byte; a change to Event's fields
// must be made here too, and those tests fail until it is.
func (e *Event) AppendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, e.Type)
	if e.ID != 0 {
		b = append(b, `,"id":`...)
		b = strconv.AppendUint(b, e.ID, 10)
	}
	b = append(b, `,"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendField(b, "proxy", e.Proxy)
	b = appendField(b, "direction", e.Direction)
	b = appendField(b, "method", e.Method)
	b = appendField(b, "scheme", e.Scheme)
	b = appendField(b, "authority", e.Authority)
	b = appendField(b, "path", e.Path)
	if e.Status != 0 {
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(e.Status), 10)
	}
	b = appendField(b, "grpcStatus", e.GRPCStatus)
	b = appendField(b, "error", e.Error)
	if e.LatencyToHeadersNs != 0 {
		b = append(b, `,"latencyToHeadersNs":`...)
		b = strconv.AppendInt(b, e.LatencyToHeadersNs, 10)
	}
	if e.LatencyToEndNs != 0 {
		b = append(b, `,"latencyToEndNs":`...)
		b = strconv.AppendInt(b, e.LatencyToEndNs, 10)
	}
	b = append(b, `,"requestBytes":`...)
	b = strconv.AppendInt(b, e.RequestBytes, 10)
	b = append(b, `,"responseBytes":`...)
	b = strconv.AppendInt(b, e.ResponseBytes, 10)
	b = appendField(b, "srcAddr", e.SrcAddr)
	b = appendField(b, "dstAddr", e.DstAddr)
	b = appendField(b, "clientId", e.ClientID)
	b = appendField(b, "serverId", e.ServerID)
	b = append(b, `,"tls":`...)
	b = strconv.AppendBool(b, e.TLS)
	b = appendField(b, "noTlsReason", e.NoTLSReason)
	if len(e.Dst) > 0 {
		b = append(b, `,"dst":{`...)
		var arr [8]string
		for i, k := range sortedKeys(arr[:0], e.Dst) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, e.Dst[k])
		}
		b = append(b, '}')
	}
	b = appendField(b, "route", e.Route)
	b = appendHeaders(b, "requestHeaders", e.RequestHeaders)
	b = appendHeaders(b, "responseHeaders", e.ResponseHeaders)
	if e.Dropped != 0 {
		b = append(b, `,"dropped":`...)
		b = strconv.AppendUint(b, e.Dropped, 10)
	}
	return append(b, '}')
}

// appendField appends ,"name":"v" unless v is empty (omitempty); name needs no escape.
func appendField(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, v)
}

func appendHeaders(b []byte, name string, h map[string][]string) []byte {
	if len(h) == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, `":{`...)
	var arr [16]string
	for i, k := range sortedKeys(arr[:0], h) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		vs := h[k]
		if vs == nil {
			b = append(b, "null"...)
			continue
		}
		b = append(b, '[')
		for j, v := range vs {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendString(b, v)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// sortedKeys appends m's keys to keys (a caller's array: no allocation for a few).
func sortedKeys[V any](keys []string, m map[string]V) []string {
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way encoding/json does with HTML
// escaping on (its default): ", \ and control characters escaped, <, > and & as
// \u003c..., invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
