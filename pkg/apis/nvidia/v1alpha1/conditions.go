package v1alpha1

// ConditionImprovementAvailable is True when the live traffic drifted from spec.workload and a re-plan
// with the observed workload is predicted to gain at least spec.adaptation.minImprovement.
const ConditionImprovementAvailable = "ImprovementAvailable"

// Reasons of status.conditions. Every writer (the profiler, the plugin, the UI) uses these, so that
// clients can match on them.
const (
	// Validated.
	ReasonValidated          = "Validated"
	ReasonInvalidSpec        = "InvalidSpec"
	ReasonUnknownModel       = "UnknownModel"
	ReasonUnknownGPU         = "UnknownGPU"
	ReasonNoGPUs             = "NoGPUs"
	ReasonNoFreeGPUs         = "NoFreeGPUs"
	ReasonNoGPUBudget        = "NoGPUBudget"
	ReasonDynamoNotInstalled = "DynamoNotInstalled"

	// ProfilingComplete.
	ReasonProfiling       = "Profiling"
	ReasonSLAMet          = "SLAMet"
	ReasonSLANotMet       = "SLANotMet"
	ReasonSearchFailed    = "SearchFailed"
	ReasonNoConfiguration = "NoConfiguration"
	ReasonNothingMeasured = "NothingMeasured"
	// ReasonNewRun: a spec change or `kubectl dgdr rerun` started the run of a newer generation.
	ReasonNewRun = "NewRun"
	// ReasonCancelled: `kubectl dgdr cancel` stopped the run.
	ReasonCancelled = "Cancelled"

	// DGDGenerated.
	ReasonGenerated        = "Generated"
	ReasonGenerationFailed = "GenerationFailed"
	ReasonPromoted         = "Promoted"

	// DeploymentReady.
	ReasonDeploying   = "Deploying"
	ReasonDGDReady    = "Ready"
	ReasonDGDNotFound = "DGDNotFound"
	ReasonDGDFailed   = "DGDFailed"
	ReasonBadDGD      = "BadDGD"
	ReasonApplyFailed = "ApplyFailed"
	ReasonNotOwned    = "NotOwned"
	// ReasonDGDEdited: a later run's DGD was not applied in place because the live DGD's spec changed
	// since dgdr applied it; the DGDR stays Ready (promote --force overwrites it).
	ReasonDGDEdited = "DGDEdited"

	// ProfilingComplete False when the profiling Job died: the Job's and pod's own reasons.
	ReasonDeadlineExceeded      = "DeadlineExceeded"
	ReasonBackoffLimitExceeded  = "BackoffLimitExceeded"
	ReasonOOMKilled             = "OOMKilled"
	ReasonImagePullBackOff      = "ImagePullBackOff"
	ReasonUnschedulable         = "Unschedulable"
	ReasonServiceAccountMissing = "ServiceAccountMissing"
	ReasonJobFailed             = "JobFailed"
	ReasonProfilerError         = "ProfilerError"
	ReasonJobGone               = "JobGone"

	// ImprovementAvailable.
	ReasonReplanGains = "ReplanGains"
	ReasonNoDrift     = "NoDrift"
	ReasonSmallGain   = "GainBelowThreshold"
)
