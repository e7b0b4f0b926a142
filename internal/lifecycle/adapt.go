package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// SettleAdaptCronJob settles the adaptation CronJob name that the admission of generation gen of DGDR key
// (UID uid) created, updated or, for a change that removed spec.adaptation, left to remove. It waits, as
// Claim does, until that request's outcome is known (the DGDR of uid stored at gen or later, or not within
// Wait), then acts on what is stored, so that a refused request changes nothing for long:
//   - no DGDR of uid is stored (the create was refused, or the DGDR was deleted): the CronJob is deleted;
//   - the stored DGDR has no spec.adaptation: the CronJob is deleted, unless it was made for a newer
//     generation (an update in flight that sets spec.adaptation again settles it);
//   - otherwise the DGDR becomes the CronJob's owner (deleting the DGDR deletes it).
//
// Only a CronJob made for uid (its nvidia.com/dgdr-uid annotation) is touched, and deleted with a UID
// precondition. A CronJob already gone is not an error.
func SettleAdaptCronJob(ctx context.Context, c client.Client, key types.NamespacedName, uid types.UID, gen int64, name string, o ClaimOptions) error {
	o.Generation = gen
	if _, _, err := Claim(ctx, c, key, uid, "", o); err != nil && !errors.Is(err, ErrNotAdmitted) && !IsSuperseded(err) {
		return err
	}
	cj := &batchv1.CronJob{}
	switch err := c.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: name}, cj); {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("reading the adaptation CronJob %s: %w", name, err)
	}
	if types.UID(cj.Annotations[v1alpha1.AnnotationDGDRUID]) != uid {
		return nil
	}
	d := &v1alpha1.DynamoGraphDeploymentRequest{}
	err := c.Get(ctx, key, d)
	switch {
	case apierrors.IsNotFound(err) || err == nil && d.UID != uid:
		return deleteCronJob(ctx, c, cj, o, fmt.Sprintf("no DGDR %s with UID %s is stored", key, uid))
	case err != nil:
		return fmt.Errorf("reading DGDR %s: %w", key, err)
	case d.Spec.Adaptation == nil:
		if g, _ := strconv.ParseInt(cj.Annotations[v1alpha1.AnnotationGeneration], 10, 64); g > d.Generation {
			return nil
		}
		return deleteCronJob(ctx, c, cj, o, fmt.Sprintf("DGDR %s has no spec.adaptation at generation %d", key, d.Generation))
	}
	_, err = adopt(ctx, c, d, cj, "adaptation CronJob", o.Log)
	return err
}

func deleteCronJob(ctx context.Context, c client.Client, cj *batchv1.CronJob, o ClaimOptions, why string) error {
	err := c.Delete(ctx, cj, client.Preconditions{UID: &cj.UID}, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("%s; deleting the adaptation CronJob %s: %w", why, cj.Name, err)
	}
	o.Log.Info("deleted the adaptation CronJob", "cronjob", cj.Name, "why", why)
	return nil
}
