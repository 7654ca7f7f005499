package build

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"sigs.k8s.io/yaml"
)

// The files that define the images. The release's images are the dockers_v2 entries of
// .goreleaser.yaml; the images only the test node needs (pause, CoreDNS, the demo app, the
// load generator) are in NodeImagesFile, in the same schema. Both the release and the
// local build read these files, so what an image holds is written down once.
const (
	ReleaseFile    = ".goreleaser.yaml"
	NodeImagesFile = "build/node/images.yaml"
)

// Config is the part of a goreleaser file that defines binaries and images.
type Config struct {
	Builds    []Binary `json:"builds"`
	DockersV2 []Docker `json:"dockers_v2"`
}

// Binary is one goreleaser build: a Go main package and how it is compiled.
type Binary struct {
	ID      string   `json:"id"`
	Dir     string   `json:"dir"` // a nested module (CoreDNS); empty: the repository root
	Main    string   `json:"main"`
	Binary  string   `json:"binary"`
	Env     []string `json:"env"`
	Flags   []string `json:"flags"`
	Tags    []string `json:"tags"`
	Ldflags []string `json:"ldflags"`
	Goos    []string `json:"goos"`
	Goarch  []string `json:"goarch"`
}

// Docker is one goreleaser dockers_v2 entry: an image built from a Dockerfile whose
// build context holds the binaries of IDs as $TARGETPLATFORM/<binary>.
type Docker struct {
	ID         string            `json:"id"`
	IDs        []string          `json:"ids"`
	Dockerfile string            `json:"dockerfile"`
	Images     []string          `json:"images"`
	Tags       []string          `json:"tags"`
	Platforms  []string          `json:"platforms"`
	Labels     map[string]string `json:"labels"`
}

// LoadConfig reads a goreleaser file (path relative to root).
func LoadConfig(root, path string) (*Config, error) {
	raw, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		return nil, err
	}
	var c Config
	if err := yaml.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// Vars are the goreleaser template fields the image definitions use.
type Vars struct {
	Version    string // the mesh version, without a leading v ("dev" for a local build)
	FullCommit string
	CommitDate string // RFC 3339
	Registry   string // REGISTRY in the environment of a release; empty: the default
}

// Expand evaluates a goreleaser template: {{ .Version }}, {{ .FullCommit }},
// {{ .CommitDate }} and {{ envOrDefault "REGISTRY" "..." }}.
func (v Vars) Expand(text string) (string, error) {
	tmpl, err := template.New("").Option("missingkey=error").Funcs(template.FuncMap{
		"envOrDefault": func(name, def string) string {
			if name == "REGISTRY" && v.Registry != "" {
				return v.Registry
			}
			return def
		},
	}).Parse(text)
	if err != nil {
		return "", fmt.Errorf("template %q: %w", text, err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, map[string]any{"Version": v.Version, "FullCommit": v.FullCommit, "CommitDate": v.CommitDate}); err != nil {
		return "", fmt.Errorf("template %q: %w", text, err)
	}
	return b.String(), nil
}

// Dockerfile is what a Dockerfile of this project says. Only the instructions below are
// allowed, so that a machine without Docker can build the same image from it:
//
//	FROM <base>                    one of the bases LocalBase knows
//	ARG TARGETPLATFORM
//	RUN apt-get ... install <pkgs> Debian packages (only over a Debian base)
//	COPY $TARGETPLATFORM/<binary> <path>
//	USER <uid>:<gid>
//	ENTRYPOINT ["...", ...]
//	CMD ["...", ...]
//	ENV <key>=<value>
type Dockerfile struct {
	From       string
	Packages   []string
	Copies     []Copy
	User       string
	Entrypoint []string
	Cmd        []string
	Env        []string
}

// Copy is `COPY $TARGETPLATFORM/<Binary> <Dest>`.
type Copy struct{ Binary, Dest string }

// ParseDockerfile parses the supported subset of a Dockerfile; name is for errors.
func ParseDockerfile(name string, src []byte) (*Dockerfile, error) {
	var d Dockerfile
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(src))
	n, start := 0, 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(line)
		lines = append(lines, fmt.Sprintf("%d\x00%s", start, cur.String()))
		cur.Reset()
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("%s: a line continues past the end of the file", name)
	}
	for _, l := range lines {
		num, text, _ := strings.Cut(l, "\x00")
		instr, args, _ := strings.Cut(text, " ")
		args = strings.TrimSpace(args)
		errf := func(format string, a ...any) error {
			return fmt.Errorf("%s:%s: %s: %s", name, num, instr, fmt.Sprintf(format, a...))
		}
		switch strings.ToUpper(instr) {
		case "FROM":
			if d.From != "" {
				return nil, errf("only one stage is supported")
			}
			d.From = args
		case "ARG":
			if args != "TARGETPLATFORM" {
				return nil, errf("only ARG TARGETPLATFORM is supported, not %q", args)
			}
		case "RUN":
			pkgs, err := aptPackages(args)
			if err != nil {
				return nil, errf("%v", err)
			}
			d.Packages = append(d.Packages, pkgs...)
		case "COPY":
			f := strings.Fields(args)
			src, ok := strings.CutPrefix(f[0], "$TARGETPLATFORM/")
			if len(f) != 2 || !ok || strings.Contains(src, "/") {
				return nil, errf("want COPY $TARGETPLATFORM/<binary> <path>, got %q", args)
			}
			d.Copies = append(d.Copies, Copy{Binary: src, Dest: f[1]})
		case "USER":
			d.User = args
		case "ENTRYPOINT", "CMD":
			var argv []string
			if err := json.Unmarshal([]byte(args), &argv); err != nil {
				return nil, errf("want the JSON form [\"...\"]: %v", err)
			}
			if strings.EqualFold(instr, "CMD") {
				d.Cmd = argv
			} else {
				d.Entrypoint = argv
			}
		case "ENV":
			k, v, ok := strings.Cut(args, "=")
			if !ok || strings.ContainsAny(k, " \t") {
				return nil, errf("want ENV key=value")
			}
			d.Env = append(d.Env, k+"="+v)
		default:
			return nil, errf("not supported by the local image build (build/local.go)")
		}
	}
	if d.From == "" {
		return nil, fmt.Errorf("%s: no FROM", name)
	}
	return &d, nil
}

