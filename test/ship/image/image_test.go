// Package image_test checks the server image without a container engine: it reads ./Dockerfile,
// rebuilds the binaries its build stage builds (same packages, same flags and environment) and checks
// they are static, and checks that what runs the image — the webhook Deployment in manifests/ and the
// profiling Job from pkg/expand — names the image `make image` builds and an entrypoint the image has.
package image_test

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	apiruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/dgdr-dev/dgdr/internal/ship"
	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/internal/webhook"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
)

// The runtime base: no shell and no libc, so binaries must be static; "nonroot" is user 65532.
const (
	runtimeBase = "gcr.io/distroless/static-debian12:nonroot"
	nonrootUID  = 65532
)

// image is what the Dockerfile says the image holds.
type image struct {
	d     *ship.Dockerfile
	build *ship.Stage
	// files maps each path the final stage copies from the build stage to the go build that made it.
	files map[string]ship.GoBuild
	// entrypoint is the final stage's ENTRYPOINT.
	entrypoint []string
}

func loadImage(t *testing.T) image {
	t.Helper()
	f, err := os.Open(filepath.Join(testenv.RepoRoot(t), "Dockerfile"))
	require.NoError(t, err)
	defer f.Close()
	d, err := ship.ParseDockerfile(f)
	require.NoError(t, err)
	final := d.Final()

	eps := final.Find("ENTRYPOINT")
	require.Len(t, eps, 1, "the final stage needs one ENTRYPOINT")
	entrypoint, err := eps[0].Exec()
	require.NoError(t, err)

	img := image{d: d, files: map[string]ship.GoBuild{}, entrypoint: entrypoint}
	// Cross-compiled for linux on this machine's architecture, as `docker build` here would.
	for _, cp := range final.Find("COPY") {
		from, ok := cp.Flag("from")
		require.True(t, ok, "line %d: the final stage copies only from the build stage", cp.Line)
		stage, err := d.Stage(from)
		require.NoError(t, err)
		require.True(t, img.build == nil || img.build == stage, "one build stage")
		img.build = stage
		vars, err := d.Vars(stage, map[string]string{"TARGETOS": "linux", "TARGETARCH": runtime.GOARCH, "BUILDPLATFORM": "linux/" + runtime.GOARCH})
		require.NoError(t, err)
		builds, err := stage.GoBuilds(vars)
		require.NoError(t, err)
		args, err := ship.SplitShellWords(cp.Args, func(string) (string, bool) { return "", false })
		require.NoError(t, err)
		require.Len(t, args, 2, "line %d: expected COPY --from=%s SRC DEST", cp.Line, from)
		i := slices.IndexFunc(builds, func(b ship.GoBuild) bool { return b.Output == args[0] })
		require.GreaterOrEqual(t, i, 0, "line %d: %s is not built by the %s stage", cp.Line, args[0], from)
		img.files[args[1]] = builds[i]
	}
	require.NotNil(t, img.build, "the final stage copies nothing from a build stage")
	return img
}

// packageOf says which package built the executable at p inside the image ("" when none did).
// A bare name is looked up in the PATH directories distroless sets.
func (img image) packageOf(p string) string {
	if !strings.Contains(p, "/") {
		for _, dir := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
			if b, ok := img.files[path.Join(dir, p)]; ok {
				return b.Package
			}
		}
		return ""
	}
	return img.files[p].Package
}

