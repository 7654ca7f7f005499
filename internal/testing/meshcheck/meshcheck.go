// Package meshcheck runs `mesh check -f`'s offline suite on manifests, for the tests of
// code that writes manifests (render/inject) to prove that mesh accepts its own output.
package meshcheck

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/checks/offline"
	"github.com/meshplane/mesh/checks/schema"
	"github.com/meshplane/mesh/render/manifest"
)

// Offline runs the offline checks on a YAML or JSON stream as `mesh check -f` of this
// CLI version does, and returns an error naming every error-severity check that
// failed (nil when none did).
func Offline(ctx context.Context, manifests []byte, cliVersion string) error {
	now := func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }
	s, err := offline.Load(ctx, manifest.Inputs{Filenames: []string{"-"}}, manifest.Env{Stdin: bytes.NewReader(manifests)},
		offline.Options{KubernetesVersion: schema.Default, MinCertValidity: 60 * 24 * time.Hour, Now: now, CLIVersion: cliVersion})
	if err != nil {
		return err
	}
	suite, err := offline.Suite(s)
	if err != nil {
		return err
	}
	var failed []string
	for _, r := range checks.Run(ctx, suite, checks.Options{Now: now}).Failed(checks.Error) {
		failed = append(failed, fmt.Sprintf("%s: %s", r.Check.ID, r.Message))
	}
	if len(failed) > 0 {
		return fmt.Errorf("mesh check failed:\n%s", strings.Join(failed, "\n"))
	}
	return nil
}
