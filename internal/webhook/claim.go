package webhook

import (
	"context"
	"errors"
	"time"

	"github.com/go-logr/logr"
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
	log := logf.Log.WithName("claim").WithValues("dgdr", key, "uid", uid, "job", jobName, "generation", gen)
	h.later(log, "claiming the profiling Job; the profiler claims it when its pod starts", func(ctx context.Context) error {
		_, _, err := lifecycle.Claim(ctx, h.Client, key, uid, jobName, lifecycle.ClaimOptions{Wait: h.ClaimWait, Poll: claimPoll, Generation: gen, Log: log})
		return err
	})
}

// settleAdaptLater settles, in the background, the adaptation CronJob name after the admission of generation
// gen of key with uid (lifecycle.SettleAdaptCronJob). Only the webhook settles it: a replica that stops
// first leaves an unowned CronJob whose runs find nothing to do (`dgdr-profiler drift` checks the UID) until
// the DGDR's next spec change settles it.
func (h *Handler) settleAdaptLater(key types.NamespacedName, uid types.UID, gen int64, name string) {
	log := logf.Log.WithName("claim").WithValues("dgdr", key, "uid", uid, "cronjob", name, "generation", gen)
	h.later(log, "settling the adaptation CronJob", func(ctx context.Context) error {
		return lifecycle.SettleAdaptCronJob(ctx, h.Client, key, uid, gen, name, lifecycle.ClaimOptions{Wait: h.ClaimWait, Poll: claimPoll, Log: log})
	})
}

// later runs settle in the background on the server's lifetime (Background), logging an error as what
// failed; the outcomes a settle expects (the create was not stored, a newer run took over) are not errors.
func (h *Handler) later(log logr.Logger, what string, settle func(context.Context) error) {
	ctx := h.Background
	if ctx == nil {
		ctx = context.Background()
	}
	go func() {
		err := settle(ctx)
		switch {
		case err == nil, errors.Is(err, lifecycle.ErrNotAdmitted), lifecycle.IsSuperseded(err):
		case ctx.Err() != nil:
			log.Info("stopped before the outcome was known: " + what)
		default:
			log.Error(err, what)
		}
	}()
}
