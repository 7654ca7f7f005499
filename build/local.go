package build

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"strings"
)

// File is one entry of an image's filesystem.
type File struct {
	Path string      // absolute path in the image
	Mode fs.FileMode // permission bits plus fs.ModeDir or fs.ModeSymlink
	Data []byte      // a regular file's content
	Link string      // a symlink's target
}

// Rootfs is an image's filesystem being assembled, by path.
type Rootfs map[string]File

// Add records f, replacing what was at its path.
func (r Rootfs) Add(f File) { r[path.Clean(f.Path)] = f }

// Sorted returns the entries and every parent directory not given explicitly (0755),
// parents first, in a stable order.
func (r Rootfs) Sorted() []File {
	all := map[string]File{}
	for p, f := range r {
		all[p] = f
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if _, ok := all[d]; !ok {
				if given, ok := r[d]; ok {
					all[d] = given
				} else {
					all[d] = File{Path: d, Mode: fs.ModeDir | 0o755}
				}
			}
		}
	}
	out := make([]File, 0, len(all))
	for _, f := range all {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// Base is what the local build puts in an image for its FROM line: the parts of that
// base image the mesh's binaries use. Docker pulls the real base for a release; a
// machine without Docker or a registry has only its own files, so the local build
// assembles the same parts from them.
type Base func(r Rootfs, packages []string, host Host) error

// LocalBase is what the local build puts in an image for a FROM line, for the bases the
// project's Dockerfiles may use; false for any other.
func LocalBase(from string) (Base, bool) {
	switch from {
	case "scratch":
		return func(_ Rootfs, pkgs []string, _ Host) error {
			return noPackages("scratch", pkgs)
		}, true
	case "gcr.io/distroless/static-debian12:nonroot":
		// distroless/static: CA certificates, passwd/group with root, nobody and
		// nonroot, a world-writable /tmp.
		return func(r Rootfs, pkgs []string, h Host) error {
			if err := noPackages("distroless", pkgs); err != nil {
				return err
			}
			ca, err := h.ReadFile("/etc/ssl/certs/ca-certificates.crt")
			if err != nil {
				return fmt.Errorf("the CA bundle of distroless/static comes from this machine's ca-certificates package: %w", err)
			}
			baseFiles(r, "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n", "nonroot:x:65532:\n")
			r.Add(File{Path: "/etc/ssl/certs/ca-certificates.crt", Mode: 0o644, Data: ca})
			r.Add(File{Path: "/home/nonroot", Mode: fs.ModeDir | 0o700})
			return nil
		}, true
	case "debian:bookworm-slim":
		// With the Dockerfile's packages: the packages' files (without documentation)
		// and the shared libraries they load, taken from this machine, which must be
		// Debian 12 with those packages installed.
		return func(r Rootfs, pkgs []string, h Host) error {
			v, err := h.ReadFile("/etc/debian_version")
			if err != nil || !bytes.HasPrefix(v, []byte("12.")) {
				return fmt.Errorf("a local build of a debian:bookworm-slim image takes its packages %v from this machine, which is not Debian 12 (/etc/debian_version %q)", pkgs, bytes.TrimSpace(v))
			}
			baseFiles(r, "", "")
			c := collector{r: r, host: h}
			for _, p := range pkgs {
				if err := c.addPackage(p); err != nil {
					return err
				}
			}
			return c.addAlternatives()
		}, true
	}
	return nil, false
}

func noPackages(base string, pkgs []string) error {
	if len(pkgs) > 0 {
		return fmt.Errorf("RUN apt-get install %v: %s has no package manager", pkgs, base)
	}
	return nil
}

// baseFiles are the files every non-scratch base has.
func baseFiles(r Rootfs, passwd, group string) {
	r.Add(File{Path: "/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" + passwd)})
	r.Add(File{Path: "/etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnogroup:x:65534:\n" + group)})
	r.Add(File{Path: "/etc/nsswitch.conf", Mode: 0o644, Data: []byte("hosts: files dns\n")})
	r.Add(File{Path: "/tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777})
	r.Add(File{Path: "/run", Mode: fs.ModeDir | 0o755}) // iptables' lock: /run/xtables.lock
	r.Add(File{Path: "/root", Mode: fs.ModeDir | 0o700})
}

// Host is the machine the local build reads packages from (an interface, for tests).
type Host interface {
	ReadFile(name string) ([]byte, error)
	Lstat(name string) (fs.FileInfo, error)
	Readlink(name string) (string, error)
	ReadDir(name string) ([]fs.DirEntry, error)
	// PackageFiles lists the files of an installed Debian package (dpkg-query -L).
	PackageFiles(pkg string) ([]string, error)
	// Libraries lists the shared libraries an ELF file loads, the dynamic loader too
	// (ldd); none for a static binary.
	Libraries(file string) ([]string, error)
}

// ThisMachine is the Host the build runs on.
type ThisMachine struct{}

func (ThisMachine) ReadFile(name string) ([]byte, error)       { return os.ReadFile(name) }
func (ThisMachine) Lstat(name string) (fs.FileInfo, error)     { return os.Lstat(name) }
func (ThisMachine) Readlink(name string) (string, error)       { return os.Readlink(name) }
func (ThisMachine) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }

