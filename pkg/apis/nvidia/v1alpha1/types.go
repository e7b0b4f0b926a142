package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Names that cross component boundaries (see shared/design/architecture.md). Keep them stable.
const (
	Kind     = "DynamoGraphDeploymentRequest"
	Resource = "dynamographdeploymentrequests"

	// LabelDGDRName links a profiling Job and a generated DGD to the DGDR that made them.
	LabelDGDRName = "nvidia.com/dgdr-name"
	// AnnotationAppliedSpecHash on a DGD is the sha256 of the spec dgdr last applied (as stored): a
	// different live spec means someone else changed it, and `promote` refuses to overwrite it without --force.
	AnnotationAppliedSpecHash = "nvidia.com/dgdr-applied-spec-hash"
	// AnnotationHFTokenSecret on a DGDR names a Secret (in its namespace) holding HF_TOKEN, which the
	// generated DGD's frontend and workers read, for gated or private models. The design's spec has no
	// field for it, so it is an annotation; the DGD generation reads it wherever the DGD is made.
	AnnotationHFTokenSecret = "nvidia.com/dgdr-hf-token-secret"
	// ProfilerServiceAccount runs the profiling Job.
	ProfilerServiceAccount = "dgdr-profiler"
	// FieldManager is the server-side apply field manager of everything dgdr writes.
	FieldManager = "dgdr"
	// ProfilingConfigMapSuffix names the ConfigMap <dgdr>-profiling holding the full results.
	ProfilingConfigMapSuffix = "-profiling"
	// LabelCandidate marks a candidate DGD a thorough search deploys to measure (value c<k>); with
	// LabelDGDRName it finds a DGDR's candidates, e.g. those a crashed profiler left behind.
	LabelCandidate = "nvidia.com/dgdr-candidate"
)

// Backend is the serving engine. "any" lets the search compare all of them.
// +kubebuilder:validation:Enum=any;sglang;trtllm;vllm
type Backend string

const (
	BackendAny    Backend = "any"
	BackendSGLang Backend = "sglang"
	BackendTRTLLM Backend = "trtllm"
	BackendVLLM   Backend = "vllm"
	// BackendAuto is accepted on input as an alias of BackendAny (Dynamo 1.0 spells it so) and stored as "any".
	BackendAuto Backend = "auto"
)

// Backends lists the canonical backend values in the order they are documented.
var Backends = []Backend{BackendAny, BackendSGLang, BackendTRTLLM, BackendVLLM}

// SearchStrategy chooses how configurations are evaluated.
// +kubebuilder:validation:Enum=rapid;thorough
type SearchStrategy string

const (
	// SearchRapid predicts performance with dgdr's own model: sub-second, no GPUs.
	SearchRapid SearchStrategy = "rapid"
	// SearchThorough measures real candidate deployments on the cluster.
	SearchThorough SearchStrategy = "thorough"
)

// SearchStrategies lists the accepted strategies.
var SearchStrategies = []SearchStrategy{SearchRapid, SearchThorough}

// Phase is the lifecycle phase of a DGDR.
// +kubebuilder:validation:Enum=Pending;Profiling;Ready;Deploying;Deployed;Failed
type Phase string

const (
	PhasePending   Phase = "Pending"
	PhaseProfiling Phase = "Profiling"
	PhaseReady     Phase = "Ready"
	PhaseDeploying Phase = "Deploying"
	PhaseDeployed  Phase = "Deployed"
	PhaseFailed    Phase = "Failed"
)

// Condition types recorded in status.conditions.
const (
	ConditionValidated         = "Validated"
	ConditionProfilingComplete = "ProfilingComplete"
	ConditionDGDGenerated      = "DGDGenerated"
	ConditionDeploymentReady   = "DeploymentReady"
)

// Workload describes the traffic the deployment is sized for: one input and output length each, or
// their distributions (set isl or islDistribution, osl or oslDistribution, not both).
type Workload struct {
	// ISL is the input sequence length in tokens (default 512 when islDistribution is unset).
	// +optional
	ISL *int32 `json:"isl,omitempty"`
	// OSL is the output sequence length in tokens (default 128 when oslDistribution is unset).
	// +optional
	OSL *int32 `json:"osl,omitempty"`
	// ISLDistribution gives the input lengths as percentiles or a histogram, instead of isl.
	// +optional
	ISLDistribution *LengthDistribution `json:"islDistribution,omitempty"`
	// OSLDistribution gives the output lengths as percentiles or a histogram, instead of osl.
	// +optional
	OSLDistribution *LengthDistribution `json:"oslDistribution,omitempty"`
	// SLAPercentile is the percentile of the input lengths, strictly between 0 and 100, whose requests
	// must meet the TTFT target (default 90); read only with islDistribution.
	// +optional
	SLAPercentile *float64 `json:"slaPercentile,omitempty"`
	// RequestRate is the expected requests per second, for comparison with the observed rate (drift);
	// the search sizes for the GPU budget, not for it.
	// +optional
	RequestRate *float64 `json:"requestRate,omitempty"`
}

