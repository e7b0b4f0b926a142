// Package ship_test checks the release the way users and krew-index receive it: it runs `make dist`
// into a temporary directory with a test version, then checks the archives and checksums, decodes the
// krew manifest strictly into krew's own types, runs krew's validate-krew-manifest, and installs this
// machine's archive with a real `kubectl krew install` (offline, throwaway KREW_ROOT), running the
// installed plugin through kubectl's plugin discovery. krew is built from sigs.k8s.io/krew v0.4.3 in
// the tools module hack/krew (it cannot join the main module; see hack/krew/go.mod).
package ship_test

import (
	"bufio"
	"bytes"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/dgdr-dev/dgdr/internal/ship"
	"github.com/dgdr-dev/dgdr/internal/testenv"
)

// What the test release is stamped with; `kubectl dgdr version` must print exactly these.
const (
	testVersion = "v0.1.0-test.1"
	testCommit  = "abc1234"
	testDate    = "2026-01-02T03:04:05Z"
)

var (
	workDir   string // made by TestMain, removed after the tests
	buildOnce sync.Once
	rel       *release
	relErr    error
)

// release is what `make dist` and the krew tools produced, built once for all tests.
type release struct {
	root     string // repository root
	dist     string // DIST_DIR
	manifest string // KREW_MANIFEST (…/krew/dgdr.yaml)
	tools    string // kubectl-krew, validate-krew-manifest, checkmanifest
	kubectl  string
}

func TestMain(m *testing.M) {
	var err error
	workDir, err = os.MkdirTemp("", "dgdr-ship-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(workDir)
	os.Exit(code)
}

// built runs `make dist` and builds the krew tools on first use; every test shares the result.
func built(t *testing.T) *release {
	t.Helper()
	buildOnce.Do(func() {
		r := &release{
			root:     testenv.RepoRoot(t),
			dist:     filepath.Join(workDir, "dist"),
			manifest: filepath.Join(workDir, "krew", ship.Plugin+".yaml"),
			tools:    filepath.Join(workDir, "tools"),
			kubectl:  testenv.Kubectl(t),
		}
		relErr = r.build(t)
		rel = r
	})
	if rel == nil || relErr != nil {
		t.Fatalf("building the release: %v", relErr)
	}
	return rel
}

func (r *release) build(t *testing.T) error {
	// The Makefile target users run, with the version pinned and the outputs redirected.
	mk := exec.CommandContext(t.Context(), "make", "-s", "dist",
		"VERSION="+testVersion, "COMMIT="+testCommit, "DATE="+testDate,
		"DIST_DIR="+r.dist, "KREW_MANIFEST="+r.manifest)
	mk.Dir = r.root
	// Not the outer make's flags and variables when the tests run under `make test`.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "MAKEFLAGS" && k != "MFLAGS" && k != "MAKELEVEL" {
			mk.Env = append(mk.Env, kv)
		}
	}
	mk.Env = append(mk.Env, "SOURCE_DATE_EPOCH=1767323045")
	if out, err := mk.CombinedOutput(); err != nil {
		return fmt.Errorf("make dist: %w\n%s", err, out)
	}
	// krew's binaries and our strict checker, from the tools module's pinned go.sum.
	gb := exec.CommandContext(t.Context(), "go", "build", "-o", r.tools+string(filepath.Separator),
		"sigs.k8s.io/krew/cmd/krew", "sigs.k8s.io/krew/cmd/validate-krew-manifest", "./checkmanifest")
	gb.Dir = filepath.Join(r.root, "hack", "krew")
	gb.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	if out, err := gb.CombinedOutput(); err != nil {
		return fmt.Errorf("building krew v0.4.3 and checkmanifest in hack/krew: %w\n%s", err, out)
	}
	// kubectl finds plugins by name on PATH: krew is the plugin kubectl-krew.
	return os.Rename(filepath.Join(r.tools, "krew"), filepath.Join(r.tools, "kubectl-krew"))
}

