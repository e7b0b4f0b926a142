package v1alpha1

import "k8s.io/utils/ptr"

// Defaults of the design (REQ 3).
const (
	DefaultISL  int32   = 512
	DefaultOSL  int32   = 128
	DefaultTTFT float64 = 100
	DefaultITL  float64 = 15
	// DefaultConfidence takes the predictions as they are (their median).
	DefaultConfidence float64 = 0.5
)

// Default fills every unset field of the spec with the design's defaults and normalises aliases.
// image is the cluster's default image (the webhook's --default-image); it is used only when spec.image is empty.
// Default is idempotent: applying it twice gives the same object.
func (r *DynamoGraphDeploymentRequest) Default(image string) {
	s := &r.Spec
	if s.Backend == "" || s.Backend == BackendAuto {
		s.Backend = BackendAny
	}
	if s.SearchStrategy == "" {
		s.SearchStrategy = SearchRapid
	}
	if s.Image == "" {
		s.Image = image
	}
	if s.Workload == nil {
		s.Workload = &Workload{}
	}
	// A distribution stands for the single length: defaulting it too would make the spec invalid.
	if s.Workload.ISL == nil && s.Workload.ISLDistribution == nil {
		s.Workload.ISL = ptr.To(DefaultISL)
	}
	if s.Workload.OSL == nil && s.Workload.OSLDistribution == nil {
		s.Workload.OSL = ptr.To(DefaultOSL)
	}
	if s.Adaptation != nil {
		s.Adaptation.Default()
	}
	if s.SLA == nil {
		s.SLA = &SLA{}
	}
	if s.SLA.TTFT == nil {
		s.SLA.TTFT = ptr.To(DefaultTTFT)
	}
	if s.SLA.ITL == nil {
		s.SLA.ITL = ptr.To(DefaultITL)
	}
}

// ISL returns the input sequence length, defaulted: the distribution's median when one is given.
func (s *DynamoGraphDeploymentRequestSpec) ISL() int {
	if s.Workload == nil {
		return int(DefaultISL)
	}
	return lengthOf(s.Workload.ISL, s.Workload.ISLDistribution, DefaultISL)
}

// OSL returns the output sequence length, defaulted: the distribution's median when one is given.
func (s *DynamoGraphDeploymentRequestSpec) OSL() int {
	if s.Workload == nil {
		return int(DefaultOSL)
	}
	return lengthOf(s.Workload.OSL, s.Workload.OSLDistribution, DefaultOSL)
}

// TTFT returns the TTFT target in milliseconds, defaulted.
func (s *DynamoGraphDeploymentRequestSpec) TTFT() float64 {
	if s.SLA == nil || s.SLA.TTFT == nil {
		return DefaultTTFT
	}
	return *s.SLA.TTFT
}

// ITL returns the ITL target in milliseconds, defaulted.
func (s *DynamoGraphDeploymentRequestSpec) ITL() float64 {
	if s.SLA == nil || s.SLA.ITL == nil {
		return DefaultITL
	}
	return *s.SLA.ITL
}

// Confidence returns the SLA's confidence, defaulted.
func (s *DynamoGraphDeploymentRequestSpec) Confidence() float64 {
	if s.SLA == nil || s.SLA.Confidence == nil {
		return DefaultConfidence
	}
	return *s.SLA.Confidence
}