// LengthDistribution is a distribution of sequence lengths: percentiles or a histogram (exactly one).
type LengthDistribution struct {
	// Percentiles are lengths at given percentiles, such as p50, p90 and p99: percentiles strictly
	// increasing, tokens non-decreasing. Lengths below the first and above the last are taken as those.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	Percentiles []LengthPercentile `json:"percentiles,omitempty"`
	// +optional
	Histogram *LengthHistogram `json:"histogram,omitempty"`
}

// LengthPercentile is the length, in tokens, at one percentile.
type LengthPercentile struct {
	// Percentile is strictly between 0 and 100 (50 is the median).
	Percentile float64 `json:"percentile"`
	Tokens     int32   `json:"tokens"`
}

// LengthHistogram counts requests per length bucket: bucket i holds the lengths above
// upperBounds[i-1] (0 for the first) up to upperBounds[i], spread evenly inside it.
type LengthHistogram struct {
	// UpperBounds are the buckets' upper bounds in tokens, strictly increasing.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	UpperBounds []int32 `json:"upperBounds"`
	// Counts are the requests in each bucket: as many as upperBounds, none negative, not all zero.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Counts []float64 `json:"counts"`
}

// AdaptationMode says what a detected improvement leads to.
// +kubebuilder:validation:Enum=Recommend;Apply
type AdaptationMode string

const (
	// AdaptRecommend reports the improvement (condition ImprovementAvailable) and changes nothing.
	AdaptRecommend AdaptationMode = "Recommend"
	// AdaptApply also re-profiles with the observed workload: spec.workload becomes the observed one,
	// which starts a new run.
	AdaptApply AdaptationMode = "Apply"
)

// AdaptationModes lists the accepted modes.
var AdaptationModes = []AdaptationMode{AdaptRecommend, AdaptApply}

// Adaptation compares the live traffic, read from Prometheus, with spec.workload and re-plans when
// they drift. Off unless set.
type Adaptation struct {
	// PrometheusURL is the Prometheus HTTP API base URL that scrapes the DGD's frontend
	// (http or https, such as http://prometheus.monitoring:9090).
	PrometheusURL string `json:"prometheusURL"`
	// Window is how far back the traffic is read, a Prometheus duration such as 30m or 1h (default 1h).
	// +optional
	Window string `json:"window,omitempty"`
	// MinImprovement is the predicted gain in tokens/s/GPU, as a fraction (0.1 = 10%), at which an
	// improvement is reported (default 0.1).
	// +optional
	MinImprovement *float64 `json:"minImprovement,omitempty"`
	// Mode is Recommend (default) or Apply.
	// +optional
	Mode AdaptationMode `json:"mode,omitempty"`
}

// SLA holds the latency targets in milliseconds.
type SLA struct {
	// TTFT is the time-to-first-token target in milliseconds (default 100).
	// +optional
	TTFT *float64 `json:"ttft,omitempty"`
	// ITL is the inter-token latency target in milliseconds (default 15).
	// +optional
	ITL *float64 `json:"itl,omitempty"`
	// Confidence is the probability, strictly between 0 and 1, with which the chosen configuration
	// must meet both targets: a configuration qualifies when this quantile of its predicted TTFT and
	// ITL does, from the performance model's calibrated p10–p90 intervals. Unset: 0.5, the
	// predictions as they are.
	// +optional
	Confidence *float64 `json:"confidence,omitempty"`
}

// ModelCache points at a PVC that holds the model weights.
type ModelCache struct {
	// PVCName is a PersistentVolumeClaim in the DGDR's namespace.
	PVCName string `json:"pvcName"`
	// PVCPath is the model's folder inside the PVC (empty: the PVC root).
	// +optional
	PVCPath string `json:"pvcPath,omitempty"`
}

// Overrides are partial objects merged into what dgdr generates.
type Overrides struct {
	// ProfilingJob is a partial batch/v1 JobSpec, merged with strategic-merge semantics.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	ProfilingJob *runtime.RawExtension `json:"profilingJob,omitempty"`
	// DGD is a partial DynamoGraphDeployment, merged into the generated one (components keyed by name).
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	DGD *runtime.RawExtension `json:"dgd,omitempty"`
}

