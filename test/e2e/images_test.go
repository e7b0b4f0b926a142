package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/dgdr-dev/dgdr/internal/webhook"
	"github.com/dgdr-dev/dgdr/test/e2e/oci"
)

// The images the node runs. serverImage is what manifests/ names (the repository of `make image`, the
// tag of manifests/kustomization.yaml, which the binaries are stamped with so the webhook's default
// --profiler-image is the same); the others are test-only.
var (
	serverImage    string // set by buildImages
	pauseImage     = "dgdr-e2e.invalid/pause:v1"
	simengineImage = "dgdr-e2e.invalid/simengine:v1"
	// imageArchives are the OCI archives the node imports.
	imageArchives []string
)

// nonroot is the distroless user the Dockerfile's image runs as.
const nonroot = "65532:65532"

// binaries are the packages the suite builds, by output name.
var binaries = map[string]string{
	"kubectl-dgdr":  "./cmd/kubectl-dgdr",
	"dgdr-webhook":  "./cmd/webhook",
	"dgdr-profiler": "./cmd/dgdr-profiler",
	"pause":         "./test/e2e/cmd/pause",
	"simengine":     "./test/e2e/cmd/simengine",
}

// releaseTag reads the image tag the default install deploys (images: newTag in manifests/kustomization.yaml).
func releaseTag(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "manifests", "kustomization.yaml"))
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`(?m)^- name: ` + regexp.QuoteMeta(webhook.ProfilerImageRepository) + `\n\s+newTag: (\S+)$`).FindSubmatch(b)
	if m == nil {
		return "", fmt.Errorf("manifests/kustomization.yaml: expected an images: entry for %s with a newTag", webhook.ProfilerImageRepository)
	}
	return string(m[1]), nil
}

// buildImages builds the binaries (static, stamped with the release tag, one go build) into dir/bin and
// writes the images as OCI archives into dir/images.
func buildImages(ctx context.Context, root, dir string) (bin string, err error) {
	tag, err := releaseTag(root)
	if err != nil {
		return "", err
	}
	serverImage = webhook.ProfilerImageRepository + ":" + tag
	bin = filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", err
	}
	for name, pkg := range binaries {
		// go build -o DIR names each binary after its package directory; build them one by one into their
		// names, in one go command per binary but sequential (the build cache makes the later ones links).
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath",
			"-ldflags", "-s -w -X github.com/dgdr-dev/dgdr/internal/version.Version="+tag, "-o", filepath.Join(bin, name), pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("building %s: %w: %s", pkg, err, out)
		}
	}
	read := func(name string) []byte {
		b, rerr := os.ReadFile(filepath.Join(bin, name))
		if rerr != nil && err == nil {
			err = rerr
		}
		return b
	}
	// The server image as ./Dockerfile makes it (test/ship/image checks the Dockerfile copies these two
	// binaries to these paths, runs as 65532 and starts dgdr-webhook).
	images := []oci.Image{
		{Name: serverImage, User: nonroot, Entrypoint: []string{"/usr/local/bin/dgdr-webhook"}, Files: []oci.File{
			{Path: "/usr/local/bin/dgdr-webhook", Mode: 0o755, Data: read("dgdr-webhook")},
			{Path: "/usr/local/bin/dgdr-profiler", Mode: 0o755, Data: read("dgdr-profiler")},
		}},
		{Name: pauseImage, User: nonroot, Entrypoint: []string{"/pause"}, Files: []oci.File{{Path: "/pause", Mode: 0o755, Data: read("pause")}}},
		{Name: simengineImage, User: nonroot, Entrypoint: []string{"/usr/local/bin/simengine"}, Files: []oci.File{
			{Path: "/usr/local/bin/simengine", Mode: 0o755, Data: read("simengine")},
		}},
	}
	if err != nil {
		return "", err
	}
	imageArchives = nil
	if err := os.MkdirAll(filepath.Join(dir, "images"), 0o755); err != nil {
		return "", err
	}
	for i, img := range images {
		var buf bytes.Buffer
		if err := oci.WriteArchive(&buf, img); err != nil {
			return "", err
		}
		p := filepath.Join(dir, "images", fmt.Sprintf("%d.tar", i))
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			return "", err
		}
		imageArchives = append(imageArchives, p)
	}
	return bin, nil
}

// buildAll is buildImages for a test.
func buildAll(t *testing.T, root, dir string) string {
	bin, err := buildImages(t.Context(), root, dir)
	must(t, err, "building the binaries and images")
	return bin
}
