package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

func ptrTrue() *bool { b := true; return &b }

func rawJSON(s string) runtime.RawExtension { return runtime.RawExtension{Raw: []byte(s)} }

func testContext(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithCancel(t.Context())
}

// serve posts one AdmissionReview to hook over HTTP, as the API server does, and returns the response.
func serve(t *testing.T, hook http.Handler, req admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	t.Helper()
	req.UID = "u-1"
	req.Kind = metav1.GroupVersionKind{Group: "nvidia.com", Version: "v1alpha1", Kind: v1alpha1.Kind}
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  &req,
	})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	httpReq := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/", bytes.NewReader(body))
	httpReq.Header.Set("Content-Type", "application/json")
	hook.ServeHTTP(rec, httpReq)
	require.Equal(t, http.StatusOK, rec.Code)
	var review admissionv1.AdmissionReview
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &review))
	require.NotNil(t, review.Response)
	assert.Equal(t, req.UID, review.Response.UID)
	return review.Response
}

// TestUpdateAndDeleteOverHTTP covers the paths the API server takes once a DGDR is stored. A spec change is
// refused by the CRD's CEL rule before the webhook is asked (see TestAdmission); this is the webhook's
// own refusal, reached when the CRD lacks the rule (an older CRD, or one edited by hand).
func TestUpdateAndDeleteOverHTTP(t *testing.T) {
	h := &Handler{DefaultImage: DefaultImage, ProfilerImage: testProfilerImage} // UPDATE and DELETE read nothing
	scheme := lifecycle.Scheme()
	validate := admission.WithValidator[*v1alpha1.DynamoGraphDeploymentRequest](scheme, h)
	mutate := admission.WithDefaulter[*v1alpha1.DynamoGraphDeploymentRequest](scheme, h)

	stored := `{"apiVersion":"nvidia.com/v1alpha1","kind":"DynamoGraphDeploymentRequest","metadata":{"name":"d","namespace":"n"},
		"spec":{"model":"Qwen/Qwen3-0.6B","backend":"any","image":"i","searchStrategy":"rapid","workload":{"isl":512,"osl":128},
		"sla":{"ttft":100,"itl":15},"autoApply":false,"enableAutoScaling":false}}`
	changedSpec := `{"apiVersion":"nvidia.com/v1alpha1","kind":"DynamoGraphDeploymentRequest","metadata":{"name":"d","namespace":"n"},
		"spec":{"model":"Qwen/Qwen3-0.6B","backend":"any","image":"i","searchStrategy":"thorough","workload":{"isl":512,"osl":128},
		"sla":{"ttft":100,"itl":15},"autoApply":false,"enableAutoScaling":false}}`
	labelled := `{"apiVersion":"nvidia.com/v1alpha1","kind":"DynamoGraphDeploymentRequest","metadata":{"name":"d","namespace":"n","labels":{"team":"a"}},
		"spec":{"model":"Qwen/Qwen3-0.6B","backend":"any","image":"i","searchStrategy":"rapid","workload":{"isl":512,"osl":128},
		"sla":{"ttft":100,"itl":15},"autoApply":false,"enableAutoScaling":false}}`
	undefaulted := `{"apiVersion":"nvidia.com/v1alpha1","kind":"DynamoGraphDeploymentRequest","metadata":{"name":"d","namespace":"n","labels":{"team":"a"}},
		"spec":{"model":"Qwen/Qwen3-0.6B"}}`

	t.Run("a spec change is validated in full, as a create", func(t *testing.T) {
		resp := serve(t, validate, admissionv1.AdmissionRequest{Operation: admissionv1.Update, Name: "d", Namespace: "n",
			Object: rawJSON(strings.Replace(changedSpec, `"ttft":100`, `"ttft":-1`, 1)), OldObject: rawJSON(stored)})
		assert.False(t, resp.Allowed)
		require.NotNil(t, resp.Result)
		assert.Equal(t, int32(http.StatusUnprocessableEntity), resp.Result.Code)
		assert.Equal(t, metav1.StatusReasonInvalid, resp.Result.Reason)
		require.Len(t, resp.Result.Details.Causes, 1)
		assert.Equal(t, "spec.sla.ttft", resp.Result.Details.Causes[0].Field)
	})
	t.Run("an UPDATE that changes the spec is defaulted", func(t *testing.T) {
		resp := serve(t, mutate, admissionv1.AdmissionRequest{Operation: admissionv1.Update, Name: "d", Namespace: "n",
			Object: rawJSON(undefaulted), OldObject: rawJSON(stored)})
		assert.True(t, resp.Allowed)
		assert.NotEmpty(t, resp.Patch)
	})
	t.Run("a metadata change is allowed", func(t *testing.T) {
		resp := serve(t, validate, admissionv1.AdmissionRequest{Operation: admissionv1.Update, Name: "d", Namespace: "n",
			Object: rawJSON(labelled), OldObject: rawJSON(stored)})
		assert.True(t, resp.Allowed)
		assert.Empty(t, resp.Warnings)
	})
	t.Run("a metadata-only UPDATE is not defaulted", func(t *testing.T) {
		// Defaulting it (an object stored without defaults) would turn it into a spec change, and a run.
		resp := serve(t, mutate, admissionv1.AdmissionRequest{Operation: admissionv1.Update, Name: "d", Namespace: "n",
			Object: rawJSON(undefaulted), OldObject: rawJSON(undefaulted)})
		assert.True(t, resp.Allowed)
		assert.Empty(t, resp.Patch)
	})
	t.Run("DELETE is allowed", func(t *testing.T) {
		resp := serve(t, validate, admissionv1.AdmissionRequest{Operation: admissionv1.Delete, Name: "d", Namespace: "n", OldObject: rawJSON(stored)})
		assert.True(t, resp.Allowed)
		resp = serve(t, mutate, admissionv1.AdmissionRequest{Operation: admissionv1.Delete, Name: "d", Namespace: "n", OldObject: rawJSON(stored)})
		assert.True(t, resp.Allowed)
		assert.Empty(t, resp.Patch)
	})
	t.Run("an undecodable object is a 400", func(t *testing.T) {
		resp := serve(t, validate, admissionv1.AdmissionRequest{Operation: admissionv1.Create, Name: "d", Namespace: "n",
			Object: rawJSON(`{"apiVersion":"nvidia.com/v1alpha1","kind":"DynamoGraphDeploymentRequest","spec":{"workload":{"isl":"many"}}}`)})
		assert.False(t, resp.Allowed)
		assert.Equal(t, int32(http.StatusBadRequest), resp.Result.Code)
	})
}
