// Package ship builds the release artefacts of kubectl-dgdr: one binary per platform (CGO off,
// -trimpath, version stamped by the linker), one .tar.gz per platform holding the binary and LICENSE,
// dist/checksums.txt, and the krew manifest rendered from krew/dgdr.yaml.tmpl with the real hashes.
// `make dist` runs it through hack/dist; test/ship checks the result with krew's own tools.
package ship

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"text/template"
	"time"

	"k8s.io/apimachinery/pkg/util/version"
)

const (
	// Plugin is the krew plugin name, so the command is `kubectl dgdr`.
	Plugin = "dgdr"
	// Binary is the executable kubectl discovers on PATH.
	Binary = "kubectl-dgdr"
	// MainPackage is what each archive's binary is built from.
	MainPackage = "./cmd/kubectl-dgdr"
	// ReleaseDownloadURL is where a tagged release's archives are uploaded.
	ReleaseDownloadURL = "https://github.com/dgdr-dev/dgdr/releases/download"
	// ChecksumsFile lists the sha256 of every archive, in `sha256sum` format.
	ChecksumsFile = "checksums.txt"
	// LicenseFile is shipped in every archive: krew-index requires a license among the installed files.
	LicenseFile = "LICENSE"
)

// Platform is one os/arch pair kubectl-dgdr is released for.
type Platform struct {
	OS   string `json:"os"`
	Arch string `json:"arch"`
}

// Platforms lists the release platforms, in the order the manifest and checksums use.
func Platforms() []Platform {
	return []Platform{
		{"linux", "amd64"}, {"linux", "arm64"},
		{"darwin", "amd64"}, {"darwin", "arm64"},
		{"windows", "amd64"}, {"windows", "arm64"},
	}
}

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// Bin is the binary's name inside the archive (Windows needs the .exe suffix to run it).
func (p Platform) Bin() string {
	if p.OS == "windows" {
		return Binary + ".exe"
	}
	return Binary
}

// ArchiveName is the release asset name: kubectl-dgdr_<version>_<os>_<arch>.tar.gz.
func ArchiveName(version string, p Platform) string {
	return fmt.Sprintf("%s_%s_%s_%s.tar.gz", Binary, version, p.OS, p.Arch)
}

// ReleaseURL is where a GitHub release of version serves the platform's archive.
func ReleaseURL(version string, p Platform) string {
	return ReleaseDownloadURL + "/" + version + "/" + ArchiveName(version, p)
}

// ValidateVersion accepts what krew accepts: a leading "v", then a semantic version.
func ValidateVersion(v string) error {
	rest, ok := strings.CutPrefix(v, "v")
	if !ok {
		return fmt.Errorf("version %q: expected a leading \"v\" (krew requires e.g. v0.1.0)", v)
	}
	if _, err := version.ParseSemantic(rest); err != nil {
		return fmt.Errorf("version %q: expected a semantic version after the \"v\": %w", v, err)
	}
	return nil
}

// Artifact is one platform's archive in the output directory.
type Artifact struct {
	Platform
	// Archive is the file name inside the output directory.
	Archive string
	// SHA256 is the archive's hash, lowercase hex.
	SHA256 string
}

// Options say what Dist builds and where it writes.
type Options struct {
	// Version is stamped into the binaries (through LDFlags) and names the archives; a "v"-prefixed semver.
	Version string
	// LDFlags are passed to `go build -ldflags` as they are (the Makefile's LDFLAGS).
	LDFlags string
	// Go is the go command; ModuleDir the module root the build runs in.
	Go, ModuleDir string
	// OutDir receives the archives and checksums.txt.
	OutDir string
	// License is the LICENSE file put in every archive.
	License string
	// Template is the krew manifest template; Manifest the rendered file (its name must be <plugin>.yaml).
	Template, Manifest string
	// MTime is the modification time recorded in the archives (so equal inputs give equal archives).
	MTime time.Time
	// Log receives the go command's output and one line per archive.
	Log io.Writer
}

