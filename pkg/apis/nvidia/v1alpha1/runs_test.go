package v1alpha1

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
)

func TestParseSkipCandidates(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
		err  string
	}{
		{in: "", want: nil},
		{in: "3", want: []int{3}},
		{in: " 3, 1,3 ", want: []int{1, 3}},
		{in: "0", err: "from 1 to 1000"},
		{in: "c3", err: `got "c3"`},
		{in: "1,,2", err: `got ""`},
	} {
		got, err := ParseSkipCandidates(tc.in)
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
}

// TestInputsHash: the hash ignores JSON key order and spacing of the raw overrides (the API server
// re-encodes them), and changes with every field, spec.rerun included.
func TestInputsHash(t *testing.T) {
	a := DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-8B", SLA: &SLA{TTFT: ptr.To(100.0)},
		Overrides: &Overrides{DGD: &runtime.RawExtension{Raw: []byte(`{"spec": {"b": 1, "a": 2}}`)}}}
	b := a
	b.Overrides = &Overrides{DGD: &runtime.RawExtension{Raw: []byte(`{"spec":{"a":2,"b":1}}`)}}
	assert.Equal(t, InputsHash(&a), InputsHash(&b))
	assert.Len(t, InputsHash(&a), 16)
	c := a
	c.Rerun = 1
	assert.NotEqual(t, InputsHash(&a), InputsHash(&c))
	c = a
	c.SLA = &SLA{TTFT: ptr.To(90.0)}
	assert.NotEqual(t, InputsHash(&a), InputsHash(&c))
}

func TestRerunReason(t *testing.T) {
	d := &DynamoGraphDeploymentRequest{}
	d.Spec.Rerun = 2
	d.Annotations = map[string]string{AnnotationRerunReason: "2:more GPUs"}
	r, ok := RerunReason(d)
	assert.True(t, ok)
	assert.Equal(t, "more GPUs", r)
	d.Spec.Rerun = 3 // a later spec change that is not this rerun
	_, ok = RerunReason(d)
	assert.False(t, ok)
}

// FuzzParseSkipCandidates: any annotation value parses or is refused; what parses formats back to a value
// that parses to the same list.
func FuzzParseSkipCandidates(f *testing.F) {
	for _, s := range []string{"", "1", "1,2,3", " 7 ,7", "0", "-1", "1,,", "999999999999999999999", "c1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ks, err := ParseSkipCandidates(s)
		if err != nil {
			return
		}
		again, err := ParseSkipCandidates(FormatSkipCandidates(ks))
		require.NoError(t, err)
		assert.Equal(t, ks, again)
		for _, k := range ks {
			assert.True(t, k >= 1 && k <= 1000)
		}
		assert.Empty(t, validateRunAnnotations(map[string]string{AnnotationSkipCandidates: s}))
	})
}
