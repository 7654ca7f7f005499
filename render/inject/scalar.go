package inject

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// scalarStyle is where a scalar is written: in a block collection, inside a flow
// collection, or in a JSON document.
type scalarStyle int

const (
	inBlock scalarStyle = iota
	inFlow
	inJSON
)

// scalarText is the one function that writes a string scalar: plain when a plain
// scalar reads back as exactly s (as a string, for YAML 1.1 and 1.2 readers alike, in
// the context it is written in), double-quoted otherwise. JSON documents always get
// a JSON string. The double-quoted form is valid JSON and valid YAML.
func scalarText(s string, style scalarStyle) string {
	if style != inJSON && plainSafe(s, style == inFlow) {
		return s
	}
	return doubleQuoted(s)
}

// plainSafe reports whether s can be written as a plain scalar (key or value) in a
// block collection, or a flow one, and read back as the same string. It is
// deliberately conservative: letters, digits and "-._/" (names, images, annotation
// keys); inside the text also "=@+$()%", and in block context ":" not followed by a
// space and ","; not starting with an indicator; and not a word that a YAML 1.1 or
// 1.2 reader resolves to a bool, null, number or timestamp.
func plainSafe(s string, flow bool) bool {
	if s == "" || len(s) > 1024 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '/':
		case c == '-':
			if i == 0 && (len(s) == 1 || s[1] == ' ') {
				return false
			}
		case c == '.' || c == '_' || c == '=' || c == '@' || c == '+' || c == '$' || c == '(' || c == ')' || c == '%':
			if i == 0 && c != '$' {
				return false
			}
		case !flow && c == ',' && i > 0:
		case !flow && c == ':' && i > 0 && i+1 < len(s) && s[i+1] != ' ':
		default:
			return false
		}
	}
	return !resolvesToNonString(s)
}

// resolvesToNonString reports whether a plain s would be read as something other than
// a string by YAML 1.2 (yaml.v3) or YAML 1.1 (yaml.v2, sigs.k8s.io/yaml) resolvers.
func resolvesToNonString(s string) bool {
	switch strings.ToLower(s) {
	case "y", "yes", "n", "no", "true", "false", "on", "off", "null", "~", ".inf", ".nan", "-.inf", "+.inf":
		return true
	}
	// Numbers: anything that starts like one (digits, sign, dot) and parses as one in
	// any base or form a resolver knows (0x, 0o, 0b, 1_000, 1e3, sexagesimal 1:30).
	clean := strings.ReplaceAll(s, "_", "")
	if _, err := strconv.ParseFloat(clean, 64); err == nil {
		return true
	}
	if _, err := strconv.ParseInt(clean, 0, 64); err == nil {
		return true
	}
	if _, err := strconv.ParseUint(clean, 0, 64); err == nil {
		return true
	}
	// Base 8 and 2 as YAML 1.1 writes them (0777, 0b101) and 1.2 (0o777).
	if len(clean) > 1 && clean[0] == '0' {
		if _, err := strconv.ParseInt(strings.TrimPrefix(strings.TrimPrefix(clean[1:], "o"), "b"), 8, 64); err == nil {
			return true
		}
	}
	// Sexagesimal numbers (YAML 1.1): 1:30, 190:20:30.15.
	if strings.Contains(s, ":") && strings.Trim(s, "0123456789:_.+-") == "" {
		return true
	}
	// Timestamps (YAML 1.1): 2001-12-14 and the like start with four digits and a dash.
	if len(s) >= 5 && isDigits(s[:4]) && s[4] == '-' {
		return true
	}
	return false
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// doubleQuoted writes s as a double-quoted scalar that YAML and JSON read alike:
// quotes and backslashes escaped, and every character YAML does not allow printed
// raw (controls, DEL, C1, surrogates, U+FEFF, U+FFFE/FFFF, line and paragraph
// separators) as \uXXXX. Invalid UTF-8 bytes become U+FFFD: YAML streams are Unicode.
func doubleQuoted(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == utf8.RuneError:
			b.WriteString(`\ufffd`)
		case !yamlPrintable(r) || r == 0x2028 || r == 0x2029 || r == 0x85:
			b.WriteString(`\u`)
			h := strconv.FormatInt(int64(r), 16)
			b.WriteString(strings.Repeat("0", 4-len(h)) + h)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// yamlPrintable is YAML 1.2's c-printable, less the BOM.
func yamlPrintable(r rune) bool {
	switch {
	case r >= 0x20 && r <= 0x7E:
		return true
	case r >= 0xA0 && r <= 0xD7FF:
		return true
	case r >= 0xE000 && r <= 0xFFFD:
		return r != 0xFEFF
	case r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}

// literalOK tells whether a multi-line s can be written as a literal block scalar
// ("|" or "|-") and read back exactly: printable, no tabs or carriage returns, no
// line with leading or trailing spaces, not starting with an empty line, and at most
// one final newline.
func literalOK(s string) bool {
	if !strings.Contains(strings.TrimSuffix(s, "\n"), "\n") || strings.HasSuffix(s, "\n\n") {
		return false
	}
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if line == "" || strings.TrimSpace(line) != line {
			return false
		}
		for _, r := range line {
			if r == '\t' || r == utf8.RuneError || !yamlPrintable(r) || r == 0x2028 || r == 0x2029 || r == 0x85 {
				return false
			}
		}
	}
	return true
}
