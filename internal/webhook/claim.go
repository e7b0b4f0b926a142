package webhook

import (
	"context"
	"errors"
	"time"

	"k8s.io/apimachinery/pkg/types"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
)

// claimPoll is how soon a claim first looks for its DGDR: admission usually stores it within milliseconds.
const claimPoll = 100 * time.Millisecond

// claimLater settles, in the background, the profiling Job this replica just created for the create of
// key with uid (lifecycle.Claim): once that DGDR is stored it becomes the Job's owner, so deleting the
// DGDR deletes the Job even when its pod never starts; if the create is refused after this webhook, the
// Job is deleted within ClaimWait. The profiler does the same when its pod starts, so a replica that stops
// before its claims finish leaves them to the profilers (or, for a pod that never starts, to the Job's
// deadline and TTL).
func (h *Handler) claimLater(key types.NamespacedName, uid types.UID, jobName string, gen int64) {
	ctx := h.Background
	if ctx == nil {
		ctx = context.Background()
	}
	log := logf.Log.WithName("claim").WithValues("dgdr", key, "uid", uid, "job", jobName, "generation", gen)
	go func() {
		_, _, err := lifecycle.Claim(ctx, h.Client, key, uid, jobName, lifecycle.ClaimOptions{Wait: h.ClaimWait, Poll: claimPoll, Generation: gen, Log: log})
		switch {
		case err == nil, errors.Is(err, lifecycle.ErrNotAdmitted), lifecycle.IsSuperseded(err):
		case ctx.Err() != nil:
			log.Info("stopped before the create's outcome was known; the profiler claims the Job when its pod starts")
		default:
			log.Error(err, "claiming the profiling Job; the profiler claims it when its pod starts")
		}
	}()
}

// settleAdaptLater settles, in the background, the adaptation CronJob name after the admission of generation
// gen of key with uid (lifecycle.SettleAdaptCronJob). Only the webhook settles it: a replica that stops
// first leaves an unowned CronJob whose runs find nothing to do (`dgdr-profiler drift` checks the UID) until
// the DGDR's next spec change settles it.
func (h *Handler) settleAdaptLater(key types.NamespacedName, uid types.UID, gen int64, name string) {
	ctx := h.Background
	if ctx == nil {
		ctx = context.Background()
	}
	log := logf.Log.WithName("claim").WithValues("dgdr", key, "uid", uid, "cronjob", name, "generation", gen)
	go func() {
		err := lifecycle.SettleAdaptCronJob(ctx, h.Client, key, uid, gen, name, lifecycle.ClaimOptions{Wait: h.ClaimWait, Poll: claimPoll, Log: log})
		if err != nil && ctx.Err() == nil {
			log.Error(err, "settling the adaptation CronJob")
		}
	}()
}
