// Package oci writes container images as OCI image-layout archives without a container engine, for
// make e2e's node: `ctr -n k8s.io images import` loads them into containerd, where the kubelet finds
// them (nothing can be pulled there). An image is one layer of the given files on an otherwise empty
// root filesystem, the way the Dockerfile's distroless/static base is for static binaries: the files,
// /etc/passwd and /etc/group naming the nonroot user 65532, and a world-writable /tmp.
//
// Test support only: the release image is built from ./Dockerfile (make image).
package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"
)

// Media types and annotations of the OCI image spec, and the one containerd reads an image's name from.
const (
	MediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"

	AnnotationRefName       = "org.opencontainers.image.ref.name"
	AnnotationContainerdRef = "io.containerd.image.name"
)

// epoch is every file's mtime, so the same inputs give the same digests.
var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// File is one regular file of the image.
type File struct {
	Path string // absolute, e.g. /usr/local/bin/dgdr-webhook
	Mode int64  // permission bits, e.g. 0o755
	Data []byte
}

// Image is what WriteArchive writes.
type Image struct {
	// Name is the full reference the kubelet asks for, e.g. ghcr.io/dgdr-dev/dgdr:v0.1.0.
	Name       string
	Entrypoint []string
	Cmd        []string
	// User is the config's user, e.g. "65532:65532" (the manifests run non-root).
	User  string
	Env   []string
	Files []File
	// OS and Arch default to linux and amd64.
	OS, Arch string
}

// Descriptor is an OCI content descriptor.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *Platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Platform is a descriptor's platform.
type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// Manifest is an OCI image manifest.
type Manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        Descriptor   `json:"config"`
	Layers        []Descriptor `json:"layers"`
}

// Index is index.json of an image layout.
type Index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []Descriptor `json:"manifests"`
}

// Config is an OCI image configuration (the fields a runtime reads).
type Config struct {
	Architecture string       `json:"architecture"`
	OS           string       `json:"os"`
	Created      time.Time    `json:"created"`
	Config       RunConfig    `json:"config"`
	RootFS       RootFS       `json:"rootfs"`
	History      []HistoryRow `json:"history"`
}

// RunConfig is how a container of the image starts.
type RunConfig struct {
	User       string   `json:"User,omitempty"`
	Env        []string `json:"Env,omitempty"`
	Entrypoint []string `json:"Entrypoint,omitempty"`
	Cmd        []string `json:"Cmd,omitempty"`
	WorkingDir string   `json:"WorkingDir,omitempty"`
}

// RootFS lists the uncompressed layers' digests.
type RootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

// HistoryRow says where a layer came from.
type HistoryRow struct {
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by"`
}