// Dist cross-builds every platform, archives each binary with LICENSE, writes checksums.txt and
// renders the krew manifest. Archives left from earlier runs are removed first, so the directory
// holds exactly one release.
func Dist(ctx context.Context, o Options) ([]Artifact, error) {
	if err := ValidateVersion(o.Version); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the output directory: %w", err)
	}
	old, err := filepath.Glob(filepath.Join(o.OutDir, Binary+"_*.tar.gz"))
	if err != nil {
		return nil, err
	}
	for _, f := range append(old, filepath.Join(o.OutDir, ChecksumsFile)) {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("removing the earlier %s: %w", f, err)
		}
	}
	build, err := os.MkdirTemp("", "dgdr-dist-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(build)

	// The platforms build two at a time: go build spreads compiling over the CPUs, but linking is
	// mostly one thread, so a second build keeps another CPU busy meanwhile. The first failure stops
	// the others and is the error returned.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	log := &lockedWriter{w: o.Log}
	platforms := Platforms()
	slots := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for _, p := range platforms {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			if ctx.Err() == nil {
				if err := buildArchive(ctx, o, build, p, log); err != nil {
					cancel(err)
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	var arts []Artifact
	for _, p := range platforms {
		name := ArchiveName(o.Version, p)
		sum, err := FileSHA256(filepath.Join(o.OutDir, name))
		if err != nil {
			return nil, err
		}
		arts = append(arts, Artifact{Platform: p, Archive: name, SHA256: sum})
		fmt.Fprintf(o.Log, "%s  %s\n", sum, name)
	}
	if err := WriteChecksums(filepath.Join(o.OutDir, ChecksumsFile), arts); err != nil {
		return nil, err
	}
	return arts, WriteManifest(o.Template, o.Manifest, o.Version, arts)
}

// buildArchive builds the binary for p under build and archives it with LICENSE into o.OutDir.
func buildArchive(ctx context.Context, o Options, build string, p Platform, log io.Writer) error {
	bin := filepath.Join(build, p.OS+"_"+p.Arch, p.Bin())
	if err := BuildBinary(ctx, o.Go, o.ModuleDir, o.LDFlags, p, bin, log); err != nil {
		return err
	}
	err := writeArchiveFile(filepath.Join(o.OutDir, ArchiveName(o.Version, p)), o.MTime,
		ArchiveFile{Name: p.Bin(), Mode: 0o755, Path: bin},
		ArchiveFile{Name: LicenseFile, Mode: 0o644, Path: o.License})
	if err != nil {
		return fmt.Errorf("archiving %s: %w", p, err)
	}
	// The build tree is large (one binary per platform); drop each as soon as it is archived.
	_ = os.Remove(bin)
	return nil
}

// lockedWriter serialises the writes of builds that run at the same time.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// Collect hashes the archives of version already in dir (for re-rendering the manifest alone).
func Collect(dir, version string) ([]Artifact, error) {
	if err := ValidateVersion(version); err != nil {
		return nil, err
	}
	var arts []Artifact
	for _, p := range Platforms() {
		name := ArchiveName(version, p)
		sum, err := FileSHA256(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("expected the %s archive of %s (run make dist): %w", p, version, err)
		}
		arts = append(arts, Artifact{Platform: p, Archive: name, SHA256: sum})
	}
	return arts, nil
}

// BuildBinary builds the plugin for one platform the way every release binary is built:
// CGO off (static, runs on any libc), -trimpath (no local paths in the binary), the given ldflags.
func BuildBinary(ctx context.Context, goCmd, moduleDir, ldflags string, p Platform, out string, log io.Writer) error {
	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-ldflags", ldflags, "-o", out, MainPackage)
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Arch)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building %s for %s: %w", MainPackage, p, err)
	}
	return nil
}

// ArchiveFile is one file to put in an archive: its name there, its mode, and where it is now.
type ArchiveFile struct {
	Name string
	Mode int64
	Path string
}

// ArchiveEntry is one file read back from an archive.
type ArchiveEntry struct {
	Name string
	Mode int64
	Data []byte
}

// ReadArchive reads a gzip-compressed tar (what WriteArchive writes), for checking release archives.
func ReadArchive(r io.Reader) ([]ArchiveEntry, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("reading archive: expected gzip: %w", err)
	}
	tr := tar.NewReader(gz)
	var out []ArchiveEntry
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading archive: %w", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("reading %s from archive: %w", hdr.Name, err)
		}
		out = append(out, ArchiveEntry{Name: hdr.Name, Mode: hdr.Mode, Data: data})
	}
}

// WriteArchive writes a gzip-compressed tar of files at the archive's root. Owner, group and time
// are fixed (root, mtime), so the same files give the same bytes, hence the same sha256.
func WriteArchive(w io.Writer, mtime time.Time, files ...ArchiveFile) error {
	gz := gzip.NewWriter(w) // the gzip header's name and time stay empty: no build-machine details
	tw := tar.NewWriter(gz)
	for _, f := range files {
		if err := addFile(tw, mtime, f); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func addFile(tw *tar.Writer, mtime time.Time, f ArchiveFile) error {
	in, err := os.Open(f.Path)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	hdr := &tar.Header{
		Typeflag: tar.TypeReg, Name: f.Name, Mode: f.Mode, Size: st.Size(),
		ModTime: mtime.UTC().Truncate(time.Second), Uname: "root", Gname: "root", Format: tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = io.Copy(tw, in)
	return err
}

func writeArchiveFile(path string, mtime time.Time, files ...ArchiveFile) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := WriteArchive(out, mtime, files...); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// FileSHA256 is the lowercase hex sha256 of a file.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// WriteChecksums writes `<sha256>  <archive>` lines, the format `sha256sum -c` reads.
func WriteChecksums(path string, arts []Artifact) error {
	var b strings.Builder
	for _, a := range arts {
		fmt.Fprintf(&b, "%s  %s\n", a.SHA256, a.Archive)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// manifestPlatform is what the template sees for each platform.
type manifestPlatform struct {
	OS, Arch, URI, SHA256, Bin string
}

// RenderManifest fills the krew manifest template with the version and each archive's URL and hash.
// The template gets .Version and .Platforms (each with .OS .Arch .URI .SHA256 .Bin).
func RenderManifest(tmpl, version string, arts []Artifact) ([]byte, error) {
	t, err := template.New("krew").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return nil, fmt.Errorf("parsing the krew manifest template: %w", err)
	}
	data := struct {
		Version   string
		Platforms []manifestPlatform
	}{Version: version}
	for _, a := range arts {
		data.Platforms = append(data.Platforms, manifestPlatform{
			OS: a.OS, Arch: a.Arch, URI: ReleaseURL(version, a.Platform), SHA256: a.SHA256, Bin: a.Bin(),
		})
	}
	var out bytes.Buffer
	if err := t.Execute(&out, data); err != nil {
		return nil, fmt.Errorf("rendering the krew manifest template: %w", err)
	}
	return out.Bytes(), nil
}

// WriteManifest renders the template file into manifest.
func WriteManifest(templatePath, manifest, version string, arts []Artifact) error {
	tmpl, err := os.ReadFile(templatePath)
	if err != nil {
		return fmt.Errorf("reading the krew manifest template: %w", err)
	}
	out, err := RenderManifest(string(tmpl), version, arts)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(manifest), 0o755); err != nil {
		return err
	}
	return os.WriteFile(manifest, out, 0o644)
}