// aptPackages returns the packages of `apt-get update && apt-get install -y ... PKGS &&
// rm -rf /var/lib/apt/lists/*`, the one RUN form supported.
func aptPackages(cmd string) ([]string, error) {
	var pkgs []string
	for part := range strings.SplitSeq(cmd, "&&") {
		f := strings.Fields(part)
		for len(f) > 0 && strings.Contains(f[0], "=") { // DEBIAN_FRONTEND=noninteractive
			f = f[1:]
		}
		switch {
		case len(f) >= 2 && f[0] == "apt-get" && f[1] == "update":
		case strings.Join(f, " ") == "rm -rf /var/lib/apt/lists/*":
		case len(f) >= 2 && f[0] == "apt-get" && f[1] == "install":
			for _, w := range f[2:] {
				if !strings.HasPrefix(w, "-") {
					pkgs = append(pkgs, w)
				}
			}
		default:
			return nil, fmt.Errorf("only apt-get update/install and removing the apt lists are supported, not %q", strings.TrimSpace(part))
		}
	}
	if len(pkgs) == 0 {
		return nil, fmt.Errorf("installs no package")
	}
	return pkgs, nil
}

// Image is one image to build: its references, its Dockerfile and the binaries that
// the Dockerfile copies.
type Image struct {
	ID         string
	Refs       []string // registry/name:tag
	Dockerfile *Dockerfile
	Binaries   map[string]Binary // by binary name
	Labels     map[string]string
}

// Images resolves the images of a goreleaser file for vars.
func (c *Config) Images(root string, v Vars) ([]Image, error) {
	builds := map[string]Binary{}
	for _, b := range c.Builds {
		if b.Binary == "" {
			b.Binary = filepath.Base(b.Main)
		}
		builds[b.ID] = b
	}
	var out []Image
	for _, d := range c.DockersV2 {
		img := Image{ID: d.ID, Binaries: map[string]Binary{}, Labels: map[string]string{}}
		for _, id := range d.IDs {
			b, ok := builds[id]
			if !ok {
				return nil, fmt.Errorf("image %s: no build %q", d.ID, id)
			}
			img.Binaries[b.Binary] = b
		}
		for _, repo := range d.Images {
			for _, tag := range d.Tags {
				r, err := v.Expand(repo + ":" + tag)
				if err != nil {
					return nil, fmt.Errorf("image %s: %w", d.ID, err)
				}
				img.Refs = append(img.Refs, r)
			}
		}
		for k, t := range d.Labels {
			s, err := v.Expand(t)
			if err != nil {
				return nil, fmt.Errorf("image %s: label %s: %w", d.ID, k, err)
			}
			img.Labels[k] = s
		}
		src, err := os.ReadFile(filepath.Join(root, d.Dockerfile))
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", d.ID, err)
		}
		if img.Dockerfile, err = ParseDockerfile(d.Dockerfile, src); err != nil {
			return nil, err
		}
		for _, cp := range img.Dockerfile.Copies {
			if _, ok := img.Binaries[cp.Binary]; !ok {
				return nil, fmt.Errorf("image %s: %s copies %s, which none of its builds %v makes", d.ID, d.Dockerfile, cp.Binary, d.IDs)
			}
		}
		out = append(out, img)
	}
	return out, nil
}
