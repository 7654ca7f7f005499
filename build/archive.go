package build

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// DefaultPath is the PATH of every image (Docker's default for Linux images); the
// proxy's init finds iptables through it.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// LayerTar writes files as one reproducible layer: sorted, every time stamp at epoch,
// owned by root, no user or group names.
func LayerTar(files []File, epoch time.Time) ([]byte, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		h := &tar.Header{
			Name:    strings.TrimPrefix(f.Path, "/"),
			Mode:    int64(f.Mode.Perm()),
			ModTime: epoch,
			Format:  tar.FormatPAX,
		}
		if f.Mode&fs.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		switch {
		case f.Mode.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		case f.Mode&fs.ModeSymlink != 0:
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.Link
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Assemble makes the v1 image of img for linux/arch from its base, its packages and
// the compiled binaries (name -> path of the binary built for arch).
func Assemble(img Image, arch string, binaries map[string]string, host Host, epoch time.Time) (v1.Image, error) {
	d := img.Dockerfile
	base, ok := LocalBase(d.From)
	if !ok {
		return nil, fmt.Errorf("image %s: FROM %s: the local build knows only the bases in build/local.go", img.ID, d.From)
	}
	r := Rootfs{}
	if err := base(r, d.Packages, host); err != nil {
		return nil, fmt.Errorf("image %s: %w", img.ID, err)
	}
	for _, c := range d.Copies {
		data, err := os.ReadFile(binaries[c.Binary])
		if err != nil {
			return nil, fmt.Errorf("image %s: binary %s: %w", img.ID, c.Binary, err)
		}
		dest := c.Dest
		if strings.HasSuffix(dest, "/") {
			dest += c.Binary
		}
		r.Add(File{Path: dest, Mode: 0o755, Data: data})
	}
	layerTar, err := LayerTar(r.Sorted(), epoch)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.ID, err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithCompressedCaching)
	if err != nil {
		return nil, err
	}
	user := d.User
	if user == "" && d.From == "gcr.io/distroless/static-debian12:nonroot" {
		user = "65532:65532" // the base's own USER
	}
	cfg := &v1.ConfigFile{
		Architecture: arch,
		OS:           "linux",
		Created:      v1.Time{Time: epoch},
		Config: v1.Config{
			User:       user,
			Entrypoint: d.Entrypoint,
			Cmd:        d.Cmd,
			Env:        append([]string{DefaultPath}, d.Env...),
			Labels:     img.Labels,
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	out, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return nil, err
	}
	return mutate.Append(out, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "build/images from " + d.From + " (" + img.ID + ")"},
	})
}

// WriteArchive writes image as a docker-archive tarball (what `ctr images import`,
// `docker load` and `kind load image-archive` take) tagged with refs, atomically.
func WriteArchive(path string, image v1.Image, refs []string) error {
	m := map[name.Reference]v1.Image{}
	for _, r := range refs {
		t, err := name.NewTag(r)
		if err != nil {
			return fmt.Errorf("image reference %q: %w", r, err)
		}
		m[t] = image
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".image-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tarball.MultiRefWrite(m, tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
