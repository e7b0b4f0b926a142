package lifecycle

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// ErrNotAdmitted is returned by Claim when no DGDR of the Job's UID is stored: the profiling Job was made
// for a create that was refused after the webhook, or for a DGDR since deleted, and was deleted.
var ErrNotAdmitted = errors.New("the DGDR this profiling Job was made for is not stored")

// ClaimOptions tune Claim.
type ClaimOptions struct {
	// Wait bounds the wait for the DGDR to be stored [2m]: the Job is created while the DGDR is being
	// admitted, and a request can spend a while in later admission and storage.
	Wait time.Duration
	// Poll is the first interval between reads; it doubles up to 5s [1s].
	Poll time.Duration
	// Now is the clock [time.Now].
	Now func() time.Time
	// Generation is the run the caller profiles (the profiler's --generation), for a Job that does not
	// say (0: the Job's annotation, else whatever generation is stored).
	Generation int64
	Log        logr.Logger
}

const maxClaimPoll = 5 * time.Second

// Claim settles the profiling Job jobName made for generation g of DGDR key with UID uid (a create, g = 1,
// or a spec change), as soon as that request's outcome is known. The webhook calls it right after
// admission and the profiler when its pod starts (whichever comes first wins; the other finds it done):
//   - the DGDR of uid is stored at generation g with the spec the Job was made for (its inputs hash): it
//     becomes the Job's owner (no blockOwnerDeletion, which would need rights on the DGDR's finalizers), so
//     deleting the DGDR deletes the Job; the Jobs of older runs still going are cancelled (cancelOlderRuns);
//     Claim returns the DGDR and the Job;
//   - another DGDR of that name is stored, or none within Wait: that Job, and only that one (UID
//     precondition), is deleted, and Claim returns ErrNotAdmitted;
//   - the DGDR of uid is stored at a newer generation, or at g with another spec (the update this Job was
//     made for lost a race or was refused): the Job is deleted, and Claim returns ErrSuperseded.
//
// A stored generation older than g means the update is not stored yet: Claim waits for it as for a create.
// The Job gets no owner at birth because the garbage collector judges an owner that is not stored yet
// dangling and deletes the dependent. With uid empty (a profiler run outside a Job made by the webhook),
// Claim waits for any DGDR of the name and deletes nothing. A Job that does not exist is not an error
// (job nil): the profiler may run outside one.
func Claim(ctx context.Context, c client.Client, key types.NamespacedName, uid types.UID, jobName string, o ClaimOptions) (*v1alpha1.DynamoGraphDeploymentRequest, *batchv1.Job, error) {
	o.Wait = cmp.Or(o.Wait, 2*time.Minute)
	o.Poll = cmp.Or(o.Poll, time.Second)
	if o.Now == nil {
		o.Now = time.Now
	}
	var job *batchv1.Job
	if jobName != "" {
		job = &batchv1.Job{}
		switch err := c.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: jobName}, job); {
		case apierrors.IsNotFound(err):
			job = nil
		case err != nil:
			return nil, nil, fmt.Errorf("reading the profiling Job %s: %w", jobName, err)
		}
	}
	gen, inputs := o.Generation, ""
	if job != nil {
		gen, inputs = cmp.Or(v1alpha1.JobGeneration(job), gen), job.Annotations[v1alpha1.AnnotationInputsHash]
	}
	d := &v1alpha1.DynamoGraphDeploymentRequest{}
	deadline, poll := o.Now().Add(o.Wait), o.Poll
	for {
		err := c.Get(ctx, key, d)
		if err == nil && (uid == "" || d.UID == uid) {
			if gen == 0 || d.Generation == gen {
				break
			}
			if d.Generation > gen {
				return nil, nil, releaseRun(ctx, c, d, job, gen, o.Log)
			}
			// An older generation: the update this Job was made for is not stored yet.
		} else if err == nil {
			return nil, nil, releaseJob(ctx, c, key.Namespace, jobName, uid, o.Log,
				fmt.Sprintf("DGDR %s has UID %s, not %s (the create this Job was made for was refused, or the DGDR was deleted and created again)", key, d.UID, uid))
		} else if !apierrors.IsNotFound(err) {
			return nil, nil, fmt.Errorf("reading DGDR %s: %w", key, err)
		}
		if !o.Now().Before(deadline) {
			switch {
			case uid == "":
				return nil, nil, fmt.Errorf("DGDR %s did not appear within %s (its admission failed, or it was deleted); this Job has nothing to profile", key, o.Wait)
			case err == nil:
				return nil, nil, releaseJob(ctx, c, key.Namespace, jobName, uid, o.Log,
					fmt.Sprintf("generation %d of DGDR %s was not stored within %s (the update was refused after admission)", gen, key, o.Wait))
			}
			return nil, nil, releaseJob(ctx, c, key.Namespace, jobName, uid, o.Log,
				fmt.Sprintf("DGDR %s with UID %s was not stored within %s (its create was refused after admission, or it was deleted)", key, uid, o.Wait))
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(poll):
		}
		poll = min(2*poll, maxClaimPoll)
	}
	if inputs != "" && inputs != v1alpha1.InputsHash(&d.Spec) {
		return nil, nil, releaseRun(ctx, c, d, job, gen, o.Log)
	}
	if job == nil {
		return d, nil, nil
	}
	job, err := adoptJob(ctx, c, d, job, o.Log)
	if err != nil {
		return nil, nil, err
	}
	if gen > 1 {
		cancelOlderRuns(ctx, c, d, job, o.Log)
	}
	return d, job, nil
}

