package v1alpha1

import (
	"testing"

	"github.com/stretchr/testify/assert"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestValidateJobOverride(t *testing.T) {
	const p = "spec.overrides.profilingJob"
	tests := map[string]struct {
		raw    string
		fields []string // nil: admitted
	}{
		"scheduling and sizing": {raw: `{"activeDeadlineSeconds":60,"backoffLimit":0,"template":{"spec":{
			"nodeSelector":{"pool":"cpu"},"tolerations":[{"key":"k","operator":"Exists"}],"priorityClassName":"low",
			"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"a","operator":"Exists"}]}]}}},
			"imagePullSecrets":[{"name":"pull"}],
			"containers":[{"name":"profiler","resources":{"limits":{"memory":"4Gi"}},"env":[{"name":"A","valueFrom":{"secretKeyRef":{"name":"s","key":"k"}}}]}]}}}`},
		"empty":                  {raw: `{}`},
		"serviceAccountName":     {raw: `{"template":{"spec":{"serviceAccountName":"x"}}}`, fields: []string{p + ".template.spec.serviceAccountName"}},
		"automount token":        {raw: `{"template":{"spec":{"automountServiceAccountToken":true}}}`, fields: []string{p + ".template.spec.automountServiceAccountToken"}},
		"volumes":                {raw: `{"template":{"spec":{"volumes":[{"name":"h","hostPath":{"path":"/"}}]}}}`, fields: []string{p + ".template.spec.volumes"}},
		"host namespaces":        {raw: `{"template":{"spec":{"hostNetwork":true,"hostPID":true}}}`, fields: []string{p + ".template.spec.hostNetwork", p + ".template.spec.hostPID"}},
		"container image":        {raw: `{"template":{"spec":{"containers":[{"name":"profiler","image":"x","volumeMounts":[{"name":"h","mountPath":"/h"}]}]}}}`, fields: []string{p + ".template.spec.containers[0].image", p + ".template.spec.containers[0].volumeMounts"}},
		"another container":      {raw: `{"template":{"spec":{"containers":[{"name":"evil","image":"x"}]}}}`, fields: []string{p + ".template.spec.containers[0].name"}},
		"container without name": {raw: `{"template":{"spec":{"containers":[{"env":[]}]}}}`, fields: []string{p + ".template.spec.containers[0].name"}},
		"ephemeral and init":     {raw: `{"template":{"spec":{"initContainers":[],"ephemeralContainers":[]}}}`, fields: []string{p + ".template.spec.ephemeralContainers", p + ".template.spec.initContainers"}},
		"pod template metadata":  {raw: `{"template":{"metadata":{"annotations":{"a":"b"}}}}`, fields: []string{p + ".template.metadata"}},
		"job fields":             {raw: `{"parallelism":5,"completions":5,"suspend":true,"ttlSecondsAfterFinished":0,"selector":{}}`, fields: []string{p + ".completions", p + ".parallelism", p + ".selector", p + ".suspend", p + ".ttlSecondsAfterFinished"}},
		"null template":          {raw: `{"template":null}`, fields: []string{p + ".template"}},
		"null containers":        {raw: `{"template":{"spec":{"containers":null}}}`, fields: []string{p + ".template.spec.containers"}},
		"patch directive":        {raw: `{"template":{"spec":{"$patch":"replace"}}}`, fields: []string{p + ".template.spec.$patch"}},
		"directive in env":       {raw: `{"template":{"spec":{"containers":[{"name":"profiler","env":[{"name":"A","$patch":"delete"}]}]}}}`, fields: []string{p + ".template.spec.containers[0].env[0].$patch"}},
		"retainKeys":             {raw: `{"$retainKeys":["backoffLimit"]}`, fields: []string{p + ".$retainKeys"}},
		"element order":          {raw: `{"template":{"spec":{"$setElementOrder/containers":[{"name":"profiler"}]}}}`, fields: []string{p + ".template.spec.$setElementOrder/containers"}},
		"non-positive deadline":  {raw: `{"activeDeadlineSeconds":0}`, fields: []string{p + ".activeDeadlineSeconds"}},
		"negative backoff":       {raw: `{"backoffLimit":-1}`, fields: []string{p + ".backoffLimit"}},
		"not a JobSpec":          {raw: `{"templat":{}}`, fields: []string{p + ".templat"}},
		"wrong type":             {raw: `{"template":{"spec":{"containers":"x"}}}`, fields: []string{p + ".template.spec.containers"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			errs := ValidateSpec(&DynamoGraphDeploymentRequestSpec{Model: "m", Overrides: &Overrides{ProfilingJob: &runtime.RawExtension{Raw: []byte(tc.raw)}}})
			assert.ElementsMatch(t, tc.fields, fieldsOf(errs), "%v", errs)
			for _, e := range errs {
				if e.Type == field.ErrorTypeForbidden {
					assert.Contains(t, e.Detail, JobOverrideAllowlist, "the refusal names the allowlist")
				}
			}
		})
	}
}

func fieldsOf(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Field)
	}
	return out
}

func TestJobOverrideEmpty(t *testing.T) {
	assert.True(t, JobOverrideEmpty(nil))
	assert.True(t, JobOverrideEmpty(&Overrides{}))
	assert.True(t, JobOverrideEmpty(&Overrides{ProfilingJob: &runtime.RawExtension{Raw: []byte(" {} ")}}))
	assert.True(t, JobOverrideEmpty(&Overrides{ProfilingJob: &runtime.RawExtension{Raw: []byte("null")}}))
	assert.False(t, JobOverrideEmpty(&Overrides{ProfilingJob: &runtime.RawExtension{Raw: []byte(`{"backoffLimit":0}`)}}))
}

func TestJobDGDRUID(t *testing.T) {
	controller := true
	owner := func(kind string, uid types.UID) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: "x/v1", Kind: kind, Name: "n", UID: uid, Controller: &controller}}
	}
	tests := map[string]struct {
		meta metav1.ObjectMeta
		want types.UID
	}{
		"annotation":                         {meta: metav1.ObjectMeta{Annotations: map[string]string{AnnotationDGDRUID: "u1"}}, want: "u1"},
		"annotation before owner":            {meta: metav1.ObjectMeta{Annotations: map[string]string{AnnotationDGDRUID: "u1"}, OwnerReferences: owner(Kind, "u2")}, want: "u1"},
		"DGDR controller without annotation": {meta: metav1.ObjectMeta{OwnerReferences: owner(Kind, "u2")}, want: "u2"},
		"another kind of controller":         {meta: metav1.ObjectMeta{OwnerReferences: owner("Deployment", "u3")}, want: ""},
		"neither":                            {want: ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, JobDGDRUID(&batchv1.Job{ObjectMeta: tc.meta}))
		})
	}
}
