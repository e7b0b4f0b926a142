package v1alpha1

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Limits enforced by validation.
const (
	MaxSequenceLength = 1 << 20 // 1,048,576 tokens
	MaxLatencyMs      = 3_600_000
	maxModelLength    = 256
)

// A Hugging Face id is "org/name" (or a bare served name); segments start with a letter or digit.
var modelPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$`)

// ValidateSpec checks a (defaulted or not) spec and returns every problem with its field path.
// Checks that need the cluster (the model-cache PVC exists) are the webhook's.
func ValidateSpec(s *DynamoGraphDeploymentRequestSpec) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("spec")

	switch {
	case s.Model == "":
		errs = append(errs, field.Required(p.Child("model"), "set a Hugging Face id such as Qwen/Qwen3-32B"))
	case len(s.Model) > maxModelLength:
		errs = append(errs, field.TooLong(p.Child("model"), s.Model, maxModelLength))
	case !modelPattern.MatchString(s.Model) || strings.Contains(s.Model, ".."):
		errs = append(errs, field.Invalid(p.Child("model"), s.Model,
			"expected a Hugging Face id like org/name (letters, digits, '.', '_', '-'), or the served name when modelCache is set"))
	}

	if s.Backend != "" && s.Backend != BackendAuto && !contains(Backends, s.Backend) {
		errs = append(errs, field.NotSupported(p.Child("backend"), s.Backend, strs(Backends)))
	}
	if s.SearchStrategy != "" && !contains(SearchStrategies, s.SearchStrategy) {
		errs = append(errs, field.NotSupported(p.Child("searchStrategy"), s.SearchStrategy, strs(SearchStrategies)))
	}
	if strings.ContainsAny(s.Image, " \t\n") {
		errs = append(errs, field.Invalid(p.Child("image"), s.Image, "expected a container image reference without spaces"))
	}

	if w := s.Workload; w != nil {
		errs = append(errs, validateWorkload(p.Child("workload"), w)...)
	}
	if a := s.Adaptation; a != nil {
		errs = append(errs, validateAdaptation(p.Child("adaptation"), a)...)
	}
	if l := s.SLA; l != nil {
		errs = append(errs, validateLatency(p.Child("sla", "ttft"), l.TTFT)...)
		errs = append(errs, validateLatency(p.Child("sla", "itl"), l.ITL)...)
		if c := l.Confidence; c != nil && !(*c > 0 && *c < 1) {
			errs = append(errs, field.Invalid(p.Child("sla", "confidence"), *c,
				"expected a probability strictly between 0 and 1, such as 0.9 (unset: 0.5, the predictions as they are)"))
		}
	}
	if mc := s.ModelCache; mc != nil {
		if mc.PVCName == "" {
			errs = append(errs, field.Required(p.Child("modelCache", "pvcName"), "name the PersistentVolumeClaim that holds the model"))
		}
		if strings.HasPrefix(mc.PVCPath, "/") || strings.Contains(mc.PVCPath, "..") {
			errs = append(errs, field.Invalid(p.Child("modelCache", "pvcPath"), mc.PVCPath, "expected a relative path inside the PVC, without '..'"))
		}
	}
	if o := s.Overrides; o != nil {
		if o.ProfilingJob != nil {
			errs = append(errs, validateJobOverride(p.Child("overrides", "profilingJob"), o.ProfilingJob.Raw)...)
		}
		if o.DGD != nil {
			errs = append(errs, ValidateDGDOverride(p.Child("overrides", "dgd"), o.DGD.Raw)...)
		}
	}
	if s.Rerun < 0 {
		errs = append(errs, field.Invalid(p.Child("rerun"), s.Rerun, "expected 0 or more (kubectl dgdr rerun raises it)"))
	}
	if h := s.Hardware; h != nil {
		if h.GPUsPerNode != nil && (*h.GPUsPerNode < 1 || *h.GPUsPerNode > 72) {
			errs = append(errs, field.Invalid(p.Child("hardware", "gpusPerNode"), *h.GPUsPerNode, "expected 1 to 72 GPUs per node"))
		}
		if h.TotalGPUs != nil && (*h.TotalGPUs < 1 || *h.TotalGPUs > 4096) {
			errs = append(errs, field.Invalid(p.Child("hardware", "totalGpus"), *h.TotalGPUs, "expected 1 to 4096 GPUs"))
		}
	}
	return errs
}

// ValidateName checks metadata.name: a DNS subdomain (the API server checks that too, but only after
// mutating admission, where the webhook already names the profiling Job after the DGDR), and at most 63
// characters, because the name is the value of the label nvidia.com/dgdr-name on the Job and the DGD.
func ValidateName(name string) field.ErrorList {
	p := field.NewPath("metadata", "name")
	if name == "" {
		return field.ErrorList{field.Required(p, "set metadata.name or metadata.generateName")}
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return field.ErrorList{field.Invalid(p, name, strings.Join(msgs, "; "))}
	}
	if len(name) > validation.LabelValueMaxLength {
		e := field.TooLong(p, name, validation.LabelValueMaxLength)
		e.Detail = fmt.Sprintf("at most %d characters: the name is the value of the label %s on the profiling Job and the DGD",
			validation.LabelValueMaxLength, LabelDGDRName)
		return field.ErrorList{e}
	}
	return nil
}

func validateLength(p *field.Path, v *int32) field.ErrorList {
	if v == nil || (*v >= 1 && *v <= MaxSequenceLength) {
		return nil
	}
	return field.ErrorList{field.Invalid(p, *v, fmt.Sprintf("expected 1 to %d tokens", MaxSequenceLength))}
}

func validateLatency(p *field.Path, v *float64) field.ErrorList {
	if v == nil {
		return nil
	}
	if math.IsNaN(*v) || *v <= 0 || *v >= MaxLatencyMs {
		return field.ErrorList{field.Invalid(p, *v, "expected milliseconds greater than 0 and below 3600000 (an hour)")}
	}
	return nil
}

// ValidateDGDOverride requires a partial DynamoGraphDeployment: an object whose apiVersion/kind, when set,
// name a DGD, and whose spec.components (v1beta1) is a list of objects with a name, or spec.services
// (v1alpha1) a map of objects.
func ValidateDGDOverride(p *field.Path, raw []byte) field.ErrorList {
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return field.ErrorList{field.Invalid(p, string(raw), "expected a partial DynamoGraphDeployment object")}
	}
	var errs field.ErrorList
	if v, ok := obj["apiVersion"]; ok && v != "nvidia.com/v1beta1" && v != "nvidia.com/v1alpha1" {
		errs = append(errs, field.NotSupported(p.Child("apiVersion"), v, []string{"nvidia.com/v1beta1", "nvidia.com/v1alpha1"}))
	}
	if v, ok := obj["kind"]; ok && v != "DynamoGraphDeployment" {
		errs = append(errs, field.NotSupported(p.Child("kind"), v, []string{"DynamoGraphDeployment"}))
	}
	spec, ok := obj["spec"]
	if !ok {
		return errs
	}
	sm, ok := spec.(map[string]any)
	if !ok {
		return append(errs, field.Invalid(p.Child("spec"), spec, "expected an object"))
	}
	if c, ok := sm["components"]; ok {
		list, ok := c.([]any)
		if !ok {
			errs = append(errs, field.Invalid(p.Child("spec", "components"), c, "expected a list of components"))
		}
		for i, item := range list {
			m, ok := item.(map[string]any)
			if name, _ := m["name"].(string); !ok || name == "" {
				errs = append(errs, field.Required(p.Child("spec", "components").Index(i).Child("name"),
					"each component override needs the name of the component it changes (Frontend, VllmDecodeWorker, …)"))
			}
		}
	}
	if s, ok := sm["services"]; ok {
		m, ok := s.(map[string]any)
		if !ok {
			errs = append(errs, field.Invalid(p.Child("spec", "services"), s, "expected a map of service name to service"))
		}
		for name, v := range m {
			if _, ok := v.(map[string]any); !ok {
				errs = append(errs, field.Invalid(p.Child("spec", "services").Key(name), v, "expected an object"))
			}
		}
	}
	return errs
}

func strictUnmarshal(raw []byte, into any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(into)
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func strs[T ~string](list []T) []string {
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = string(v)
	}
	return out
}

// ValidateAnnotations checks the annotations dgdr reads: the token Secret must be a Secret's name.
func ValidateAnnotations(annotations map[string]string) field.ErrorList {
	errs := validateRunAnnotations(annotations)
	v, ok := annotations[AnnotationHFTokenSecret]
	if !ok {
		return errs
	}
	if msgs := validation.IsDNS1123Subdomain(v); len(msgs) > 0 {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "annotations").Key(AnnotationHFTokenSecret), v,
			"expected the name of a Secret in this namespace holding HF_TOKEN: "+strings.Join(msgs, "; ")))
	}
	return errs
}