// releaseRun deletes the Job of run gen of d, superseded by the stored spec, and returns ErrSuperseded.
func releaseRun(ctx context.Context, c client.Client, d *v1alpha1.DynamoGraphDeploymentRequest, job *batchv1.Job, gen int64, log logr.Logger) error {
	why := fmt.Sprintf("DGDR %s is stored at generation %d with inputs %s; run %d is superseded", d.Name, d.Generation, v1alpha1.InputsHash(&d.Spec), gen)
	if job == nil {
		return fmt.Errorf("%w: %s", ErrSuperseded, why)
	}
	if err := releaseJob(ctx, c, d.Namespace, job.Name, d.UID, log, why); err != nil && !errors.Is(err, ErrNotAdmitted) {
		return err
	}
	return fmt.Errorf("%w: %s; its profiling Job %s is deleted", ErrSuperseded, why, job.Name)
}

// cancelOlderRuns deletes the profiling Jobs of d's older runs that are still going (labelled with d's
// name, made for d's UID at an older generation, not finished): background propagation, so their
// candidates (owned by their Job) go with them. The newer run's profiler records them Superseded when it
// starts (StartRun). Failures are logged: a superseded profiler also stops by itself at its next phase
// boundary (its status writes are refused).
func cancelOlderRuns(ctx context.Context, c client.Client, d *v1alpha1.DynamoGraphDeploymentRequest, current *batchv1.Job, log logr.Logger) {
	jobs := &batchv1.JobList{}
	if err := c.List(ctx, jobs, client.InNamespace(d.Namespace), client.MatchingLabels{v1alpha1.LabelDGDRName: d.Name}); err != nil {
		log.Error(err, "listing the Jobs of older runs to cancel them")
		return
	}
	gen := v1alpha1.JobGeneration(current)
	for i := range jobs.Items {
		job := &jobs.Items[i]
		if job.UID == current.UID || v1alpha1.JobDGDRUID(job) != d.UID || max(v1alpha1.JobGeneration(job), 1) >= gen ||
			jobFinished(job) || job.DeletionTimestamp != nil {
			continue
		}
		err := c.Delete(ctx, job, client.Preconditions{UID: &job.UID}, client.PropagationPolicy(metav1.DeletePropagationBackground))
		if err != nil && !apierrors.IsNotFound(err) {
			log.Error(err, "cancelling the Job of an older run", "job", job.Name)
			continue
		}
		log.Info("cancelled the profiling Job of a superseded run", "job", job.Name, "generation", v1alpha1.JobGeneration(job), "by", gen)
	}
}

// jobFinished reports whether the Job completed or failed (its logs are kept until its TTL).
func jobFinished(job *batchv1.Job) bool {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == "True" {
			return true
		}
	}
	return false
}

