package expand

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// TestAdaptCronJobGolden expands every testdata/cronjob/<case>/dgdr.yaml (defaulted as the webhook does)
// and compares the CronJob with cronjob.golden.yaml beside it (go test ./pkg/expand -update rewrites them).
func TestAdaptCronJobGolden(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "cronjob", "*", "dgdr.yaml"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(dirs), 3, "expected the three golden cases")
	for _, in := range dirs {
		dir := filepath.Dir(in)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			d := readDGDR(t, in)
			d.Default(testDefaultImage)
			cj, err := AdaptCronJob(d, JobOptions{ProfilerImage: testProfilerImage})
			require.NoError(t, err)
			assert.LessOrEqual(t, len(cj.Name), CronJobNameMaxLength)
			got, err := yaml.Marshal(cj)
			require.NoError(t, err)
			golden := filepath.Join(dir, "cronjob.golden.yaml")
			if *update {
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./pkg/expand -update to create it")
			assert.Equal(t, string(want), string(got))
		})
	}
}

func TestAdaptCronJobRefuses(t *testing.T) {
	opts := JobOptions{ProfilerImage: testProfilerImage}
	tests := map[string]struct {
		d    *v1alpha1.DynamoGraphDeploymentRequest
		opts JobOptions
		want string
	}{
		"no adaptation": {dgdr("a", nil), opts, "spec.adaptation"},
		"no image":      {dgdr("a", withAdaptation("1h")), JobOptions{}, "profiler image"},
		"bad window":    {dgdr("a", withAdaptation("an hour")), opts, "spec.adaptation.window"},
		"no namespace": {dgdr("a", func(d *v1alpha1.DynamoGraphDeploymentRequest) {
			withAdaptation("1h")(d)
			d.Namespace = ""
		}), opts, "namespace"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := AdaptCronJob(tc.d, tc.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func withAdaptation(window string) func(*v1alpha1.DynamoGraphDeploymentRequest) {
	return func(d *v1alpha1.DynamoGraphDeploymentRequest) {
		d.Spec.Adaptation = &v1alpha1.Adaptation{PrometheusURL: "http://prometheus:9090", Window: window}
	}
}

// TestAdaptSchedule: every window, within [5m, 1h], rounded down to a divisor of the hour, so that the
// runs are evenly spaced; the offset stays within the period.
func TestAdaptSchedule(t *testing.T) {
	tests := map[string]struct {
		window time.Duration
		period time.Duration
	}{
		"shorter than the minimum": {30 * time.Second, 5 * time.Minute},
		"five minutes":             {5 * time.Minute, 5 * time.Minute},
		"seven minutes":            {7 * time.Minute, 6 * time.Minute},
		"twenty-five minutes":      {25 * time.Minute, 20 * time.Minute},
		"an hour":                  {time.Hour, time.Hour},
		"a day":                    {24 * time.Hour, time.Hour},
	}
	parser := cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for _, uid := range []types.UID{"6f1c2d3e-0000-4000-8000-000000000001", "0a9b8c7d-0000-4000-8000-000000000002", ""} {
				s, err := parser.Parse(AdaptSchedule(tc.window, uid))
				require.NoError(t, err, AdaptSchedule(tc.window, uid))
				start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
				first := s.Next(start)
				assert.Less(t, first.Sub(start), tc.period+time.Minute, "first run within one period")
				for at, i := first, 0; i < 30; i++ {
					next := s.Next(at)
					assert.Equal(t, tc.period, next.Sub(at), "runs %s apart", tc.period)
					at = next
				}
			}
		})
	}
}
