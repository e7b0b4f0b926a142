package v1alpha1

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Names of the profiling Job that the API package needs for validating overrides.profilingJob.
const (
	// ProfilerContainerName is the profiling Job's one container, the only one overrides may change.
	ProfilerContainerName = "profiler"
	// AnnotationSpecHash on the profiling Job is the sha256 of the JobSpec the webhook built: a Job is
	// reused for a DGDR only when it was built from the same spec for the same DGDR (AnnotationDGDRUID).
	AnnotationSpecHash = "nvidia.com/dgdr-spec-hash"
	// AnnotationDGDRUID on the profiling Job is the UID of the DGDR create it was made for. The webhook
	// creates the Job before that DGDR is stored, so the Job has no owner until the profiler claims it for
	// the stored DGDR of that UID, or deletes it when no such DGDR appears.
	AnnotationDGDRUID = "nvidia.com/dgdr-uid"
)

// JobDGDRUID is the UID of the DGDR create a profiling Job was made for: its AnnotationDGDRUID, else (a
// Job made before the annotation existed) its DGDR controller's UID; "" if neither.
func JobDGDRUID(job *batchv1.Job) types.UID {
	if uid := job.Annotations[AnnotationDGDRUID]; uid != "" {
		return types.UID(uid)
	}
	if owner := metav1.GetControllerOf(job); owner != nil && owner.Kind == Kind {
		return owner.UID
	}
	return ""
}

// JobOverrideAllowlist describes, for error messages, what overrides.profilingJob may set.
const JobOverrideAllowlist = "activeDeadlineSeconds, backoffLimit, template.spec.{nodeSelector, tolerations, affinity, " +
	"priorityClassName, imagePullSecrets}, and template.spec.containers[name=profiler].{resources, env}"

// allow is the shape overrides.profilingJob may take: a key maps to the allowed shape under it, nil
// allowing any value of the field's type (the strict decode into a JobSpec checks types).
//
// Why an allowlist: the webhook creates the Job with its own rights, on behalf of whoever may create a
// DGDR. Anything that changes who the pod runs as or what it runs (serviceAccountName, image, command,
// volumes, securityContext, host namespaces, extra containers) would let that user run code with the
// profiler's ServiceAccount or on the node; scheduling and sizing cannot.
type allow map[string]allow

var jobOverrideAllowed = allow{
	"activeDeadlineSeconds": nil,
	"backoffLimit":          nil,
	"template": {"spec": {
		"nodeSelector":      nil,
		"tolerations":       nil,
		"affinity":          nil,
		"priorityClassName": nil,
		"imagePullSecrets":  nil,
		// Containers are a list merged by name: each entry must name the profiler (checked below).
		"containers": {"name": nil, "resources": nil, "env": nil},
	}},
}

// validateJobOverride requires a partial batch/v1 JobSpec (known fields only, correct types) that sets
// only what jobOverrideAllowed allows, with no strategic-merge directives ($patch, $retainKeys, ...): they
// could delete or replace what the allowlist protects, such as the profiler container.
func validateJobOverride(p *field.Path, raw []byte) field.ErrorList {
	// The allowlist first: it names the field, where the strict decode names only the first unknown key.
	var obj any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return field.ErrorList{field.Invalid(p, "<object>", fmt.Sprintf("expected a partial batch/v1 JobSpec: %v", err))}
	}
	m, ok := obj.(map[string]any)
	if !ok {
		return field.ErrorList{field.Invalid(p, "<object>", "expected a partial batch/v1 JobSpec (an object)")}
	}
	if errs := checkAllowed(p, m, jobOverrideAllowed); len(errs) > 0 {
		return errs
	}
	var spec batchv1.JobSpec
	if err := strictUnmarshal(raw, &spec); err != nil {
		return field.ErrorList{field.Invalid(p, "<object>", fmt.Sprintf("expected a partial batch/v1 JobSpec: %v", err))}
	}
	var errs field.ErrorList
	if spec.ActiveDeadlineSeconds != nil && *spec.ActiveDeadlineSeconds <= 0 {
		errs = append(errs, field.Invalid(p.Child("activeDeadlineSeconds"), *spec.ActiveDeadlineSeconds, "expected seconds greater than 0"))
	}
	if spec.BackoffLimit != nil && *spec.BackoffLimit < 0 {
		errs = append(errs, field.Invalid(p.Child("backoffLimit"), *spec.BackoffLimit, "expected 0 or more retries"))
	}
	return errs
}

func notAllowed(p *field.Path) *field.Error {
	return field.Forbidden(p, "overrides.profilingJob may set only scheduling and sizing fields: "+JobOverrideAllowlist)
}

func checkAllowed(p *field.Path, m map[string]any, allowed allow) field.ErrorList {
	var errs field.ErrorList
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys) // one error order for one input
	for _, k := range keys {
		v := m[k]
		sub, ok := allowed[k]
		switch {
		case !ok:
			errs = append(errs, notAllowed(p.Child(k)))
		case sub == nil:
			errs = append(errs, checkNoDirectives(p.Child(k), v)...)
		case k == "containers":
			errs = append(errs, checkContainers(p.Child(k), v, sub)...)
		default:
			child, isMap := v.(map[string]any)
			if !isMap {
				errs = append(errs, field.Invalid(p.Child(k), v, "expected an object"))
				continue
			}
			errs = append(errs, checkAllowed(p.Child(k), child, sub)...)
		}
	}
	return errs
}

// checkContainers allows entries that name the profiler container and set only what allowed allows.
func checkContainers(p *field.Path, v any, allowed allow) field.ErrorList {
	list, ok := v.([]any)
	if !ok {
		return field.ErrorList{field.Invalid(p, v, "expected a list of containers")}
	}
	var errs field.ErrorList
	for i, item := range list {
		c, ok := item.(map[string]any)
		if !ok {
			errs = append(errs, field.Invalid(p.Index(i), item, "expected a container object"))
			continue
		}
		if name, _ := c["name"].(string); name != ProfilerContainerName {
			e := notAllowed(p.Index(i).Child("name"))
			e.Detail = fmt.Sprintf("only the profiler container (name: %s) may be overridden, and only its resources and env: %s",
				ProfilerContainerName, JobOverrideAllowlist)
			errs = append(errs, e)
			continue
		}
		errs = append(errs, checkAllowed(p.Index(i), c, allowed)...)
	}
	return errs
}

// checkNoDirectives refuses strategic-merge directives anywhere under an allowed field.
func checkNoDirectives(p *field.Path, v any) field.ErrorList {
	var errs field.ErrorList
	switch x := v.(type) {
	case map[string]any:
		for k, sub := range x {
			if strings.HasPrefix(k, "$") {
				errs = append(errs, notAllowed(p.Child(k)))
				continue
			}
			errs = append(errs, checkNoDirectives(p.Child(k), sub)...)
		}
	case []any:
		for i, sub := range x {
			errs = append(errs, checkNoDirectives(p.Index(i), sub)...)
		}
	}
	return errs
}

// JobOverrideEmpty reports whether o sets nothing in the profiling Job (absent, null or {}).
func JobOverrideEmpty(o *Overrides) bool {
	if o == nil || o.ProfilingJob == nil {
		return true
	}
	raw := strings.TrimSpace(string(o.ProfilingJob.Raw))
	return raw == "" || raw == "null" || raw == "{}"
}