// run executes a command and returns its stdout and stderr; env replaces the environment.
func run(t *testing.T, env []string, name string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

func readArchive(t *testing.T, path string) []ship.ArchiveEntry {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	entries, err := ship.ReadArchive(f)
	require.NoError(t, err)
	return entries
}

// binaryTarget reads the OS and architecture an executable was built for from its header.
func binaryTarget(data []byte) (ship.Platform, error) {
	r := bytes.NewReader(data)
	if f, err := elf.NewFile(r); err == nil {
		arch := map[elf.Machine]string{elf.EM_X86_64: "amd64", elf.EM_AARCH64: "arm64"}[f.Machine]
		return ship.Platform{OS: "linux", Arch: arch}, nil
	}
	if f, err := macho.NewFile(r); err == nil {
		arch := map[macho.Cpu]string{macho.CpuAmd64: "amd64", macho.CpuArm64: "arm64"}[f.Cpu]
		return ship.Platform{OS: "darwin", Arch: arch}, nil
	}
	if f, err := pe.NewFile(r); err == nil {
		arch := map[uint16]string{pe.IMAGE_FILE_MACHINE_AMD64: "amd64", pe.IMAGE_FILE_MACHINE_ARM64: "arm64"}[f.Machine]
		return ship.Platform{OS: "windows", Arch: arch}, nil
	}
	return ship.Platform{}, fmt.Errorf("expected an ELF, Mach-O or PE executable")
}

// TestArchives: one archive per platform, named as released, holding exactly the binary for that
// platform (read from its header; static on linux) and the repository's LICENSE.
func TestArchives(t *testing.T) {
	r := built(t)
	license, err := os.ReadFile(filepath.Join(r.root, "LICENSE"))
	require.NoError(t, err)
	require.Contains(t, string(license), "Apache License")

	for _, p := range ship.Platforms() {
		t.Run(p.String(), func(t *testing.T) {
			entries := readArchive(t, filepath.Join(r.dist, ship.ArchiveName(testVersion, p)))
			require.Len(t, entries, 2)
			bin, lic := entries[0], entries[1]
			assert.Equal(t, p.Bin(), bin.Name)
			assert.Equal(t, int64(0o755), bin.Mode)
			assert.Equal(t, "LICENSE", lic.Name)
			assert.Equal(t, string(license), string(lic.Data))

			got, err := binaryTarget(bin.Data)
			require.NoError(t, err)
			assert.Equal(t, p, got)
			if p.OS == "linux" {
				require.NoError(t, ship.CheckStaticELF(bytes.NewReader(bin.Data)))
			}
			assert.NotContains(t, string(bin.Data), r.root, "-trimpath: no build-machine paths in the binary")
		})
	}
}

// TestChecksums: checksums.txt lists every archive once, in `sha256sum -c` format, with its real hash.
func TestChecksums(t *testing.T) {
	r := built(t)
	f, err := os.Open(filepath.Join(r.dist, ship.ChecksumsFile))
	require.NoError(t, err)
	defer f.Close()
	line := regexp.MustCompile(`^([a-f0-9]{64})  (\S+)$`)
	got := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		require.NotNil(t, m, "line %q: expected `<sha256>  <file>`", sc.Text())
		assert.NotContains(t, got, m[2], "listed twice")
		got[m[2]] = m[1]
	}
	require.NoError(t, sc.Err())

	archives, err := filepath.Glob(filepath.Join(r.dist, "*.tar.gz"))
	require.NoError(t, err)
	want := map[string]string{}
	for _, a := range archives {
		sum, err := ship.FileSHA256(a)
		require.NoError(t, err)
		want[filepath.Base(a)] = sum
	}
	assert.Len(t, want, len(ship.Platforms()))
	assert.Equal(t, want, got)
}

type checkSummary struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Platforms []struct {
		OS      string   `json:"os"`
		Arch    string   `json:"arch"`
		URI     string   `json:"uri"`
		Archive string   `json:"archive"`
		SHA256  string   `json:"sha256"`
		Bin     string   `json:"bin"`
		Files   []string `json:"files"`
	} `json:"platforms"`
}