// PackageFiles implements Host.
func (ThisMachine) PackageFiles(pkg string) ([]string, error) {
	out, err := exec.CommandContext(context.Background(), "dpkg-query", "-L", pkg).Output()
	if err != nil {
		return nil, fmt.Errorf("package %s is not installed here (apt-get install %s): dpkg-query -L: %w", pkg, pkg, err)
	}
	return strings.Fields(string(out)), nil
}

var lddLine = regexp.MustCompile(`(?m)^\s*(?:\S+ => )?(/\S+) \(0x[0-9a-f]+\)$`)

// Libraries implements Host.
func (ThisMachine) Libraries(file string) ([]string, error) {
	out, err := exec.CommandContext(context.Background(), "ldd", file).CombinedOutput()
	if err != nil {
		if bytes.Contains(out, []byte("not a dynamic executable")) || bytes.Contains(out, []byte("statically linked")) {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %w: %s", file, err, bytes.TrimSpace(out))
	}
	var libs []string
	for _, m := range lddLine.FindAllSubmatch(out, -1) {
		libs = append(libs, string(m[1]))
	}
	return libs, nil
}

// collector copies host files into a Rootfs with what they need: the symlinks on their
// path, symlink targets, and for ELF files the libraries they load.
type collector struct {
	r    Rootfs
	host Host
	seen map[string]bool
}

func (c *collector) addPackage(pkg string) error {
	files, err := c.host.PackageFiles(pkg)
	if err != nil {
		return err
	}
	for _, f := range files {
		if f == "/." || strings.HasPrefix(f, "/usr/share/") {
			continue // documentation, man pages, lintian overrides
		}
		fi, err := c.host.Lstat(f)
		if err != nil {
			return fmt.Errorf("package %s: %w", pkg, err)
		}
		if fi.IsDir() {
			continue // parents are made as needed
		}
		if err := c.add(f); err != nil {
			return fmt.Errorf("package %s: %w", pkg, err)
		}
	}
	return nil
}

// add copies p (absolute) and what it needs.
func (c *collector) add(p string) error {
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	p = path.Clean(p)
	if c.seen[p] {
		return nil
	}
	c.seen[p] = true
	// A symlink on the way (merged /usr: /lib -> usr/lib) is copied as such.
	parts := strings.Split(p[1:], "/")
	for i := 1; i < len(parts); i++ {
		dir := "/" + strings.Join(parts[:i], "/")
		fi, err := c.host.Lstat(dir)
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if err := c.add(dir); err != nil {
				return err
			}
			target, err := c.resolve(dir)
			if err != nil {
				return err
			}
			return c.add(path.Join(append([]string{target}, parts[i:]...)...))
		}
	}
	fi, err := c.host.Lstat(p)
	if err != nil {
		return err
	}
	switch {
	case fi.IsDir(): // the target of a symlink: its parents are made as needed
		return nil
	case fi.Mode()&fs.ModeSymlink != 0:
		link, err := c.host.Readlink(p)
		if err != nil {
			return err
		}
		c.r.Add(File{Path: p, Mode: fs.ModeSymlink | 0o777, Link: link})
		target, err := c.resolve(p)
		if err != nil {
			return err
		}
		return c.add(target)
	case fi.Mode().IsRegular():
		data, err := c.host.ReadFile(p)
		if err != nil {
			return err
		}
		c.r.Add(File{Path: p, Mode: fi.Mode().Perm(), Data: data})
		if !bytes.HasPrefix(data, []byte("\x7fELF")) {
			return nil
		}
		libs, err := c.host.Libraries(p)
		if err != nil {
			return err
		}
		for _, l := range libs {
			if err := c.add(l); err != nil {
				return fmt.Errorf("%s needs %s: %w", p, l, err)
			}
		}
		return nil
	default:
		return fmt.Errorf("%s: not a regular file or symlink (%s)", p, fi.Mode())
	}
}

// resolve returns the absolute target of the symlink p (one level).
func (c *collector) resolve(p string) (string, error) {
	link, err := c.host.Readlink(p)
	if err != nil {
		return "", err
	}
	if !path.IsAbs(link) {
		link = path.Join(path.Dir(p), link)
	}
	return path.Clean(link), nil
}

// addAlternatives copies the Debian alternatives (/usr/sbin/iptables ->
// /etc/alternatives/iptables -> /usr/sbin/iptables-nft) whose choice on this machine
// is a file already in the image, as a package's install script would have made them.
func (c *collector) addAlternatives() error {
	const alt = "/etc/alternatives"
	entries, err := c.host.ReadDir(alt)
	if err != nil {
		return nil // no alternatives here
	}
	chosen := map[string]bool{}
	for _, e := range entries {
		p := alt + "/" + e.Name()
		target, err := c.resolve(p)
		if err != nil {
			continue
		}
		if _, ok := c.r[target]; ok {
			chosen[p] = true
		}
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
		entries, err := c.host.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			p := dir + "/" + e.Name()
			if e.Type()&fs.ModeSymlink == 0 {
				continue
			}
			if target, err := c.resolve(p); err == nil && chosen[target] {
				if err := c.add(p); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
