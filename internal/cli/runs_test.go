package cli

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

func TestRerunHistoryCancel(t *testing.T) {
	h := newHarness(t, testenv.Options{})
	ns := h.namespace("runs")
	st := readyStatus("r")
	st.ObservedGeneration = 1
	st.Runs = []v1alpha1.RunRecord{{Generation: 1, Outcome: v1alpha1.RunSucceeded, StartTime: ptrTime(metav1.Now()),
		Pick: &v1alpha1.RunPick{Summary: "vllm agg 1×agg TP2, 1 replica(s), 2 GPUs", Throughput: 1000}}}
	h.dgdr(ns, "r", spec(), &st)

	r := h.ok("rerun", "r", "-n", ns, "--reason", "more GPUs")
	assert.Contains(t, r.out, "dynamographdeploymentrequest.nvidia.com/r: run 2 started")
	d := h.get(ns, "r")
	assert.Equal(t, int64(2), d.Generation)
	assert.Equal(t, int64(1), d.Spec.Rerun)
	reason, ok := v1alpha1.RerunReason(d)
	assert.True(t, ok)
	assert.Equal(t, "more GPUs", reason)

	// Run 2's profiler has not started (no webhook here): cancel records it started, then cancelled.
	r = h.ok("cancel", "r", "-n", ns)
	assert.Contains(t, r.out, "run 2 cancelled")
	d = h.get(ns, "r")
	assert.Equal(t, v1alpha1.PhaseFailed, d.Status.Phase)
	assert.Equal(t, int64(2), d.Status.ObservedGeneration)
	require.Len(t, d.Status.Runs, 2)
	assert.Equal(t, v1alpha1.RunCancelled, d.Status.Runs[0].Outcome)
	assert.Contains(t, d.Status.Runs[0].Message, "run 2 cancelled by kubectl dgdr cancel")

	f := h.fail("cancel", "r", "-n", ns)
	assert.Contains(t, f.errLine, "DGDR r is not profiling: run 2 is Failed")

	r = h.ok("history", "r", "-n", ns)
	rows := rows(r.out)
	require.Len(t, rows, 3)
	assert.Equal(t, []string{"RUN", "STARTED", "OUTCOME", "PICK", "TOKENS/S", "CHANGE", "MESSAGE"}, rows[0])
	assert.Equal(t, []string{"2", "Cancelled"}, []string{rows[1][0], rows[1][3]})

	// A newer run with a pick shows the change from the last run with one.
	st = h.get(ns, "r").Status
	st.Runs = append([]v1alpha1.RunRecord{{Generation: 3, Outcome: v1alpha1.RunSucceeded, Pick: &v1alpha1.RunPick{Summary: "vllm disagg", Throughput: 1200, Measured: true},
		Applied: &v1alpha1.RunApplied{DGDName: "r-dgd", By: "autoApply", Diff: "--- live/r-dgd\n+++ dgdr/r-dgd\n@@ -1 +1 @@\n-  replicas: 1\n+  replicas: 2\n"}}}, st.Runs...)
	h.setStatus(ns, "r", st)
	r = h.ok("history", "r", "-n", ns)
	assert.Contains(t, r.out, "1200 measured")
	assert.Contains(t, r.out, "+20.0% vs run 1")
	r = h.ok("history", "r", "-n", ns, "-o", "json")
	var runs []v1alpha1.RunRecord
	require.NoError(t, json.Unmarshal([]byte(r.out), &runs))
	assert.Len(t, runs, 3)
	r = h.ok("history", "r", "-n", ns, "--diff", "3")
	assert.Contains(t, r.out, "# run 3: DGD r-dgd applied by autoApply")
	assert.Contains(t, r.out, "-  replicas: 1\n+  replicas: 2\n")
	f = h.fail("history", "r", "-n", ns, "--diff", "2")
	assert.Contains(t, f.errLine, "run 2 of DGDR r has not applied a DGD")
	f = h.fail("history", "r", "-n", ns, "--diff", "9")
	assert.Contains(t, f.errLine, "DGDR r has no record of run 9")
	f = h.fail("history", "r", "-n", ns, "-o", "csv")
	assert.Contains(t, f.errLine, `unsupported output format "csv"`)

	// --candidate: only for a thorough search that is running.
	th := spec()
	th.SearchStrategy = v1alpha1.SearchThorough
	h.dgdr(ns, "t", th, &v1alpha1.DynamoGraphDeploymentRequestStatus{Phase: v1alpha1.PhaseProfiling, ObservedGeneration: 1})
	r = h.ok("cancel", "t", "-n", ns, "--candidate", "3")
	assert.Contains(t, r.out, "candidate c3 of run 1 is skipped")
	r = h.ok("cancel", "t", "-n", ns, "--candidate", "1")
	assert.Equal(t, "1,3", h.get(ns, "t").Annotations[v1alpha1.AnnotationSkipCandidates])
	f = h.fail("cancel", "t", "-n", ns, "--candidate", "0")
	assert.Contains(t, f.errLine, "expected a candidate number of 1 or more")
	h.dgdr(ns, "rapid", spec(), &v1alpha1.DynamoGraphDeploymentRequestStatus{Phase: v1alpha1.PhaseProfiling, ObservedGeneration: 1})
	f = h.fail("cancel", "rapid", "-n", ns, "--candidate", "2")
	assert.Contains(t, f.errLine, "deploys no candidates")
}

func ptrTime(t metav1.Time) *metav1.Time { return &t }
