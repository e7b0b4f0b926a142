package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Names of the run history (one profiling run per metadata.generation; docs/decisions.md, "Runs").
const (
	// MaxRuns bounds status.runs (newest first).
	MaxRuns = 10
	// KeptRunResults is how many of the newest runs keep their full results ConfigMap; older ones are deleted.
	KeptRunResults = 3
	// AnnotationGeneration on a profiling Job is the DGDR generation (the run) it profiles.
	AnnotationGeneration = "nvidia.com/dgdr-generation"
	// AnnotationInputsHash on a profiling Job is InputsHash of the DGDR spec it was made for: a Job is
	// adopted only by the stored DGDR of its UID, generation and inputs hash.
	AnnotationInputsHash = "nvidia.com/dgdr-inputs-hash"
	// AnnotationRerunReason on a DGDR is "<spec.rerun>:<reason>", the --reason of the last `kubectl dgdr
	// rerun`, copied into the record of the run whose spec.rerun it names.
	AnnotationRerunReason = "nvidia.com/dgdr-rerun-reason"
	// AnnotationSkipCandidates on a DGDR lists, comma-separated, the thorough-search candidate numbers
	// (k of <dgdr>-c<k>) the running search skips (`kubectl dgdr cancel --candidate N`).
	AnnotationSkipCandidates = "nvidia.com/dgdr-skip-candidates"
	// maxSkipCandidates bounds the annotation: a search plans at most a few dozen candidates.
	maxSkipCandidates = 64
)

// RunOutcome is how a profiling run ended ("" while it runs).
// +kubebuilder:validation:Enum="";Succeeded;Failed;Cancelled;Superseded
type RunOutcome string

const (
	RunRunning    RunOutcome = ""
	RunSucceeded  RunOutcome = "Succeeded"
	RunFailed     RunOutcome = "Failed"
	RunCancelled  RunOutcome = "Cancelled"
	RunSuperseded RunOutcome = "Superseded"
)

// RunPick is what a run recommended.
type RunPick struct {
	// Summary describes the configuration (backend, mode, workers, replicas, GPUs).
	Summary string `json:"summary"`
	// Throughput is output tokens per second of the whole deployment, predicted (rapid) or measured (thorough).
	Throughput float64 `json:"throughput"`
	// +optional
	Measured bool `json:"measured,omitempty"`
	// +optional
	MeetsSLA bool `json:"meetsSLA,omitempty"`
}

// RunRecord is one profiling run: one generation of the spec.
type RunRecord struct {
	// Generation is the DGDR's metadata.generation the run profiled (its run number).
	Generation int64 `json:"generation"`
	// InputsHash is InputsHash of the spec profiled.
	InputsHash string `json:"inputsHash"`
	// +optional
	Strategy SearchStrategy `json:"strategy,omitempty"`
	// JobName is the run's profiling Job.
	// +optional
	JobName string `json:"jobName,omitempty"`
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// Outcome is empty while the run goes on.
	// +optional
	Outcome RunOutcome `json:"outcome,omitempty"`
	// Message says why it ended so (the failure, who cancelled it), or why it was started (a rerun's reason).
	// +optional
	Message string `json:"message,omitempty"`
	// +optional
	Pick *RunPick `json:"pick,omitempty"`
	// ResultsConfigMap holds the run's full results; empty once deleted (only the newest KeptRunResults keep theirs).
	// +optional
	ResultsConfigMap string `json:"resultsConfigMap,omitempty"`
	// Applied is the last apply of this run's DGD (autoApply or promote) that changed it.
	// +optional
	Applied *RunApplied `json:"applied,omitempty"`
}

// MaxDGDDiff bounds RunApplied.Diff in bytes: ten runs' diffs stay far below the object size limit.
const MaxDGDDiff = 4096

// RunApplied records how a run's apply changed the DGD.
type RunApplied struct {
	// DGDName is the DGD applied.
	DGDName string `json:"dgdName"`
	// +optional
	Time *metav1.Time `json:"time,omitempty"`
	// By is autoApply, promote, or promote --force.
	By string `json:"by"`
	// Diff is a unified diff of the DGD's labels, annotations and spec from the previous DGD (from
	// /dev/null when there was none), cut at a line after MaxDGDDiff bytes.
	// +optional
	Diff string `json:"diff,omitempty"`
	// DiffTruncated says the diff was cut.
	// +optional
	DiffTruncated bool `json:"diffTruncated,omitempty"`
}

// InputsHash fingerprints a spec: sha256 of its JSON with object keys sorted (the raw overrides too), so
// that the copy the webhook validates and the copy the API server stores hash the same. The first 16 hex
// digits are kept: it tells runs apart, it is no security boundary.
func InputsHash(s *DynamoGraphDeploymentRequestSpec) string {
	raw, err := json.Marshal(s)
	if err != nil {
		return ""
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return ""
	}
	canonical, err := json.Marshal(v) // maps marshal with sorted keys
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:])[:16]
}

// RerunReason is the reason recorded for the run of d's current spec, or "" when that run is not a rerun.
func RerunReason(d *DynamoGraphDeploymentRequest) (string, bool) {
	n, reason, ok := strings.Cut(d.Annotations[AnnotationRerunReason], ":")
	if !ok || d.Spec.Rerun == 0 || n != strconv.FormatInt(d.Spec.Rerun, 10) {
		return "", false
	}
	return reason, true
}

// SpecChanged reports whether an update changes the spec (and so starts a run).
func SpecChanged(oldObj, newObj *DynamoGraphDeploymentRequest) bool {
	return InputsHash(&oldObj.Spec) != InputsHash(&newObj.Spec)
}

// Run is the record of generation gen, or nil.
func (st *DynamoGraphDeploymentRequestStatus) Run(gen int64) *RunRecord {
	for i := range st.Runs {
		if st.Runs[i].Generation == gen {
			return &st.Runs[i]
		}
	}
	return nil
}

// ParseSkipCandidates reads AnnotationSkipCandidates: comma-separated candidate numbers (1, 2, ...),
// sorted and without duplicates.
func ParseSkipCandidates(v string) ([]int, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	parts := strings.Split(v, ",")
	if len(parts) > maxSkipCandidates {
		return nil, fmt.Errorf("expected at most %d candidate numbers, got %d", maxSkipCandidates, len(parts))
	}
	out := make([]int, 0, len(parts))
	for _, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 || n > 1000 {
			return nil, fmt.Errorf("expected comma-separated candidate numbers from 1 to 1000 (k of <dgdr>-c<k>), got %q", p)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// FormatSkipCandidates writes AnnotationSkipCandidates.
func FormatSkipCandidates(ks []int) string {
	ks = slices.Compact(slices.Sorted(slices.Values(ks)))
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = strconv.Itoa(k)
	}
	return strings.Join(s, ",")
}

// validateRunAnnotations checks the run annotations a user may write.
func validateRunAnnotations(annotations map[string]string) field.ErrorList {
	v, ok := annotations[AnnotationSkipCandidates]
	if !ok {
		return nil
	}
	if _, err := ParseSkipCandidates(v); err != nil {
		return field.ErrorList{field.Invalid(field.NewPath("metadata", "annotations").Key(AnnotationSkipCandidates), v, err.Error())}
	}
	return nil
}

// JobGeneration is the DGDR generation a profiling Job profiles (AnnotationGeneration); 0 when the Job
// does not say (made before run records existed: it profiles whatever generation is stored).
func JobGeneration(job *batchv1.Job) int64 {
	g, err := strconv.ParseInt(job.Annotations[AnnotationGeneration], 10, 64)
	if err != nil || g < 1 {
		return 0
	}
	return g
}