// Hardware overrides GPU auto-discovery, for clusters whose nodes carry no GPU labels.
type Hardware struct {
	// GPUType is a catalog name such as h100_sxm or h200_sxm.
	// +optional
	GPUType string `json:"gpuType,omitempty"`
	// GPUsPerNode is the number of GPUs in one node.
	// +optional
	GPUsPerNode *int32 `json:"gpusPerNode,omitempty"`
	// TotalGPUs bounds the GPUs the deployment (and thorough profiling) may use.
	// +optional
	TotalGPUs *int32 `json:"totalGpus,omitempty"`
}

// DynamoGraphDeploymentRequestSpec is what the user asks for. A change of it starts a new profiling run
// (one per metadata.generation), recorded in status.runs.
type DynamoGraphDeploymentRequestSpec struct {
	// Model is a Hugging Face id (org/name), or the served name when modelCache is set.
	// +kubebuilder:validation:MinLength=1
	Model string `json:"model"`
	// Backend is the serving engine, or any to compare all (auto is accepted and stored as any).
	// +optional
	Backend Backend `json:"backend,omitempty"`
	// Image is the container image for profiling and runtime (defaulted by the webhook).
	// +optional
	Image string `json:"image,omitempty"`
	// +optional
	Workload *Workload `json:"workload,omitempty"`
	// +optional
	SLA *SLA `json:"sla,omitempty"`
	// +optional
	ModelCache *ModelCache `json:"modelCache,omitempty"`
	// +optional
	Overrides *Overrides `json:"overrides,omitempty"`
	// SearchStrategy is rapid (performance model) or thorough (on-cluster measurements).
	// +optional
	SearchStrategy SearchStrategy `json:"searchStrategy,omitempty"`
	// EnableAutoScaling adds the Dynamo Planner to the generated DGD.
	// +optional
	EnableAutoScaling bool `json:"enableAutoScaling"`
	// AutoApply deploys the recommended DGD once profiling completes.
	// +optional
	AutoApply bool `json:"autoApply"`
	// Hardware overrides GPU discovery.
	// +optional
	Hardware *Hardware `json:"hardware,omitempty"`
	// Adaptation compares the live traffic with the workload and reports when a re-plan would gain.
	// +optional
	Adaptation *Adaptation `json:"adaptation,omitempty"`
	// Rerun is a counter `kubectl dgdr rerun` raises to start a new run with an otherwise unchanged spec;
	// the search ignores it.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Rerun int64 `json:"rerun,omitempty"`
}

// Worker is one pool of identical engine workers inside a configuration.
type Worker struct {
	// Role is agg, prefill or decode.
	Role string `json:"role"`
	// Count is the number of workers of this role in one replica of the configuration.
	Count int32 `json:"count"`
	TP    int32 `json:"tp"`
	PP    int32 `json:"pp"`
	EP    int32 `json:"ep"`
	// DP is attention data parallelism (1 when unused); a worker uses TP×PP×DP GPUs.
	// +optional
	DP int32 `json:"dp,omitempty"`
	// Batch is the maximum number of concurrent sequences per worker.
	Batch int32 `json:"batch"`
}

// ParetoPoint is one configuration with its predicted (rapid) or measured (thorough) performance.
type ParetoPoint struct {
	Backend string `json:"backend"`
	// Mode is agg or disagg.
	Mode string `json:"mode"`
	// Parallelization is the number of GPUs one replica of the configuration uses.
	Parallelization int32 `json:"parallelization"`
	// Throughput is output tokens per second of the whole deployment.
	Throughput float64 `json:"throughput"`
	// TTFT in milliseconds.
	TTFT float64 `json:"ttft"`
	// ITL in milliseconds.
	ITL                    float64  `json:"itl"`
	GPUs                   int32    `json:"gpus"`
	Replicas               int32    `json:"replicas"`
	TokensPerSecondPerGPU  float64  `json:"tokensPerSecondPerGPU"`
	TokensPerSecondPerUser float64  `json:"tokensPerSecondPerUser"`
	MeetsSLA               bool     `json:"meetsSLA"`
	Workers                []Worker `json:"workers,omitempty"`
	// Measured is true when the figures were measured on a candidate deployment (thorough search),
	// false when the performance model predicted them (rapid search).
	// +optional
	Measured bool `json:"measured,omitempty"`
	// Predicted is what the performance model predicted for the same configuration and load, beside a
	// measured point, so that the model's error shows.
	// +optional
	Predicted *PredictedPerformance `json:"predicted,omitempty"`
}

// PredictedPerformance is the performance model's prediction for a measured configuration.
type PredictedPerformance struct {
	// TTFT and ITL in milliseconds.
	TTFT                  float64 `json:"ttft"`
	ITL                   float64 `json:"itl"`
	TokensPerSecondPerGPU float64 `json:"tokensPerSecondPerGPU"`
}