// TestDockerfile checks the shape of the image: a Go 1.26 builder with CGO off and -trimpath, the
// distroless static base, user 65532, exec-form entrypoint dgdr-webhook, and both server binaries
// under /usr/local/bin.
func TestDockerfile(t *testing.T) {
	img := loadImage(t)
	final := img.d.Final()
	assert.Equal(t, runtimeBase, final.Base)
	assert.Empty(t, final.Find("RUN"), "distroless has no shell: the final stage cannot RUN")
	assert.Regexp(t, `^golang:1\.26(\.\d+)?$`, img.build.Base)

	users := final.Find("USER")
	require.Len(t, users, 1)
	assert.Regexp(t, `^65532(:65532)?$`, users[0].Args, "numeric non-root user, so runAsNonRoot can verify it")

	assert.Equal(t, map[string]string{
		"/usr/local/bin/dgdr-webhook":  "./cmd/webhook",
		"/usr/local/bin/dgdr-profiler": "./cmd/dgdr-profiler",
	}, func() map[string]string {
		m := map[string]string{}
		for dest, b := range img.files {
			m[dest] = b.Package
		}
		return m
	}())
	assert.Equal(t, []string{"/usr/local/bin/dgdr-webhook"}, img.entrypoint)
	for dest, b := range img.files {
		assert.Equal(t, "0", b.Env["CGO_ENABLED"], "%s: CGO must be off for a static binary", dest)
		assert.Contains(t, b.Flags, "-trimpath", dest)
	}
	// VOLUME would make the runtime create writable anonymous volumes: the image needs none.
	assert.Empty(t, final.Find("VOLUME"))
}

// TestImageBinariesAreStatic builds what the Dockerfile's build stage builds, with its flags and
// environment, and checks each is a static linux executable the distroless base can run.
func TestImageBinariesAreStatic(t *testing.T) {
	img := loadImage(t)
	root := testenv.RepoRoot(t)
	out := t.TempDir()
	for dest, b := range img.files {
		t.Run(path.Base(dest), func(t *testing.T) {
			bin := filepath.Join(out, path.Base(dest))
			args := append(append([]string{"build"}, b.Flags...), "-o", bin, b.Package)
			cmd := exec.CommandContext(t.Context(), "go", args...)
			cmd.Dir = root
			// The builder image sets no GOFLAGS; the stage's ARGs and ENVs are the RUN's environment.
			cmd.Env = append(os.Environ(), "GOFLAGS=")
			for k, v := range b.Env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			outb, err := cmd.CombinedOutput()
			require.NoError(t, err, "go %s (Dockerfile line %d): %s", strings.Join(args, " "), b.Line, outb)

			data, err := os.ReadFile(bin)
			require.NoError(t, err)
			require.NoError(t, ship.CheckStaticELF(bytes.NewReader(data)))
			f, err := elf.NewFile(bytes.NewReader(data))
			require.NoError(t, err)
			want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[runtime.GOARCH]
			assert.Equal(t, want, f.Machine)
			assert.NotContains(t, string(data), root, "-trimpath: no build-machine paths in the binary")
		})
	}
}

