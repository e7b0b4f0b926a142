package expand

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestDGDRuntimeImage(t *testing.T) {
	for _, tc := range []struct {
		spec, backend, want string
	}{
		{"nvcr.io/nvidia/ai-dynamo/profiler:1.0.0", "vllm", "nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.0.0"},
		{"nvcr.io/nvidia/ai-dynamo/dynamo-planner:1.3.0", "sglang", "nvcr.io/nvidia/ai-dynamo/sglang-runtime:1.3.0"},
		{"nvcr.io/nvidia/ai-dynamo/dynamo-planner:1.3.0", "trtllm", "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.3.0"},
		{"nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.3.0", "trtllm", "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.3.0"},
		{"nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.3.0", "trtllm", "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.3.0"},
		{"mirror.local:5000/ai-dynamo/profiler:1.4.0-rc1", "vllm", "mirror.local:5000/ai-dynamo/vllm-runtime:1.4.0-rc1"},
		{"profiler:1.0.0", "vllm", "vllm-runtime:1.0.0"},
		{"nvcr.io/nvidia/ai-dynamo/profiler", "sglang", "nvcr.io/nvidia/ai-dynamo/sglang-runtime"},
		// Not Dynamo's naming: unchanged.
		{"registry.example.com/ml/dynamo-sglang:nightly", "sglang", "registry.example.com/ml/dynamo-sglang:nightly"},
		{"ghcr.io/dgdr-dev/dgdr:v0.1.0", "vllm", "ghcr.io/dgdr-dev/dgdr:v0.1.0"},
		{"mirror.local:5000/profiler", "vllm", "mirror.local:5000/vllm-runtime"},
		// A digest pins one image: unchanged.
		{"nvcr.io/nvidia/ai-dynamo/profiler@sha256:0123456789abcdef", "vllm", "nvcr.io/nvidia/ai-dynamo/profiler@sha256:0123456789abcdef"},
		// Unknown backend: unchanged.
		{"nvcr.io/nvidia/ai-dynamo/profiler:1.0.0", "any", "nvcr.io/nvidia/ai-dynamo/profiler:1.0.0"},
		{"", "vllm", ""},
	} {
		t.Run(tc.spec+"/"+tc.backend, func(t *testing.T) {
			assert.Equal(t, tc.want, DGDRuntimeImage(tc.spec, tc.backend))
		})
	}
}

func TestDGDPlannerImage(t *testing.T) {
	for _, tc := range []struct {
		spec, backend, want string
	}{
		{"nvcr.io/nvidia/ai-dynamo/profiler:1.3.0", "vllm", "nvcr.io/nvidia/ai-dynamo/dynamo-planner:1.3.0"},
		{"nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.1.0", "vllm", "nvcr.io/nvidia/ai-dynamo/dynamo-planner:1.1.0"},
		{"nvcr.io/nvidia/ai-dynamo/dynamo-planner:latest", "vllm", "nvcr.io/nvidia/ai-dynamo/dynamo-planner:latest"},
		// Before 1.1 the Planner shipped in the runtime images.
		{"nvcr.io/nvidia/ai-dynamo/vllm-runtime:0.9.1", "vllm", "nvcr.io/nvidia/ai-dynamo/vllm-runtime:0.9.1"},
		{"nvcr.io/nvidia/ai-dynamo/profiler:v1.0.2", "sglang", "nvcr.io/nvidia/ai-dynamo/sglang-runtime:v1.0.2"},
		{"registry.example.com/ml/dynamo-sglang:nightly", "sglang", "registry.example.com/ml/dynamo-sglang:nightly"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			assert.Equal(t, tc.want, DGDPlannerImage(tc.spec, tc.backend))
		})
	}
}

// FuzzDGDRuntimeImage: the derivation only ever swaps the last path segment of a Dynamo image, keeping
// the registry path and the tag, and leaves every other reference alone.
func FuzzDGDRuntimeImage(f *testing.F) {
	f.Add("nvcr.io/nvidia/ai-dynamo/profiler:1.0.0", "vllm")
	f.Add("mirror.local:5000/x/dynamo-planner:1.3.0", "trtllm")
	f.Add("a@sha256:b", "sglang")
	f.Add("::/:", "vllm")
	f.Fuzz(func(t *testing.T, spec, backend string) {
		got := DGDRuntimeImage(spec, backend)
		if got == spec {
			return
		}
		r, ok := parseDGDImage(spec)
		assert.True(t, ok && r.isDynamoImage(), "only Dynamo images are rewritten: %q → %q", spec, got)
		g, ok := parseDGDImage(got)
		assert.True(t, ok)
		assert.Equal(t, r.repo, g.repo, "registry path kept")
		assert.Equal(t, r.tag, g.tag, "tag kept")
		assert.True(t, strings.HasSuffix(g.name, "-runtime"), "a runtime image: %q", got)
		assert.Equal(t, got, DGDRuntimeImage(got, backend), "derivation is idempotent")
	})
}