// TestManifestIndexRules decodes the generated manifest strictly into krew's index.Plugin and checks
// krew-index's rules against the archives (hack/krew/checkmanifest), then checks that it describes
// exactly what was built.
func TestManifestIndexRules(t *testing.T) {
	r := built(t)
	stdout, stderr, err := run(t, os.Environ(), filepath.Join(r.tools, "checkmanifest"), "-manifest", r.manifest, "-archives", r.dist)
	require.NoError(t, err, "checkmanifest: %s", stderr)
	var s checkSummary
	require.NoError(t, json.Unmarshal([]byte(stdout), &s))
	assert.Equal(t, ship.Plugin, s.Name)
	assert.Equal(t, testVersion, s.Version)
	require.Len(t, s.Platforms, len(ship.Platforms()))
	for i, p := range ship.Platforms() {
		got := s.Platforms[i]
		assert.Equal(t, p, ship.Platform{OS: got.OS, Arch: got.Arch})
		assert.Equal(t, ship.ReleaseURL(testVersion, p), got.URI)
		assert.Equal(t, ship.ArchiveName(testVersion, p), got.Archive)
		assert.Equal(t, p.Bin(), got.Bin)
		assert.ElementsMatch(t, []string{p.Bin(), "LICENSE"}, got.Files)
	}

	// Every sha256 is a double-quoted string in the file, so that no hash can decode as a number.
	text, err := os.ReadFile(r.manifest)
	require.NoError(t, err)
	node, err := yaml.Parse(string(text))
	require.NoError(t, err)
	platforms, err := node.Pipe(yaml.Lookup("spec", "platforms"))
	require.NoError(t, err)
	elems, err := platforms.Elements()
	require.NoError(t, err)
	require.Len(t, elems, len(ship.Platforms()))
	for _, e := range elems {
		assert.Equal(t, yaml.DoubleQuotedStyle, e.Field("sha256").Value.YNode().Style)
	}
}

// TestManifestIndexRulesReject shows the checker catching what krew-index would reject (and what
// krew's own lenient decoding lets through).
func TestManifestIndexRulesReject(t *testing.T) {
	r := built(t)
	text, err := os.ReadFile(r.manifest)
	require.NoError(t, err)
	good := string(text)
	sum := func(p ship.Platform) string {
		s, err := ship.FileSHA256(filepath.Join(r.dist, ship.ArchiveName(testVersion, p)))
		require.NoError(t, err)
		return s
	}
	linuxAMD, linuxARM := sum(ship.Platform{OS: "linux", Arch: "amd64"}), sum(ship.Platform{OS: "linux", Arch: "arm64"})

	tests := []struct {
		name    string
		file    string
		edit    func(string) string
		wantErr string
	}{
		{name: "file name differs from metadata.name", file: "other.yaml",
			wantErr: `metadata.name "dgdr": expected the file name without .yaml, "other"`},
		{name: "unknown field", edit: func(s string) string {
			return strings.Replace(s, "  homepage:", "  homepages: x\n  homepage:", 1)
		}, wantErr: "decoding"},
		{name: "version without v", edit: func(s string) string {
			return strings.Replace(s, `version: "v`, `version: "`, 1)
		}, wantErr: `expected a leading "v"`},
		{name: "sha256 of another archive", edit: func(s string) string {
			return strings.Replace(s, linuxAMD, linuxARM, 1)
		}, wantErr: "spec.platforms[0].sha256"},
		{name: "unquoted all-digit sha256", edit: func(s string) string {
			return strings.Replace(s, `"`+linuxAMD+`"`, strings.Repeat("1", 64), 1)
		}, wantErr: `spec.platforms[0].sha256 "+Inf": expected 64 lowercase hex digits`}, // YAML read a number
		{name: "selector without arch", edit: func(s string) string {
			return strings.Replace(s, "        arch: amd64\n", "", 1)
		}, wantErr: "expected exactly the keys os and arch"},
		{name: "two platforms select linux/amd64", edit: func(s string) string {
			return strings.Replace(s, "os: linux\n        arch: arm64", "os: linux\n        arch: amd64", 1)
		}, wantErr: "selects linux/amd64, as spec.platforms[0] already does"},
		{name: "bin not in the archive", edit: func(s string) string {
			return strings.Replace(s, "bin: kubectl-dgdr\n", "bin: kubectl-neat\n", 1)
		}, wantErr: `spec.platforms[0].bin "kubectl-neat": expected it in`},
		{name: "windows bin without .exe", edit: func(s string) string {
			return strings.Replace(s, "bin: kubectl-dgdr.exe", "bin: kubectl-dgdr", 1)
		}, wantErr: `expected a .exe name on windows`},
		{name: "long short description", edit: func(s string) string {
			return strings.Replace(s, "shortDescription: ", "shortDescription: "+strings.Repeat("x", 40), 1)
		}, wantErr: "spec.shortDescription"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := good
			if tt.edit != nil {
				text = tt.edit(good)
				require.NotEqual(t, good, text, "the edit must change the manifest")
			}
			file := tt.file
			if file == "" {
				file = ship.Plugin + ".yaml"
			}
			path := filepath.Join(t.TempDir(), file)
			require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
			_, stderr, err := run(t, os.Environ(), filepath.Join(r.tools, "checkmanifest"), "-manifest", path, "-archives", r.dist)
			require.Error(t, err)
			assert.Contains(t, stderr, tt.wantErr)
		})
	}
}

