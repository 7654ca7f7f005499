package build

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Compile builds b for linux/arch into outDir/<arch>/<binary> with the flags, tags,
// ldflags and environment its goreleaser entry gives, and returns the path. The Go
// toolchain's build is reproducible: the same source, flags and toolchain give the
// same bytes.
func Compile(ctx context.Context, root string, b Binary, v Vars, arch, outDir string, log io.Writer) (string, error) {
	if len(b.Goos) > 0 && !slices.Contains(b.Goos, "linux") || len(b.Goarch) > 0 && !slices.Contains(b.Goarch, arch) {
		return "", fmt.Errorf("build %s is not made for linux/%s", b.ID, arch)
	}
	out, err := filepath.Abs(filepath.Join(outDir, arch, b.Binary))
	if err != nil {
		return "", err
	}
	args := []string{"build", "-o", out}
	args = append(args, b.Flags...)
	if len(b.Tags) > 0 {
		args = append(args, "-tags", strings.Join(b.Tags, ","))
	}
	var ld []string
	for _, f := range b.Ldflags {
		s, err := v.Expand(f)
		if err != nil {
			return "", fmt.Errorf("build %s: ldflags: %w", b.ID, err)
		}
		ld = append(ld, s)
	}
	if len(ld) > 0 {
		args = append(args, "-ldflags", strings.Join(ld, " "))
	}
	args = append(args, b.Main)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = filepath.Join(root, b.Dir)
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+arch)
	cmd.Env = append(cmd.Env, b.Env...)
	cmd.Stdout, cmd.Stderr = log, log
	fmt.Fprintf(log, "build %s: (cd %s && go %s)\n", b.ID, cmd.Dir, strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build %s: go build: %w", b.ID, err)
	}
	return out, nil
}
