package cli

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/dgdr-dev/dgdr/internal/testenv"
)

func TestExport(t *testing.T) {
	h := newHarness(t, testenv.Options{})
	ns := h.namespace("export")
	h.profiled(ns, "qwen")

	for _, tt := range []struct {
		name, apiVersion, list, elsewhere string
		args                              []string
	}{
		{name: "selected, v1beta1", apiVersion: "nvidia.com/v1beta1", list: "components", elsewhere: "git-beta"},
		{name: "point 0, v1alpha1", apiVersion: "nvidia.com/v1alpha1", list: "services", elsewhere: "git-alpha", args: []string{"--pick", "0", "--api-version", "nvidia.com/v1alpha1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := h.with(t)
			r := h.ok(append([]string{"export", "qwen", "-n", ns}, tt.args...)...)
			assert.True(t, strings.HasPrefix(r.out, "# Qwen/Qwen3-0.6B, ISL 2048, OSL 256: vllm "), r.out)
			u := &unstructured.Unstructured{}
			require.NoError(t, yaml.Unmarshal([]byte(r.out), &u.Object))
			assert.Equal(t, tt.apiVersion, u.GetAPIVersion())
			assert.Equal(t, "DynamoGraphDeployment", u.GetKind())
			assert.Empty(t, u.GetNamespace(), "no namespace: it is applied with -n")
			assert.NotContains(t, r.out, "nvidia.com/dgdr-", "no label or annotation ties it to the DGDR")
			assert.NotContains(t, r.out, "status:")
			_, found, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", tt.list)
			assert.True(t, found, "spec.%s", tt.list)

			// What is kept in git applies on its own, with the real CRD's validation.
			u.SetNamespace(h.namespace(tt.elsewhere))
			require.NoError(t, h.env.Client.Create(t.Context(), u))
		})
	}

	t.Run("errors", func(t *testing.T) {
		h := h.with(t)
		assert.Contains(t, h.fail("export", "qwen", "-n", ns, "--api-version", "v2").errLine, `unsupported --api-version "v2" (hint: use nvidia.com/v1beta1 or nvidia.com/v1alpha1)`)
		assert.Contains(t, h.fail("export", "qwen", "-n", ns, "--pick", "9").errLine, "--pick 9 is out of range")
		assert.Contains(t, h.fail("export", "nope", "-n", ns).errLine, `dynamographdeploymentrequest "nope" not found`)
	})
}
