package ship

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

func TestValidateVersion(t *testing.T) {
	tests := []struct {
		version string
		wantErr string
	}{
		{version: "v0.1.0"},
		{version: "v1.2.3-rc.1"},
		{version: "v0.0.0-20261127062246-63dd705d02f0"},
		{version: "v0.0.0-20261127062246-63dd705d02f0.dirty"},
		{version: "v1.0.0+build.5"},
		{version: "0.1.0", wantErr: `expected a leading "v"`},
		{version: "", wantErr: `expected a leading "v"`},
		{version: "v0.1", wantErr: "expected a semantic version"},
		{version: "v1.2.3-01", wantErr: "expected a semantic version"}, // leading zero in a numeric identifier
		{version: "vlatest", wantErr: "expected a semantic version"},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			err := ValidateVersion(tt.version)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestNames(t *testing.T) {
	linux := Platform{"linux", "amd64"}
	windows := Platform{"windows", "arm64"}
	assert.Equal(t, "kubectl-dgdr", linux.Bin())
	assert.Equal(t, "kubectl-dgdr.exe", windows.Bin())
	assert.Equal(t, "kubectl-dgdr_v0.1.0_windows_arm64.tar.gz", ArchiveName("v0.1.0", windows))
	assert.Equal(t, "https://github.com/dgdr-dev/dgdr/releases/download/v0.1.0/kubectl-dgdr_v0.1.0_linux_amd64.tar.gz",
		ReleaseURL("v0.1.0", linux))

	seen := map[Platform]bool{}
	for _, p := range Platforms() {
		assert.False(t, seen[p], "platform %s listed twice", p)
		seen[p] = true
	}
	for _, os := range []string{"linux", "darwin", "windows"} {
		for _, arch := range []string{"amd64", "arm64"} {
			assert.True(t, seen[Platform{os, arch}], "missing %s/%s", os, arch)
		}
	}
}

func TestWriteArchive(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	lic := filepath.Join(dir, "lic")
	require.NoError(t, os.WriteFile(bin, []byte("binary"), 0o700))
	require.NoError(t, os.WriteFile(lic, []byte("license text"), 0o600))
	files := []ArchiveFile{{Name: "kubectl-dgdr", Mode: 0o755, Path: bin}, {Name: "LICENSE", Mode: 0o644, Path: lic}}
	mtime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	var a, b, c bytes.Buffer
	require.NoError(t, WriteArchive(&a, mtime, files...))
	require.NoError(t, WriteArchive(&b, mtime, files...))
	require.NoError(t, WriteArchive(&c, mtime.Add(time.Second), files...))

	assert.Equal(t, a.Bytes(), b.Bytes(), "the same files and time must give the same archive (and sha256)")
	assert.NotEqual(t, a.Bytes(), c.Bytes(), "the recorded time is part of the archive")
	entries, err := ReadArchive(bytes.NewReader(a.Bytes()))
	require.NoError(t, err)
	assert.Equal(t, []ArchiveEntry{{"kubectl-dgdr", 0o755, []byte("binary")}, {"LICENSE", 0o644, []byte("license text")}}, entries,
		"modes come from the archive spec, not from the files on disk")

	err = WriteArchive(io.Discard, mtime, ArchiveFile{Name: "x", Mode: 0o644, Path: filepath.Join(dir, "missing")})
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestChecksumsAndCollect(t *testing.T) {
	dir := t.TempDir()
	var want []Artifact
	for i, p := range Platforms() {
		name := ArchiveName("v0.1.0", p)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(strings.Repeat("x", i)), 0o644))
		sum, err := FileSHA256(filepath.Join(dir, name))
		require.NoError(t, err)
		want = append(want, Artifact{Platform: p, Archive: name, SHA256: sum})
	}
	got, err := Collect(dir, "v0.1.0")
	require.NoError(t, err)
	assert.Equal(t, want, got)
	// sha256 of the empty file, the first platform's archive
	assert.Equal(t, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", got[0].SHA256)

	require.NoError(t, WriteChecksums(filepath.Join(dir, ChecksumsFile), got))
	text, err := os.ReadFile(filepath.Join(dir, ChecksumsFile))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
	require.Len(t, lines, len(Platforms()))
	assert.Equal(t, got[0].SHA256+"  "+got[0].Archive, lines[0])

	_, err = Collect(dir, "v0.2.0")
	require.ErrorContains(t, err, "run make dist")
	_, err = Collect(dir, "0.1.0")
	require.ErrorContains(t, err, `expected a leading "v"`)
}

// TestRenderManifest renders the real template with hashes made only of digits: quoted in the template,
// they must stay strings (unquoted, YAML would read them as numbers and krew would reject them).
func TestRenderManifest(t *testing.T) {
	tmpl, err := os.ReadFile(filepath.Join("..", "..", "krew", "dgdr.yaml.tmpl"))
	require.NoError(t, err)
	var arts []Artifact
	for i, p := range Platforms() {
		arts = append(arts, Artifact{Platform: p, Archive: ArchiveName("v1.2.3", p), SHA256: strings.Repeat(string(rune('0'+i)), 64)})
	}
	out, err := RenderManifest(string(tmpl), "v1.2.3", arts)
	require.NoError(t, err)

	var m struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Spec struct {
			Version   string `json:"version"`
			Caveats   string `json:"caveats"`
			Platforms []struct {
				Selector struct {
					MatchLabels map[string]string `json:"matchLabels"`
				} `json:"selector"`
				URI    string `json:"uri"`
				SHA256 any    `json:"sha256"`
				Bin    string `json:"bin"`
			} `json:"platforms"`
		} `json:"spec"`
	}
	require.NoError(t, yaml.Unmarshal(out, &m), "%s", out)
	assert.Equal(t, "krew.googlecontainertools.github.com/v1alpha2", m.APIVersion)
	assert.Equal(t, "Plugin", m.Kind)
	assert.Equal(t, Plugin, m.Metadata.Name)
	assert.Equal(t, "v1.2.3", m.Spec.Version)
	assert.Contains(t, m.Spec.Caveats, "v1.2.3")
	require.Len(t, m.Spec.Platforms, len(arts))
	for i, p := range m.Spec.Platforms {
		a := arts[i]
		assert.Equal(t, map[string]string{"os": a.OS, "arch": a.Arch}, p.Selector.MatchLabels)
		assert.Equal(t, ReleaseURL("v1.2.3", a.Platform), p.URI)
		assert.Equal(t, a.SHA256, p.SHA256, "sha256 must decode as a string")
		assert.Equal(t, a.Bin(), p.Bin)
	}
	assert.NotContains(t, string(out), "{{", "template actions left in the output")

	_, err = RenderManifest("{{ .Nope }}", "v1.2.3", arts)
	require.ErrorContains(t, err, "rendering the krew manifest template")
}
