package expand

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/dgdr-dev/dgdr/internal/testenv"
)

// TestDGDGoldenAcceptedByDynamoCRD sends every golden DGD to a real kube-apiserver that serves the real
// Dynamo DGD CRD (internal/testenv) and requires it to be accepted as is: server-side dry-run create
// with strict field validation (an unknown or misplaced field is an error, not silently pruned), then
// every field sent must come back unchanged (the server may only add defaults).
//
// Both API versions are tested. The CRD converts between them with the Dynamo operator's webhook, which
// does not run here; the harness installs the CRD with conversion strategy None, under which a v1alpha1
// object is validated against the v1alpha1 schema but then pruned against the v1beta1 (storage) schema,
// losing spec.services. So v1alpha1 DGDs go to a copy of the real CRD, identical except for its group
// (dgdAlpha1StorageGroup) and v1alpha1 being the storage version. The conversion itself is not exercised.
//
// The same server must also refuse broken DGDs (an unknown field, an invalid component type), which shows
// the check can fail.
func TestDGDDynamoCRD(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(dgdGoldenDir, "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)

	env := testenv.Start(t, testenv.Options{})
	ctx := t.Context()
	require.NoError(t, env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "inference"}}))
	installV1Alpha1StorageCopy(t, env)
	versions := map[string]int{}

	for _, file := range files {
		t.Run("accepts/"+strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			require.NoError(t, err)
			sent := &unstructured.Unstructured{}
			require.NoError(t, sigsyaml.Unmarshal(data, &sent.Object))
			if sent.GetNamespace() == "" { // exported DGDs carry no namespace
				sent.SetNamespace("inference")
			}
			versions[sent.GetAPIVersion()]++

			if sent.GetAPIVersion() == DGDAPIVersionV1Alpha1 {
				sent.SetAPIVersion(dgdAlpha1StorageGroup + "/v1alpha1")
			}
			got := sent.DeepCopy()
			err = env.Client.Create(ctx, got, client.DryRunAll, client.FieldValidation(metav1.FieldValidationStrict))
			require.NoError(t, err, "the Dynamo CRD rejects %s", file)
			require.Equal(t, sent.GetAPIVersion(), got.GetAPIVersion())
			for _, diff := range dgdMissingFields(sent.Object["spec"], got.Object["spec"], "spec") {
				t.Errorf("the API server changed or dropped %s", diff)
			}
		})
	}
	require.Positive(t, versions[DGDAPIVersionV1Beta1], "no v1beta1 golden files")
	require.Positive(t, versions[DGDAPIVersionV1Alpha1], "no v1alpha1 golden files")

	d := dgdTestDGDR("reject", "Qwen/Qwen3-32B", "vllm")
	d.Namespace = "default"
	for _, tc := range []struct {
		name    string
		mutate  func(u *unstructured.Unstructured)
		wantErr string
	}{
		{"unknown field", func(u *unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(u.Object, "8", "spec", "gpus"))
		}, "unknown field"},
		{"bad component type", func(u *unstructured.Unstructured) {
			comps, _, _ := unstructured.NestedSlice(u.Object, "spec", "components")
			comps[1].(map[string]any)["type"] = "aggregated"
			require.NoError(t, unstructured.SetNestedSlice(u.Object, comps, "spec", "components"))
		}, "Unsupported value"},
		{"v1alpha1 unknown field", func(u *unstructured.Unstructured) {
			a, err := GenerateDGD(d, dgdQwenAgg, DGDOptions{APIVersion: DGDAPIVersionV1Alpha1})
			require.NoError(t, err)
			a.SetAPIVersion(dgdAlpha1StorageGroup + "/v1alpha1")
			require.NoError(t, unstructured.SetNestedField(a.Object, "8", "spec", "services", DGDWorkerName, "gpus"))
			u.Object = a.Object
		}, "unknown field"},
	} {
		t.Run("rejects/"+tc.name, func(t *testing.T) {
			u, err := GenerateDGD(d, dgdQwenAgg, DGDOptions{})
			require.NoError(t, err)
			tc.mutate(u)
			err = env.Client.Create(ctx, u, client.DryRunAll, client.FieldValidation(metav1.FieldValidationStrict))
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

// dgdAlpha1StorageGroup is the group of the copy of the Dynamo CRD that stores v1alpha1.
const dgdAlpha1StorageGroup = "v1alpha1-storage.dgdr.test"

// installV1Alpha1StorageCopy installs the real Dynamo DGD CRD under dgdAlpha1StorageGroup with v1alpha1
// as its storage version and waits until it is served.
func installV1Alpha1StorageCopy(t *testing.T, env *testenv.Env) {
	t.Helper()
	crd := testenv.DynamoCRD(t).DeepCopy()
	crd.Spec.Group = dgdAlpha1StorageGroup
	crd.Name = crd.Spec.Names.Plural + "." + dgdAlpha1StorageGroup
	for i := range crd.Spec.Versions {
		crd.Spec.Versions[i].Storage = crd.Spec.Versions[i].Name == "v1alpha1"
	}
	require.NoError(t, env.Client.Create(t.Context(), crd))
	require.Eventually(t, func() bool {
		got := &apiextensionsv1.CustomResourceDefinition{}
		if err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(crd), got); err != nil {
			return false
		}
		for _, c := range got.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return true
			}
		}
		return false
	}, time.Minute, 200*time.Millisecond, "the v1alpha1-storage copy of the DGD CRD is not established")
}

// dgdMissingFields lists the paths of sent whose value differs in got (got may have more fields).
func dgdMissingFields(sent, got any, path string) []string {
	switch s := sent.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{path}
		}
		var out []string
		for k, v := range s {
			out = append(out, dgdMissingFields(v, g[k], path+"."+k)...)
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(s) {
			return []string{path}
		}
		var out []string
		for i := range s {
			out = append(out, dgdMissingFields(s[i], g[i], fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	default:
		if !reflect.DeepEqual(normalizeNumber(sent), normalizeNumber(got)) {
			return []string{fmt.Sprintf("%s (sent %v, got %v)", path, sent, got)}
		}
		return nil
	}
}

func normalizeNumber(v any) any {
	switch n := v.(type) {
	case int64:
		return float64(n)
	case int:
		return float64(n)
	}
	return v
}