// ProfilingBudget is what a thorough search may spend and what it spent. The estimate is made before
// any candidate is deployed.
type ProfilingBudget struct {
	// GPUs is the most GPUs the candidate deployments hold at once (spec.hardware.totalGpus, else the free GPUs).
	GPUs int32 `json:"gpus"`
	// Deadline is when the search stops measuring (the profiling Job's activeDeadlineSeconds less a margin for cleanup).
	// +optional
	Deadline *metav1.Time `json:"deadline,omitempty"`
	// EstimatedGPUHours and EstimatedWallTime are the expected cost of measuring the planned candidates.
	EstimatedGPUHours float64         `json:"estimatedGpuHours"`
	EstimatedWallTime metav1.Duration `json:"estimatedWallTime"`
	// Candidates is the number of candidate deployments planned; Measured, Failed and Pruned count them
	// by outcome so far (pruned: dropped or stopped early because measurements showed they cannot win).
	Candidates int32 `json:"candidates"`
	// +optional
	Measured int32 `json:"measured,omitempty"`
	// +optional
	Failed int32 `json:"failed,omitempty"`
	// +optional
	Pruned int32 `json:"pruned,omitempty"`
	// UsedGPUHours is what the candidate deployments held so far (GPUs × time from creation to deletion).
	// +optional
	UsedGPUHours float64 `json:"usedGpuHours,omitempty"`
}

// SelectedConfig is the recommended configuration and the DGD generated from it.
type SelectedConfig struct {
	ParetoPoint `json:",inline"`
	// Index is the position of this configuration in pareto (-1 when it is not on the front).
	Index int32 `json:"index"`
	// Reason explains the choice, or which SLA target the closest configuration misses and by how much.
	// +optional
	Reason string `json:"reason,omitempty"`
	// DGD is the generated DynamoGraphDeployment.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	DGD *runtime.RawExtension `json:"dgd,omitempty"`
}

// ProfilingResults is the outcome of the search.
type ProfilingResults struct {
	// Pareto is the front of non-dominated configurations (bounded; the full table is in the <name>-profiling ConfigMap).
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Pareto []ParetoPoint `json:"pareto,omitempty"`
	// +optional
	SelectedConfig *SelectedConfig `json:"selectedConfig,omitempty"`
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// Budget is the thorough search's GPU-hour and wall-time budget (absent for rapid).
	// +optional
	Budget *ProfilingBudget `json:"budget,omitempty"`
}

// DeploymentInfo mirrors the state of the deployed DGD.
type DeploymentInfo struct {
	Replicas          int32 `json:"replicas"`
	AvailableReplicas int32 `json:"availableReplicas"`
}

// DynamoGraphDeploymentRequestStatus is written by the profiler and the plugin.
type DynamoGraphDeploymentRequestStatus struct {
	// +optional
	Phase Phase `json:"phase,omitempty"`
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +optional
	DGDName string `json:"dgdName,omitempty"`
	// +optional
	ProfilingJobName string `json:"profilingJobName,omitempty"`
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// +optional
	ProfilingResults *ProfilingResults `json:"profilingResults,omitempty"`
	// +optional
	DeploymentInfo *DeploymentInfo `json:"deploymentInfo,omitempty"`
	// Runs records the profiling runs, newest first, one per generation that was profiled (at most MaxRuns).
	// +optional
	// +kubebuilder:validation:MaxItems=10
	Runs []RunRecord `json:"runs,omitempty"`
}

// DynamoGraphDeploymentRequest turns "serve this model under this latency target" into a DynamoGraphDeployment.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dgdr,categories=dynamo
// +kubebuilder:printcolumn:name="Model",type=string,JSONPath=`.spec.model`
// +kubebuilder:printcolumn:name="Backend",type=string,JSONPath=`.spec.backend`
// +kubebuilder:printcolumn:name="Strategy",type=string,JSONPath=`.spec.searchStrategy`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Run",type=integer,JSONPath=`.metadata.generation`
// +kubebuilder:printcolumn:name="DGD",type=string,JSONPath=`.status.dgdName`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type DynamoGraphDeploymentRequest struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DynamoGraphDeploymentRequestSpec   `json:"spec"`
	Status DynamoGraphDeploymentRequestStatus `json:"status,omitempty"`
}

// DynamoGraphDeploymentRequestList is a list of DGDRs.
// +kubebuilder:object:root=true
type DynamoGraphDeploymentRequestList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DynamoGraphDeploymentRequest `json:"items"`
}
