package profile

import (
	"fmt"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// SpecWorkload is the workload of a DGDR's spec: its single lengths (defaulted) or its distributions,
// and the SLA percentile of the input lengths.
func SpecWorkload(s *v1alpha1.DynamoGraphDeploymentRequestSpec) (Workload, error) {
	w := Workload{ISL: s.ISL(), OSL: s.OSL()}
	if !s.Workload.HasDistribution() {
		return w, nil
	}
	isl, err := s.ISLQuantiles()
	if err != nil {
		return w, fmt.Errorf("spec.workload.islDistribution: %w", err)
	}
	osl, err := s.OSLQuantiles()
	if err != nil {
		return w, fmt.Errorf("spec.workload.oslDistribution: %w", err)
	}
	w.ISLDist, w.OSLDist, w.SLAQuantile = isl, osl, s.SLAPercentile()/100
	return normWorkload(w)
}
