package adaptrun

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/pkg/adapt"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// Scheduled is one run of the adaptation CronJob (`dgdr-profiler drift`): it evaluates DGDR key with its
// spec.adaptation and records the outcome. It returns nil, logging why, when there is nothing to do yet or
// any more — the DGDR is gone or is another create than uid's, has no spec.adaptation, is profiling or
// not profiled, or its frontend served too little traffic in the window — and an error only when the next
// run may do better (the API server or Prometheus failing, the spec changed under mode Apply) or a person
// must act (no search results to re-plan from).
func Scheduled(ctx context.Context, c client.Client, key types.NamespacedName, uid types.UID, log logr.Logger) (Outcome, error) {
	d := &v1alpha1.DynamoGraphDeploymentRequest{}
	switch err := c.Get(ctx, key, d); {
	case apierrors.IsNotFound(err):
		log.Info("nothing to evaluate: the DGDR is not stored (deleted, or its create was refused)")
		return Outcome{}, nil
	case err != nil:
		return Outcome{}, fmt.Errorf("reading DGDR %s: %w", key, err)
	}
	ready := (d.Status.Phase == v1alpha1.PhaseReady || d.Status.Phase == v1alpha1.PhaseDeployed) && d.Status.ObservedGeneration >= d.Generation
	switch {
	case uid != "" && d.UID != uid:
		log.Info("nothing to evaluate: DGDR is another create than the one this CronJob was made for", "uid", d.UID, "want", uid)
		return Outcome{}, nil
	case d.Spec.Adaptation == nil:
		log.Info("nothing to evaluate: spec.adaptation is not set")
		return Outcome{}, nil
	case !ready:
		// A run in flight (perhaps one this CronJob started with mode Apply) is judged when it is done.
		log.Info("nothing to evaluate yet: the current spec is not profiled", "phase", d.Status.Phase, "generation", d.Generation, "observedGeneration", d.Status.ObservedGeneration)
		return Outcome{}, nil
	}
	out, err := Run(ctx, c, d, Options{Record: true})
	switch {
	case errors.Is(err, adapt.ErrNoTraffic), errors.Is(err, ErrNotProfiled):
		log.Info("nothing to evaluate yet", "why", err.Error())
		return out, nil
	case err != nil:
		return out, err
	}
	r := out.Report
	log.Info("evaluated", "drifted", r.Drifted, "improvementAvailable", r.ImprovementAvailable, "applied", out.Applied, "summary", r.Summary)
	return out, nil
}
