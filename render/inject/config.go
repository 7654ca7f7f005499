package inject

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// ConfigSetting is one per-workload setting: the annotation
// config.meshplane.io/<Name>, the inject flag --<Name>, and how its value is checked.
type ConfigSetting struct {
	Name, Usage string
	Check       func(string) error
}

// ConfigSettings lists every config.meshplane.io/* setting.
func ConfigSettings() []ConfigSetting {
	return []ConfigSetting{
		{"proxy-cpu-request", "proxy CPU request (a quantity, e.g. 100m)", quantity},
		{"proxy-cpu-limit", "proxy CPU limit", quantity},
		{"proxy-memory-request", "proxy memory request (e.g. 20Mi)", quantity},
		{"proxy-memory-limit", "proxy memory limit", quantity},
		{"proxy-log-level", "proxy log level (e.g. warn,mesh=debug)", nonEmpty},
		{"proxy-image", "proxy image (registry/name:tag)", nonEmpty},
		{"opaque-ports", "ports proxied as opaque TCP (e.g. 3306,5432-5434)", ports},
		{"http2-ports", "ports that speak HTTP/2 with prior knowledge, h2c or gRPC (no protocol detection)", ports},
		{"skip-inbound-ports", "inbound ports the proxy does not intercept", ports},
		{"skip-outbound-ports", "outbound ports the proxy does not intercept", ports},
		{"skip-subnets", "outbound CIDRs the proxy does not intercept (e.g. 10.0.0.0/8)", cidrs},
		{"tap-redact-headers", "more header names mesh tap never shows (comma-separated; Authorization, Proxy-Authorization, Cookie and Set-Cookie always)", headerNames},
		{"tap-max-events-per-second", "the proxy's cap on tapped events per second, for all tap clients (default 100)", eventRate},
	}
}

// headerNames: comma-separated HTTP field names (RFC 9110 §5.1 tokens).
func headerNames(s string) error {
	for _, h := range strings.Split(s, ",") {
		if h = strings.TrimSpace(h); !httpToken.MatchString(h) {
			return fmt.Errorf("%q is not a header name: want comma-separated names, e.g. X-Api-Key,X-Session", h)
		}
	}
	return nil
}

var httpToken = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// eventRate: a number of events per second above 0, at most 1e6 (what the proxy
// accepts, proxy/config).
func eventRate(s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f > 0) || f > 1e6 {
		return fmt.Errorf("want a number of events per second above 0, at most 1000000")
	}
	return nil
}

// CheckAnnotation checks a meshplane.io/* or config.meshplane.io/* annotation: the key
// must be one mesh knows and the value valid for it. Other keys are not mesh's.
func CheckAnnotation(key, value string) error {
	switch {
	case key == InjectAnnotation:
		if value != Enabled && value != Disabled {
			return fmt.Errorf("%s: %q, want %s or %s", key, value, Enabled, Disabled)
		}
	case key == ProxyVersion:
		if value == "" {
			return fmt.Errorf("%s is empty", key)
		}
	case key == OriginalAnnotations:
		if err := checkRecord(value); err != nil {
			return fmt.Errorf("%s %q: %w", key, value, err)
		}
	case strings.HasPrefix(key, ConfigPrefix):
		name := strings.TrimPrefix(key, ConfigPrefix)
		for _, s := range ConfigSettings() {
			if s.Name == name {
				if err := s.Check(value); err != nil {
					return fmt.Errorf("%s %q: %w", key, value, err)
				}
				return nil
			}
		}
		return fmt.Errorf("unknown annotation %s", key)
	case strings.HasPrefix(key, "meshplane.io/"):
		return fmt.Errorf("unknown annotation %s", key)
	}
	return nil
}

var portList = regexp.MustCompile(`^[0-9]{1,5}(-[0-9]{1,5})?(,[0-9]{1,5}(-[0-9]{1,5})?)*$`)

func ports(s string) error {
	if !portList.MatchString(s) {
		return fmt.Errorf("want comma-separated ports or ranges, e.g. 25,3306,5432-5434")
	}
	return nil
}

func cidrs(s string) error {
	for _, c := range strings.Split(s, ",") {
		if _, _, err := net.ParseCIDR(strings.TrimSpace(c)); err != nil {
			return fmt.Errorf("want comma-separated CIDRs: %w", err)
		}
	}
	return nil
}

func quantity(s string) error {
	_, err := resource.ParseQuantity(s)
	return err
}

func nonEmpty(s string) error {
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("must not be empty")
	}
	return nil
}
