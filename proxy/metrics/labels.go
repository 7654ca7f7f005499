package metrics

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxLabelLen bounds a label value, in bytes (before UTF-8 repair).
const maxLabelLen = 256

// sanitize makes v a valid, bounded label value: Prometheus refuses label values
// that are not UTF-8, and a Host header can be anything.
func sanitize(v string) string {
	if len(v) > maxLabelLen {
		v = v[:maxLabelLen]
	}
	if !utf8.ValidString(v) {
		v = strings.ToValidUTF8(v, "\uFFFD")
	}
	return v
}

// tlsValues returns the tls and no_tls_reason label values.
func tlsValues(tls bool, reason string) (string, string) {
	if tls {
		return "true", ""
	}
	return "false", reason
}

// peerIDs puts the peer identity in client_id (inbound) or server_id (otherwise).
func peerIDs(direction, id string) (client, server string) {
	if direction == "inbound" {
		return id, ""
	}
	return "", id
}

// statusValue is the status_code label: "" when there was no response.
func statusValue(status int) string {
	if status == 0 {
		return ""
	}
	return strconv.Itoa(status)
}

// failed classifies a response: no response, a 5xx, or a non-OK gRPC status.
func failed(status int, grpcStatus string) bool {
	return status == 0 || status >= 500 || (grpcStatus != "" && grpcStatus != "0")
}

func classification(failure bool) string {
	if failure {
		return "failure"
	}
	return "success"
}