// Layer returns the image's root filesystem as an uncompressed tar: the directories of every file,
// the files, the nonroot user's /etc/passwd and /etc/group, and /tmp (1777). Everything is owned by root.
func (img Image) Layer() ([]byte, error) {
	files := append([]File{
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{Path: "/etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnonroot:x:65532:\n")},
	}, img.Files...)
	dirs := map[string]int64{"/tmp": 0o1777, "/home/nonroot": 0o700}
	seen := map[string]bool{}
	for _, f := range files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
			return nil, fmt.Errorf("file %q: expected a clean absolute path", f.Path)
		}
		if seen[f.Path] {
			return nil, fmt.Errorf("file %q: given twice", f.Path)
		}
		seen[f.Path] = true
		for d := path.Dir(f.Path); d != "/"; d = path.Dir(d) {
			if _, ok := dirs[d]; !ok {
				dirs[d] = 0o755
			}
		}
	}
	// Parents first: every directory's ancestors are in the map too, and sort puts them before it.
	for d := range dirs {
		for p := path.Dir(d); p != "/"; p = path.Dir(p) {
			if _, ok := dirs[p]; !ok {
				dirs[p] = 0o755
			}
		}
	}
	names := make([]string, 0, len(dirs))
	for d := range dirs {
		names = append(names, d)
	}
	sort.Strings(names)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range names {
		h := &tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: dirs[d], ModTime: epoch, Format: tar.FormatPAX}
		if d == "/home/nonroot" {
			h.Uid, h.Gid = 65532, 65532
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("writing directory %s: %w", d, err)
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	for _, f := range files {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(f.Path, "/"), Mode: f.Mode, Size: int64(len(f.Data)), ModTime: epoch, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("writing %s: %w", f.Path, err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, fmt.Errorf("writing %s: %w", f.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("closing the layer: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteArchive writes img as an OCI image layout in a tar stream (what `ctr images import` reads): one
// gzipped layer, its config, its manifest, and index.json naming the manifest img.Name.
func WriteArchive(w io.Writer, img Image) error {
	if img.Name == "" {
		return fmt.Errorf("image: expected a name (e.g. ghcr.io/dgdr-dev/dgdr:v0.1.0)")
	}
	if len(img.Entrypoint) == 0 && len(img.Cmd) == 0 {
		return fmt.Errorf("image %s: expected an entrypoint or a command", img.Name)
	}
	if img.OS == "" {
		img.OS = "linux"
	}
	if img.Arch == "" {
		img.Arch = "amd64"
	}
	layer, err := img.Layer()
	if err != nil {
		return fmt.Errorf("image %s: %w", img.Name, err)
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if _, err := zw.Write(layer); err != nil {
		return fmt.Errorf("image %s: compressing the layer: %w", img.Name, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("image %s: compressing the layer: %w", img.Name, err)
	}
	env := img.Env
	if len(env) == 0 {
		env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	}
	cfg, err := json.Marshal(Config{
		Architecture: img.Arch, OS: img.OS, Created: epoch,
		Config:  RunConfig{User: img.User, Env: env, Entrypoint: img.Entrypoint, Cmd: img.Cmd, WorkingDir: "/"},
		RootFS:  RootFS{Type: "layers", DiffIDs: []string{digest(layer)}},
		History: []HistoryRow{{Created: epoch, CreatedBy: "test/e2e/oci: " + strings.Join(filePaths(img.Files), " ")}},
	})
	if err != nil {
		return fmt.Errorf("image %s: encoding the config: %w", img.Name, err)
	}
	manifest, err := json.Marshal(Manifest{
		SchemaVersion: 2, MediaType: MediaTypeManifest,
		Config: Descriptor{MediaType: MediaTypeConfig, Digest: digest(cfg), Size: int64(len(cfg))},
		Layers: []Descriptor{{MediaType: MediaTypeLayer, Digest: digest(gz.Bytes()), Size: int64(gz.Len())}},
	})
	if err != nil {
		return fmt.Errorf("image %s: encoding the manifest: %w", img.Name, err)
	}
	tag := img.Name
	if i := strings.LastIndex(tag, ":"); i > strings.LastIndex(tag, "/") {
		tag = tag[i+1:]
	} else {
		tag = "latest"
	}
	index, err := json.Marshal(Index{SchemaVersion: 2, MediaType: MediaTypeIndex, Manifests: []Descriptor{{
		MediaType: MediaTypeManifest, Digest: digest(manifest), Size: int64(len(manifest)),
		Platform:    &Platform{Architecture: img.Arch, OS: img.OS},
		Annotations: map[string]string{AnnotationContainerdRef: img.Name, AnnotationRefName: tag},
	}}})
	if err != nil {
		return fmt.Errorf("image %s: encoding the index: %w", img.Name, err)
	}

	tw := tar.NewWriter(w)
	entries := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
		{blobPath(manifest), manifest},
		{blobPath(cfg), cfg},
		{blobPath(gz.Bytes()), gz.Bytes()},
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: epoch}); err != nil {
			return fmt.Errorf("image %s: %w", img.Name, err)
		}
	}
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.name, Mode: 0o644, Size: int64(len(e.data)), ModTime: epoch}); err != nil {
			return fmt.Errorf("image %s: writing %s: %w", img.Name, e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return fmt.Errorf("image %s: writing %s: %w", img.Name, e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("image %s: closing the archive: %w", img.Name, err)
	}
	return nil
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func blobPath(b []byte) string { return "blobs/sha256/" + strings.TrimPrefix(digest(b), "sha256:") }

func filePaths(fs []File) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Path
	}
	return out
}
