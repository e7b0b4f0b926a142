package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readArchive returns the archive's files by name.
func readArchive(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		if h.Typeflag == tar.TypeReg {
			data, err := io.ReadAll(tr)
			require.NoError(t, err)
			out[h.Name] = data
		}
	}
}

// blob checks that a descriptor's blob is in the archive with its digest and size, and returns it.
func blob(t *testing.T, files map[string][]byte, d Descriptor) []byte {
	t.Helper()
	data, ok := files["blobs/sha256/"+strings.TrimPrefix(d.Digest, "sha256:")]
	require.True(t, ok, "blob %s is in the archive", d.Digest)
	assert.Equal(t, d.Digest, digest(data))
	assert.Equal(t, d.Size, int64(len(data)))
	return data
}

func TestWriteArchive(t *testing.T) {
	img := Image{
		Name:       "ghcr.io/dgdr-dev/dgdr:v0.1.0",
		Entrypoint: []string{"/usr/local/bin/dgdr-webhook"},
		User:       "65532:65532",
		Files:      []File{{Path: "/usr/local/bin/dgdr-webhook", Mode: 0o755, Data: []byte("binary")}},
	}
	var a, b bytes.Buffer
	require.NoError(t, WriteArchive(&a, img))
	require.NoError(t, WriteArchive(&b, img))
	assert.Equal(t, a.Bytes(), b.Bytes(), "the same image gives the same archive")

	files := readArchive(t, a.Bytes())
	assert.JSONEq(t, `{"imageLayoutVersion":"1.0.0"}`, string(files["oci-layout"]))
	var idx Index
	require.NoError(t, json.Unmarshal(files["index.json"], &idx))
	require.Len(t, idx.Manifests, 1)
	md := idx.Manifests[0]
	assert.Equal(t, "ghcr.io/dgdr-dev/dgdr:v0.1.0", md.Annotations[AnnotationContainerdRef])
	assert.Equal(t, "v0.1.0", md.Annotations[AnnotationRefName])
	assert.Equal(t, &Platform{Architecture: "amd64", OS: "linux"}, md.Platform)

	var m Manifest
	require.NoError(t, json.Unmarshal(blob(t, files, md), &m))
	var cfg Config
	require.NoError(t, json.Unmarshal(blob(t, files, m.Config), &cfg))
	assert.Equal(t, "65532:65532", cfg.Config.User)
	assert.Equal(t, []string{"/usr/local/bin/dgdr-webhook"}, cfg.Config.Entrypoint)
	require.Len(t, m.Layers, 1)
	zr, err := gzip.NewReader(bytes.NewReader(blob(t, files, m.Layers[0])))
	require.NoError(t, err)
	layer, err := io.ReadAll(zr)
	require.NoError(t, err)
	assert.Equal(t, []string{digest(layer)}, cfg.RootFS.DiffIDs, "diff_ids is the uncompressed layer's digest")

	// The layer: parents before children, the file with its mode, the nonroot user, a sticky /tmp.
	tr := tar.NewReader(bytes.NewReader(layer))
	var names []string
	modes := map[string]int64{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		names = append(names, h.Name)
		modes[h.Name] = h.Mode
		if h.Name == "etc/passwd" {
			data, _ := io.ReadAll(tr)
			assert.Contains(t, string(data), "nonroot:x:65532:65532:")
		}
	}
	assert.Equal(t, []string{"etc/", "home/", "home/nonroot/", "tmp/", "usr/", "usr/local/", "usr/local/bin/",
		"etc/group", "etc/passwd", "usr/local/bin/dgdr-webhook"}, names)
	assert.Equal(t, int64(0o755), modes["usr/local/bin/dgdr-webhook"])
	assert.Equal(t, int64(0o1777), modes["tmp/"])
}

func TestWriteArchiveRefusals(t *testing.T) {
	for name, tc := range map[string]struct {
		img  Image
		want string
	}{
		"no name":       {Image{Entrypoint: []string{"/x"}}, "expected a name"},
		"no entrypoint": {Image{Name: "x:1"}, "expected an entrypoint"},
		"relative path": {Image{Name: "x:1", Cmd: []string{"/x"}, Files: []File{{Path: "x"}}}, `file "x": expected a clean absolute path`},
		"twice":         {Image{Name: "x:1", Cmd: []string{"/x"}, Files: []File{{Path: "/x"}, {Path: "/x"}}}, `file "/x": given twice`},
	} {
		t.Run(name, func(t *testing.T) {
			assert.ErrorContains(t, WriteArchive(io.Discard, tc.img), tc.want)
		})
	}
}
