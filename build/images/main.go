// Command images builds the project's container images as docker-archive tarballs from
// the Go binaries, without a container engine, and can push them to a registry.
//
//	go run ./build/images [-o DIR] [-version V] [-registry R] [-push] [ID...]
//
// The images are the release's (the dockers_v2 entries of .goreleaser.yaml) and the
// test node's (build/node/images.yaml); ID selects some of them. Each archive, DIR/ID.tar,
// is tagged with the references `mesh install` and `mesh inject` of version V render,
// and is byte-identical on every build of the same source (time stamps at
// SOURCE_DATE_EPOCH, default 0). Load one with `ctr -n k8s.io images import DIR/ID.tar`
// or `kind load image-archive DIR/ID.tar`. stdout lists "ARCHIVE REF..." per image;
// progress goes to stderr.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/meshplane/mesh/build"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Run is the command; it returns the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("images", flag.ContinueOnError)
	fl.SetOutput(stderr)
	out := fl.String("o", "_output/images", "directory for the image archives")
	version := fl.String("version", "dev", "mesh version the images are tagged with (an unstamped mesh CLI renders dev)")
	registry := fl.String("registry", "", "registry of the release images (default: the one .goreleaser.yaml names); match it with mesh install --set image.registry=...")
	push := fl.Bool("push", false, "also push each image to its registry (go-containerregistry; plain HTTP for localhost and 127.0.0.1)")
	root := fl.String("root", ".", "the repository's root")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if err := run(ctx, *root, *out, build.Vars{Version: *version, Registry: *registry}, *push, fl.Args(), stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "images: %v\n", err)
		return 1
	}
	return 0
}

func run(ctx context.Context, root, out string, v build.Vars, push bool, only []string, stdout, stderr io.Writer) error {
	epoch := time.Unix(0, 0).UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err)
		}
		epoch = time.Unix(n, 0).UTC()
	}
	v.FullCommit, v.CommitDate = gitOut(ctx, root, "rev-parse", "HEAD"), gitOut(ctx, root, "log", "-1", "--format=%cI")
	var images []build.Image
	for _, f := range []string{build.ReleaseFile, build.NodeImagesFile} {
		c, err := build.LoadConfig(root, f)
		if err != nil {
			return err
		}
		imgs, err := c.Images(root, v)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		images = append(images, imgs...)
	}
	for _, id := range only {
		if !slices.ContainsFunc(images, func(i build.Image) bool { return i.ID == id }) {
			return fmt.Errorf("no image %q", id)
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	arch := runtime.GOARCH
	binDir := filepath.Join(out, "bin")
	for _, img := range images {
		if len(only) > 0 && !slices.Contains(only, img.ID) {
			continue
		}
		bins := map[string]string{}
		for name, b := range img.Binaries {
			p, err := build.Compile(ctx, root, b, v, arch, binDir, stderr)
			if err != nil {
				return err
			}
			bins[name] = p
		}
		image, err := build.Assemble(img, arch, bins, build.ThisMachine{}, epoch)
		if err != nil {
			return err
		}
		archive := filepath.Join(out, img.ID+".tar")
		if err := build.WriteArchive(archive, image, img.Refs); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s %s\n", archive, strings.Join(img.Refs, " "))
		if !push {
			continue
		}
		for _, r := range img.Refs {
			ref, err := name.NewTag(r)
			if err != nil {
				return err
			}
			fmt.Fprintf(stderr, "push %s\n", r)
			if err := remote.Write(ref, image, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
				return fmt.Errorf("push %s: %w", r, err)
			}
		}
	}
	return nil
}

// gitOut is a git command's output, or "unknown" outside a git checkout.
func gitOut(ctx context.Context, dir string, args ...string) string {
	out, err := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...).Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
