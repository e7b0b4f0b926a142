package lifecycle

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/hw"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// TestResultsConfigMapFitsAndRoundTrips stores the report of a large search (every costed candidate)
// and checks it stays well under a ConfigMap's 1 MiB and reads back unchanged.
func TestResultsConfigMapFitsAndRoundTrips(t *testing.T) {
	m, err := profile.LookupModel("Qwen/Qwen3-8B")
	require.NoError(t, err)
	g, err := hw.Lookup("h200_sxm")
	require.NoError(t, err)
	req := profile.SearchRequest{Model: m, GPU: g, Workload: profile.Workload{ISL: 512, OSL: 128},
		SLA: profile.SLA{TTFTMs: 100, ITLMs: 15}, TotalGPUs: 64}
	res, err := profile.Search(t.Context(), req)
	require.NoError(t, err)
	report := profile.NewReport(&req, &res, true)
	require.Greater(t, len(report.Candidates), 1000)
	total := len(report.Candidates)

	d := &v1alpha1.DynamoGraphDeploymentRequest{ObjectMeta: metav1.ObjectMeta{Name: "big", Namespace: "ns", UID: "u1"}}
	cm, err := ResultsConfigMap(d, &report, "<svg/>")
	require.NoError(t, err)
	size := len(cm.BinaryData[ResultsKey]) * 4 / 3 // base64 on the wire
	t.Logf("%d candidates (%d omitted): %d bytes stored", len(report.Candidates), report.CandidatesOmitted, size)
	assert.LessOrEqual(t, size, maxResultsBytes*4/3, "room to spare under the 1 MiB ConfigMap limit")
	assert.Equal(t, "big-profiling", cm.Name)
	assert.Equal(t, "big", cm.Labels[v1alpha1.LabelDGDRName])
	assert.Equal(t, d.UID, cm.OwnerReferences[0].UID)

	back, err := ReadResults(cm)
	require.NoError(t, err)
	assert.Equal(t, report.Pareto, back.Pareto)
	assert.Equal(t, len(report.Candidates), len(back.Candidates))
	assert.Equal(t, total, len(back.Candidates)+back.CandidatesOmitted, "what was left out is counted")

	cm.BinaryData[ResultsKey] = []byte("not gzip")
	_, err = ReadResults(cm)
	assert.ErrorContains(t, err, "expected gzip")
}

func TestBoundDiff(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		cut            bool
	}{
		{"fits", "a\nb\n", "a\nb\n", false},
		{"cut at a line", "aaa\nbbb\nccc\n", "aaa\n... 2 more line(s) not recorded\n", true},
		{"no final newline", "aaa\nbbb\nccc", "aaa\n... 2 more line(s) not recorded\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, cut := BoundDiff(tc.in, 6)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.cut, cut)
		})
	}
}