// adoptJob makes d the controller owner of job, which must have been made for d's UID (adopt).
func adoptJob(ctx context.Context, c client.Client, d *v1alpha1.DynamoGraphDeploymentRequest, job *batchv1.Job, log logr.Logger) (*batchv1.Job, error) {
	return adopt(ctx, c, d, job, "profiling Job", log)
}

// adopt makes d the controller owner of obj (what names it in messages), which must have been made for d's
// UID (its nvidia.com/dgdr-uid annotation, checked again after every re-read). Changing ownerReferences needs
// delete on obj where OwnerReferencesPermissionEnforcement is on; the roles of whoever adopts grant it. An
// object that cannot be adopted (forbidden) is left as it is, and logged.
func adopt[T any, PT interface {
	*T
	client.Object
}](ctx context.Context, c client.Client, d *v1alpha1.DynamoGraphDeploymentRequest, obj PT, what string, log logr.Logger) (PT, error) {
	for attempt := 0; ; attempt++ {
		if uid := types.UID(obj.GetAnnotations()[v1alpha1.AnnotationDGDRUID]); uid != "" && uid != d.UID {
			return nil, fmt.Errorf("%s %s belongs to DGDR %s with UID %s, but DGDR %s now has UID %s (deleted and created again); it is left alone",
				what, obj.GetName(), d.Name, uid, client.ObjectKeyFromObject(d), d.UID)
		}
		if owner := metav1.GetControllerOf(obj); owner != nil {
			if owner.UID != d.UID {
				return nil, fmt.Errorf("%s %s is controlled by %s %s (UID %s), not by DGDR %s", what, obj.GetName(), owner.Kind, owner.Name, owner.UID, d.Name)
			}
			return obj, nil
		}
		// Optimistic lock: the webhook and the profiler may adopt at once; the loser re-reads and finds it done.
		patch := client.MergeFromWithOptions(obj.DeepCopyObject().(PT), client.MergeFromWithOptimisticLock{})
		obj.SetOwnerReferences(append(obj.GetOwnerReferences(), metav1.OwnerReference{
			APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.Kind, Name: d.Name, UID: d.UID, Controller: ptr.To(true),
		}))
		err := c.Patch(ctx, obj, patch)
		switch {
		case err == nil:
			return obj, nil
		case apierrors.IsForbidden(err):
			log.Info("cannot make the DGDR the owner of its "+what+"; deleting the DGDR will leave it behind", "name", obj.GetName(), "error", err.Error())
			return obj, nil
		case apierrors.IsConflict(err) && attempt < 3:
			key := client.ObjectKeyFromObject(obj)
			obj = PT(new(T))
			if err := c.Get(ctx, key, obj); err != nil {
				return nil, fmt.Errorf("re-reading %s %s to make DGDR %s its owner: %w", what, key.Name, d.Name, err)
			}
		default:
			return nil, fmt.Errorf("making DGDR %s the owner of %s %s: %w", d.Name, what, obj.GetName(), err)
		}
	}
}

// releaseJob deletes the profiling Job made for uid, which no stored DGDR will own, and returns
// ErrNotAdmitted with why. Only that Job is deleted (its dgdr-uid annotation and a UID precondition).
func releaseJob(ctx context.Context, c client.Client, namespace, jobName string, uid types.UID, log logr.Logger, why string) error {
	if jobName == "" {
		return fmt.Errorf("%w: %s", ErrNotAdmitted, why)
	}
	job := &batchv1.Job{}
	switch err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: jobName}, job); {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%w: %s; Job %s is already gone", ErrNotAdmitted, why, jobName)
	case err != nil:
		return fmt.Errorf("%s; reading the profiling Job %s to delete it: %w", why, jobName, err)
	}
	if v1alpha1.JobDGDRUID(job) != uid {
		return fmt.Errorf("%w: %s; Job %s was made for UID %q and is left alone", ErrNotAdmitted, why, jobName, v1alpha1.JobDGDRUID(job))
	}
	err := c.Delete(ctx, job, client.Preconditions{UID: &job.UID}, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("%s; deleting the profiling Job %s: %w", why, jobName, err)
	}
	log.Info("deleted the profiling Job of a DGDR that is not stored", "job", jobName, "uid", uid, "why", why)
	return fmt.Errorf("%w: %s; its profiling Job %s is deleted", ErrNotAdmitted, why, jobName)
}
