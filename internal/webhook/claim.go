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
