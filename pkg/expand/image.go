package expand

import (
	"strconv"
	"strings"

	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// Image names of the Dynamo release images (nvcr.io/nvidia/ai-dynamo/<name>:<tag>).
const (
	DGDPlannerImageName = "dynamo-planner"
	dgdProfilerImage    = "profiler"
)

// dgdRuntimeImageNames maps a backend to its Dynamo runtime image name (TRT-LLM's is spelled out).
var dgdRuntimeImageNames = map[string]string{
	profile.BackendVLLM:   "vllm-runtime",
	profile.BackendSGLang: "sglang-runtime",
	profile.BackendTRTLLM: "tensorrtllm-runtime",
}

// dgdImageRef is an image reference split at its last path segment: repo/name:tag.
type dgdImageRef struct {
	repo, name, tag string // repo has no trailing '/', tag no ':'; either may be empty
}

// parseDGDImage splits ref into repository path, last segment and tag. ok is false for references it
// will not rewrite: empty ones and digests (a digest pins one exact image; another name cannot share it).
func parseDGDImage(ref string) (dgdImageRef, bool) {
	if ref == "" || strings.Contains(ref, "@") {
		return dgdImageRef{}, false
	}
	var r dgdImageRef
	rest := ref
	if i := strings.LastIndex(rest, "/"); i >= 0 {
		r.repo, rest = rest[:i], rest[i+1:]
	}
	// A ':' in the last segment is the tag (a registry port can only appear before a '/').
	if i := strings.LastIndex(rest, ":"); i >= 0 {
		rest, r.tag = rest[:i], rest[i+1:]
	}
	r.name = rest
	return r, r.name != ""
}

func (r dgdImageRef) with(name string) string {
	s := name
	if r.repo != "" {
		s = r.repo + "/" + s
	}
	if r.tag != "" {
		s += ":" + r.tag
	}
	return s
}

// isDynamoImage says whether the last segment is one of Dynamo's release image names.
func (r dgdImageRef) isDynamoImage() bool {
	if r.name == dgdProfilerImage || r.name == DGDPlannerImageName {
		return true
	}
	for _, n := range dgdRuntimeImageNames {
		if r.name == n {
			return true
		}
	}
	return false
}

// DGDRuntimeImage is the worker and frontend image for backend, derived from the DGDR's spec.image.
//
// Rule: when the last path segment of spec.image is a Dynamo release image name (profiler,
// dynamo-planner, vllm-runtime, sglang-runtime or tensorrtllm-runtime), it is replaced by the backend's
// runtime image (vllm-runtime, sglang-runtime, tensorrtllm-runtime for trtllm), keeping the registry
// path and the tag: nvcr.io/nvidia/ai-dynamo/profiler:1.0.0 → nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.0.0.
// Any other image (a custom build, a digest reference, an unknown backend) is used unchanged.
func DGDRuntimeImage(specImage, backend string) string {
	runtime, known := dgdRuntimeImageNames[backend]
	r, ok := parseDGDImage(specImage)
	if !known || !ok || !r.isDynamoImage() {
		return specImage
	}
	return r.with(runtime)
}

// DGDPlannerImage is the image of the Planner component. Dynamo ships the Planner in its own
// dynamo-planner image since 1.1.0 and inside the runtime images before that, so a Dynamo-named
// spec.image becomes <repo>/dynamo-planner:<tag>, or the backend's runtime image when the tag is a
// version below 1.1. Any other image is used unchanged (a custom image must then contain dynamo.planner).
func DGDPlannerImage(specImage, backend string) string {
	r, ok := parseDGDImage(specImage)
	if !ok || !r.isDynamoImage() {
		return specImage
	}
	if major, minor, ok := dgdTagVersion(r.tag); ok && (major < 1 || (major == 1 && minor < 1)) {
		return DGDRuntimeImage(specImage, backend)
	}
	return r.with(DGDPlannerImageName)
}

// dgdTagVersion reads MAJOR.MINOR from a tag such as 1.3.0, v0.9.1 or 1.4.0-rc1.
func dgdTagVersion(tag string) (major, minor int, ok bool) {
	parts := strings.SplitN(strings.TrimPrefix(tag, "v"), ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(strings.SplitN(parts[1], "-", 2)[0])
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return major, minor, true
}
