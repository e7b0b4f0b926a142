package profiler

import (
	"context"
	"fmt"

	"github.com/dgdr-dev/dgdr/internal/calibstore"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// useCalibration makes req predict with the refit of the DGDR's namespace (kubectl dgdr calibrate)
// when one is stored, and returns what the status message says about the calibration. An unreadable
// store does not stop the search: the shipped calibration is used and the message says why.
func (r *run) useCalibration(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest, req *profile.SearchRequest) string {
	s, err := calibstore.Load(ctx, r.Client, d.Namespace)
	if err != nil {
		r.Log.Info("calibration store unreadable, using the shipped calibration", "error", err.Error())
		return fmt.Sprintf("; shipped calibration (the store is unreadable: %v)", err)
	}
	if s.Fit == nil {
		return ""
	}
	base, err := profile.EmbeddedCalibration()
	if err != nil {
		return fmt.Sprintf("; shipped calibration (%v)", err)
	}
	cal := s.Fit.Calibration(base)
	req.Calibration = &cal
	return "; predictions with the calibration " + cal.Method
}

// storeMeasurements adds every load the thorough search measured to the namespace's calibration
// store, against the configuration deployed at that load (the agg or decode worker's batch the
// level's). It returns what the status message says.
func (s *sweep) storeMeasurements(ctx context.Context) string {
	s.mu.Lock()
	var ms []calibstore.Measurement
	now := s.Now()
	for _, c := range s.rec.Candidates {
		for _, m := range c.Measurements {
			if !(m.Measured.TTFTMs > 0) || !(m.Measured.ITLMs > 0) {
				continue
			}
			cfg := c.Config
			cfg.Workers = append([]profile.Worker(nil), c.Config.Workers...)
			for i := range cfg.Workers {
				if cfg.Workers[i].Role == profile.RoleAgg || cfg.Workers[i].Role == profile.RoleDecode {
					cfg.Workers[i].Batch = m.Batch
				}
			}
			ms = append(ms, calibstore.Measurement{Model: s.rec.Model, GPU: s.rec.GPU, WeightDtype: s.pl.Request.WeightDtype, Config: cfg,
				ISL: s.rec.Workload.ISL, OSL: s.rec.Workload.OSL, Concurrency: m.Concurrency, TTFTMs: m.Measured.TTFTMs, ITLMs: m.Measured.ITLMs,
				Source: "thorough " + s.d.Name + "/" + c.Name, At: now})
		}
	}
	s.mu.Unlock()
	if len(ms) == 0 {
		return ""
	}
	if err := calibstore.Append(ctx, s.Client, s.d.Namespace, ms); err != nil {
		s.Log.Info("could not add the measurements to the calibration store", "error", err.Error())
		return fmt.Sprintf("; the measurements were not added to %s: %v", calibstore.Name, err)
	}
	return fmt.Sprintf("; %d measured loads added to %s (kubectl dgdr calibrate refits on them)", len(ms), calibstore.Name)
}