// makefileImage is the repository `make image` tags (IMAGE ?= … in the Makefile).
func makefileImage(t *testing.T) string {
	t.Helper()
	mk, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "Makefile"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^IMAGE\s*\?=\s*(\S+)\s*$`).FindSubmatch(mk)
	require.NotNil(t, m, "the Makefile sets no IMAGE")
	return string(m[1])
}

// splitImage separates repository and tag (a ':' after the last '/').
func splitImage(ref string) (repo, tag string) {
	slash := strings.LastIndex(ref, "/")
	if i := strings.LastIndex(ref, ":"); i > slash {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}

// podSpecs finds the pod specs of the rendered workloads.
func podSpecs(t *testing.T, objs []*unstructured.Unstructured) map[string]corev1.PodSpec {
	t.Helper()
	paths := map[string][]string{
		"Deployment": {"spec", "template", "spec"}, "StatefulSet": {"spec", "template", "spec"},
		"DaemonSet": {"spec", "template", "spec"}, "Job": {"spec", "template", "spec"},
		"CronJob": {"spec", "jobTemplate", "spec", "template", "spec"}, "Pod": {"spec"},
	}
	out := map[string]corev1.PodSpec{}
	for _, u := range objs {
		p, ok := paths[u.GetKind()]
		if !ok {
			continue
		}
		m, found, err := unstructured.NestedMap(u.Object, p...)
		require.NoError(t, err)
		require.True(t, found, "%s %s has no pod spec", u.GetKind(), u.GetName())
		var spec corev1.PodSpec
		require.NoError(t, apiruntime.DefaultUnstructuredConverter.FromUnstructured(m, &spec))
		out[u.GetKind()+"/"+u.GetName()] = spec
	}
	return out
}

// checkRuns checks a container of ours: the image is the Makefile's, and what it runs (command, else
// the image's entrypoint) is a binary the image has, built from wantPackage; the pod runs as the
// image's user.
func (img image) checkRuns(t *testing.T, what string, pod corev1.PodSpec, c corev1.Container, wantPackage string) {
	t.Helper()
	exe := img.entrypoint[0]
	if len(c.Command) > 0 {
		exe = c.Command[0]
	}
	assert.Equal(t, wantPackage, img.packageOf(exe), "%s runs %q: expected the image's binary built from %s", what, exe, wantPackage)
	var uid *int64
	if c.SecurityContext != nil {
		uid = c.SecurityContext.RunAsUser
	}
	if uid == nil && pod.SecurityContext != nil {
		uid = pod.SecurityContext.RunAsUser
	}
	if assert.NotNil(t, uid, "%s: runAsUser", what) {
		assert.Equal(t, int64(nonrootUID), *uid, "%s runs as the image's user", what)
	}
}

// TestManifestsAndJobUseTheImage renders manifests/ (what `kubectl apply -k manifests/` installs) and
// builds a profiling Job with the webhook's default --profiler-image: both must use the image `make
// image` builds, with entrypoints the Dockerfile puts in it.
func TestManifestsAndJobUseTheImage(t *testing.T) {
	img := loadImage(t)
	repo := makefileImage(t)
	assert.Equal(t, repo, webhook.ProfilerImageRepository, "the webhook's default --profiler-image repository")

	t.Run("manifests", func(t *testing.T) {
		res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(testenv.RepoRoot(t), "manifests"))
		require.NoError(t, err, "kustomize build manifests/")
		var objs []*unstructured.Unstructured
		for _, r := range res.Resources() {
			data, err := r.AsYAML()
			require.NoError(t, err)
			u := &unstructured.Unstructured{}
			require.NoError(t, yaml.Unmarshal(data, &u.Object))
			objs = append(objs, u)
		}
		ours := 0
		for name, pod := range podSpecs(t, objs) {
			for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
				r, tag := splitImage(c.Image)
				if r != repo {
					continue
				}
				ours++
				assert.NoError(t, ship.ValidateVersion(tag), "%s: expected a release tag (make image tags the version)", name)
				if name == "Deployment/dgdr-webhook" {
					img.checkRuns(t, name, pod, c, "./cmd/webhook")
					continue
				}
				exe := img.entrypoint[0]
				if len(c.Command) > 0 {
					exe = c.Command[0]
				}
				assert.NotEmpty(t, img.packageOf(exe), "%s runs %q, which the image lacks", name, exe)
			}
		}
		assert.Positive(t, ours, "no workload in manifests/ uses %s", repo)
	})

	t.Run("profiling job", func(t *testing.T) {
		d := &v1alpha1.DynamoGraphDeploymentRequest{ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: "ns"}}
		d.Default(webhook.DefaultImage)
		job, err := expand.ProfilingJob(d, expand.JobOptions{ProfilerImage: webhook.NewOptions().ProfilerImage})
		require.NoError(t, err)
		pod := job.Spec.Template.Spec
		require.Len(t, pod.Containers, 1)
		c := pod.Containers[0]
		r, _ := splitImage(c.Image)
		assert.Equal(t, repo, r)
		img.checkRuns(t, "the profiling Job", pod, c, "./cmd/dgdr-profiler")
	})
}
