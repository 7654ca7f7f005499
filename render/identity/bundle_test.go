package identity

import (
	"strings"
	"testing"
)

func TestEditBundle(t *testing.T) {
	t.Parallel()
	oldRoot, oldKey := newCert(t, certSpec{cn: "old", ca: true}, nil, nil)
	newRoot, newKey := newCert(t, certSpec{cn: "new", ca: true}, nil, nil)
	oldIssuer, _ := newCert(t, certSpec{cn: "old-issuer", ca: true}, oldRoot, oldKey)
	newIssuer, _ := newCert(t, certSpec{cn: "new-issuer", ca: true}, newRoot, newKey)
	leaf, _ := newCert(t, certSpec{cn: "leaf"}, oldRoot, oldKey)
	f := func(src string, data []byte) PEMFile { return PEMFile{Source: src, Data: data} }
	ptr := func(p PEMFile) *PEMFile { return &p }
	old, next := f("old.crt", certPEM(oldRoot)), f("new.crt", certPEM(newRoot))
	both := certPEM(oldRoot, newRoot)
	tests := []struct {
		name    string
		e       BundleEdit
		want    []byte
		notes   int
		wantErr string
	}{
		{"add", BundleEdit{From: &old, Add: []PEMFile{next}, Issuer: ptr(f("i", certPEM(oldIssuer)))}, both, 0, ""},
		{"add twice", BundleEdit{From: ptr(f("b", both)), Add: []PEMFile{next}}, both, 1, ""},
		{"from nothing", BundleEdit{Add: []PEMFile{old, next}}, both, 0, ""},
		{"remove the old, issuer rolled", BundleEdit{From: ptr(f("b", both)), Remove: []string{Fingerprint(oldRoot)}, Issuer: ptr(f("i", certPEM(newIssuer)))}, certPEM(newRoot), 0, ""},
		{"fingerprint with colons, upper case", BundleEdit{From: ptr(f("b", both)), Remove: []string{colons(Fingerprint(oldRoot))}}, certPEM(newRoot), 0, ""},
		{"remove the old before rolling the issuer", BundleEdit{From: ptr(f("b", both)), Remove: []string{Fingerprint(oldRoot)}, Issuer: ptr(f("i.crt", certPEM(oldIssuer)))}, nil, 0,
			"i.crt: the new bundle would not trust the issuer: issuer certificate CN=old-issuer is not signed by any trust anchor"},
		{"remove what is not there", BundleEdit{From: &old, Remove: []string{Fingerprint(newRoot)}}, nil, 0, "no anchor of the bundle has this SHA-256 fingerprint"},
		{"remove everything", BundleEdit{From: &old, Remove: []string{Fingerprint(oldRoot)}}, nil, 0, "would hold no trust anchor"},
		{"add a non-CA", BundleEdit{From: &old, Add: []PEMFile{f("leaf.crt", certPEM(leaf))}}, nil, 0, "leaf.crt: certificate 1 (CN=leaf) is not a CA certificate"},
		{"garbage", BundleEdit{From: ptr(f("b", []byte("x")))}, nil, 0, "b: no PEM certificate found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, notes, err := EditBundle(tc.e)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != string(tc.want) || len(notes) != tc.notes {
				t.Errorf("got\n%s\nnotes %q\nwant\n%s", out, notes, tc.want)
			}
		})
	}
}

func colons(fp string) string {
	var b strings.Builder
	for i := 0; i < len(fp); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strings.ToUpper(fp[i : i+2]))
	}
	return b.String()
}