// TestValidateKrewManifest runs krew's own validator (sigs.k8s.io/krew v0.4.3 cmd/validate-krew-manifest).
// -skip-install: its install step downloads each uri; TestKrewInstall installs from the local archives.
func TestValidateKrewManifest(t *testing.T) {
	r := built(t)
	text, err := os.ReadFile(r.manifest)
	require.NoError(t, err)
	tests := []struct {
		name, file, text, want string
		ok                     bool
	}{
		{name: "generated manifest", file: "dgdr.yaml", text: string(text), ok: true,
			want: "no overlapping spec.platform[].selector"},
		{name: "renamed", file: "other.yaml", text: string(text), want: `plugin should be named "other", not "dgdr"`},
		{name: "overlapping selectors", file: "dgdr.yaml",
			text: strings.Replace(string(text), "os: linux\n        arch: arm64", "os: linux\n        arch: amd64", 1),
			want: "overlapping selectors that select linux/amd64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tt.file)
			require.NoError(t, os.WriteFile(path, []byte(tt.text), 0o644))
			_, stderr, err := run(t, os.Environ(), filepath.Join(r.tools, "validate-krew-manifest"), "-manifest", path, "-skip-install")
			if tt.ok {
				require.NoError(t, err, stderr)
				assert.Contains(t, stderr, "structural validation OK")
			} else {
				require.Error(t, err)
			}
			assert.Contains(t, stderr, tt.want)
		})
	}
}

// TestKrewInstall installs this machine's archive with `kubectl krew install --manifest --archive` into
// a throwaway KREW_ROOT, checks krew put the binary and LICENSE in its store and linked the binary into
// $KREW_ROOT/bin, then runs `kubectl dgdr version` through kubectl's plugin discovery. One install is
// enough: what differs between platforms — each archive's contents and target (TestArchives), its
// hash in checksums.txt (TestChecksums) and in the manifest, its selector and bin (checkmanifest in
// TestManifestIndexRules) — is checked for every platform without installing it.
func TestKrewInstall(t *testing.T) {
	r := built(t)
	p := ship.Platform{OS: runtime.GOOS, Arch: runtime.GOARCH}
	require.Contains(t, ship.Platforms(), p, "expected a release for the platform the test runs on")
	dir := t.TempDir()
	krewRoot := filepath.Join(dir, "krew")
	require.NoError(t, os.Mkdir(filepath.Join(dir, "home"), 0o755))
	// Only the krew plugin and krew's bin directory are on PATH: kubectl-dgdr can come from nowhere else.
	env := []string{
		"HOME=" + filepath.Join(dir, "home"),
		"KREW_ROOT=" + krewRoot,
		"PATH=" + r.tools + string(os.PathListSeparator) + filepath.Join(krewRoot, "bin"),
	}
	archive := filepath.Join(r.dist, ship.ArchiveName(testVersion, p))
	stdout, stderr, err := run(t, env, r.kubectl, "krew", "install", "--manifest="+r.manifest, "--archive="+archive)
	require.NoError(t, err, "krew install:\n%s\n%s", stdout, stderr)
	assert.Contains(t, stderr, "Installed plugin: dgdr")

	store := filepath.Join(krewRoot, "store", ship.Plugin, testVersion)
	for _, f := range []string{p.Bin(), "LICENSE"} {
		_, err := os.Stat(filepath.Join(store, f))
		assert.NoError(t, err, "krew should have extracted %s", f)
	}
	link, err := os.Readlink(filepath.Join(krewRoot, "bin", p.Bin()))
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(store, p.Bin()), link)
	receipt, err := os.ReadFile(filepath.Join(krewRoot, "receipts", ship.Plugin+".yaml"))
	require.NoError(t, err)
	assert.Contains(t, string(receipt), "version: "+testVersion)

	stdout, stderr, err = run(t, env, r.kubectl, "dgdr", "version", "-o", "json")
	require.NoError(t, err, stderr)
	var v map[string]string
	require.NoError(t, json.Unmarshal([]byte(stdout), &v), stdout)
	assert.Equal(t, map[string]string{"version": testVersion, "commit": testCommit, "date": testDate}, v)

	stdout, _, err = run(t, env, r.kubectl, "dgdr", "version")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(stdout, "kubectl-dgdr "+testVersion+" "), stdout)
}
