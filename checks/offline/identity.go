package offline

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/render/identity"
)

// trustAnchors finds the trust anchors the manifests carry: the trust-roots ConfigMap,
// or the values recorded in mesh-config. Source names where they came from.
func (s *Set) trustAnchors() (pem, source string) {
	for _, o := range s.Find("ConfigMap", "mesh-identity-trust-roots") {
		if v := str(o.Body, "data", "ca-bundle.crt"); v != "" {
			return v, o.String()
		}
	}
	for _, o := range s.Find("ConfigMap", "mesh-config") {
		var vals map[string]any
		if yaml.Unmarshal([]byte(str(o.Body, "data", "values.yaml")), &vals) == nil {
			if v := str(vals, "identity", "trustAnchorsPEM"); v != "" {
				return v, o.String() + " values.yaml"
			}
		}
	}
	return "", ""
}

// validity checks a certificate is valid now and for at least min more.
func validity(what string, c *x509.Certificate, now time.Time, min time.Duration) string {
	switch {
	case now.Before(c.NotBefore):
		return fmt.Sprintf("%s %s is not valid before %s", what, c.Subject, c.NotBefore.UTC().Format(time.RFC3339))
	case !now.Before(c.NotAfter):
		return fmt.Sprintf("%s %s expired on %s", what, c.Subject, c.NotAfter.UTC().Format(time.RFC3339))
	case c.NotAfter.Sub(now) < min:
		return fmt.Sprintf("%s %s expires on %s, in less than %s", what, c.Subject, c.NotAfter.UTC().Format(time.RFC3339), min)
	}
	return ""
}

func decodeSecretValue(o Object, key string) (string, bool) { return SecretValue(o.Body, key) }

// SecretValue is a Secret's value for key, as the API server would store it:
// stringData's, else data's decoded from base64; false when neither has one.
func SecretValue(body map[string]any, key string) (string, bool) {
	if v := str(body, "stringData", key); v != "" {
		return v, true
	}
	v := str(body, "data", key)
	if v == "" {
		return "", false
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return "", false
	}
	return string(b), true
}

func identityChecks(s *Set, opts Options) []checks.Check {
	const cat = "identity"
	now := opts.Now()
	return []checks.Check{
		check("identity.trust-anchors", cat, "the trust anchors are CA certificates valid for long enough", checks.Error, func(context.Context) error {
			pem, src := s.trustAnchors()
			if pem == "" {
				return checks.Skip("no trust anchors in these manifests (the controller makes its own)")
			}
			certs, err := identity.ParseCertificates(src, []byte(pem))
			if err != nil {
				return err
			}
			if err := identity.CheckAnchors(src, certs); err != nil {
				return err
			}
			var p problems
			for _, c := range certs {
				if msg := validity("trust anchor", c, now, opts.MinCertValidity); msg != "" {
					p = append(p, msg)
				}
			}
			return p.err()
		}),
		check("identity.issuer", cat, "the issuer chains to the trust anchors and is valid for long enough", checks.Error, func(context.Context) error {
			secrets := s.Find("Secret", "mesh-identity-issuer")
			if len(secrets) == 0 {
				return checks.Skip("no issuer Secret in these manifests")
			}
			o := secrets[0]
			crt, ok := decodeSecretValue(o, "tls.crt")
			if !ok {
				return fmt.Errorf("%s has no tls.crt", o)
			}
			chain, err := identity.ParseCertificates(o.String()+" tls.crt", []byte(crt))
			if err != nil {
				return err
			}
			anchorsPEM, src := s.trustAnchors()
			if ca, ok := decodeSecretValue(o, "ca.crt"); ok && anchorsPEM == "" {
				anchorsPEM, src = ca, o.String()+" ca.crt"
			}
			if anchorsPEM == "" {
				return fmt.Errorf("no trust anchors to check %s against", o)
			}
			anchors, err := identity.ParseCertificates(src, []byte(anchorsPEM))
			if err != nil {
				return err
			}
			if err := identity.CheckIssuer(anchors, chain); err != nil {
				return err
			}
			if key, ok := decodeSecretValue(o, "tls.key"); ok {
				k, err := identity.ParsePrivateKey(o.String()+" tls.key", []byte(key))
				if err != nil {
					return err
				}
				if err := identity.CheckKeyPair(chain[0], k); err != nil {
					return fmt.Errorf("%s: %w", o, err)
				}
			}
			if msg := validity("issuer", chain[0], now, opts.MinCertValidity); msg != "" {
				return fmt.Errorf("%s", msg)
			}
			return nil
		}, "identity.trust-anchors"),
		check("identity.no-private-keys", cat, "no private key is committed", checks.Warning, func(context.Context) error {
			return s.findings["identity.no-private-keys"].err()
		}),
	}
}

// privateKeyFindings: a Secret or ConfigMap that holds a PEM private key in clear.
func privateKeyFindings(_ *Set, o Object) []string {
	if o.Kind != "Secret" && o.Kind != "ConfigMap" {
		return nil
	}
	var p []string
	for _, field := range []string{"data", "stringData"} {
		m, _ := get(o.Body, field).(map[string]any)
		for _, k := range sortedKeys(m) {
			v := str(m, k)
			if o.Kind == "Secret" && field == "data" {
				v, _ = decodeSecretValue(o, k)
			}
			if strings.Contains(v, "PRIVATE KEY-----") {
				p = append(p, fmt.Sprintf("%s %s holds a private key: seal or encrypt it (sealed-secrets, SOPS, external-secrets)", o, k))
			}
		}
	}
	return p
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
