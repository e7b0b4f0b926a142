package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// RunResultsConfigMapName is where run gen's full results are kept once a newer run took <name>-profiling.
func RunResultsConfigMapName(dgdrName string, gen int64) string {
	return fmt.Sprintf("%s-g%d", ResultsConfigMapName(dgdrName), gen)
}

// resultsGeneration is the run whose results cm holds: its nvidia.com/dgdr-generation annotation, or, for
// one written before the annotation, the run whose record points at it; 0 when unknown.
func resultsGeneration(d *v1alpha1.DynamoGraphDeploymentRequest, cm *corev1.ConfigMap) int64 {
	if g, err := strconv.ParseInt(cm.Annotations[v1alpha1.AnnotationGeneration], 10, 64); err == nil && g > 0 {
		return g
	}
	for _, r := range d.Status.Runs {
		if r.ResultsConfigMap == cm.Name {
			return r.Generation
		}
	}
	return 0
}

// ownsResults reports whether cm is a results ConfigMap of d (its label and its controller reference).
func ownsResults(d *v1alpha1.DynamoGraphDeploymentRequest, cm *corev1.ConfigMap) bool {
	if cm.Labels[v1alpha1.LabelDGDRName] != d.Name {
		return false
	}
	ref := metav1.GetControllerOf(cm)
	return ref != nil && ref.UID == d.UID && ref.Kind == v1alpha1.Kind
}

// KeepRunResults runs when run ref.Generation is about to write <name>-profiling: the older run whose
// results are still there is copied to <name>-profiling-g<gen> and its record points at the copy; then
// the copies of runs older than the newest v1alpha1.KeptRunResults records are deleted and their records'
// pointers cleared. Every step can be repeated: a retried run finds the copy made and the pointers set.
func KeepRunResults(ctx context.Context, c client.Client, ref Ref) error {
	d := &v1alpha1.DynamoGraphDeploymentRequest{}
	if err := c.Get(ctx, ref.NamespacedName, d); err != nil {
		return fmt.Errorf("reading DGDR %s: %w", ref.NamespacedName, err)
	}
	if err := checkRef(ref, d); err != nil {
		return err
	}
	if err := copyRunResults(ctx, c, ref, d); err != nil {
		return err
	}
	return pruneRunResults(ctx, c, ref)
}

func copyRunResults(ctx context.Context, c client.Client, ref Ref, d *v1alpha1.DynamoGraphDeploymentRequest) error {
	cur := &corev1.ConfigMap{}
	switch err := c.Get(ctx, client.ObjectKey{Namespace: d.Namespace, Name: ResultsConfigMapName(d.Name)}, cur); {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("reading ConfigMap %s: %w", ResultsConfigMapName(d.Name), err)
	}
	gen := resultsGeneration(d, cur)
	// Nothing to keep: results of this run (a retry), of an unknown run, or of someone else.
	if gen == 0 || gen >= ref.Generation || !ownsResults(d, cur) || d.Status.Run(gen) == nil {
		return nil
	}
	cp := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name: RunResultsConfigMapName(d.Name, gen), Namespace: d.Namespace,
			Labels:          map[string]string{v1alpha1.LabelDGDRName: d.Name},
			Annotations:     map[string]string{v1alpha1.AnnotationGeneration: strconv.FormatInt(gen, 10)},
			OwnerReferences: resultsOwner(d),
		},
		// The same keys as <name>-profiling, so the copy is within the same size bounds.
		Data: cur.Data, BinaryData: cur.BinaryData,
	}
	if err := RetryTransient(ctx, func() error {
		return c.Create(ctx, cp, client.FieldOwner(v1alpha1.FieldManager))
	}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("keeping the results of run %d in ConfigMap %s: %w", gen, cp.Name, err)
	}
	_, err := UpdateStatus(ctx, c, ref.NamespacedName, func(d *v1alpha1.DynamoGraphDeploymentRequest) error {
		if err := checkRef(ref, d); err != nil {
			return err
		}
		r := d.Status.Run(gen)
		if r == nil || r.ResultsConfigMap == cp.Name {
			return errUnchanged
		}
		r.ResultsConfigMap = cp.Name
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return nil
	}
	return err
}

// pruneRunResults deletes the per-run copies of the records after the newest KeptRunResults (only a
// ConfigMap of that name, labelled for the DGDR and controlled by it), then clears their pointers.
func pruneRunResults(ctx context.Context, c client.Client, ref Ref) error {
	d := &v1alpha1.DynamoGraphDeploymentRequest{}
	if err := c.Get(ctx, ref.NamespacedName, d); err != nil {
		return fmt.Errorf("reading DGDR %s: %w", ref.NamespacedName, err)
	}
	gone := map[int64]string{}
	for i, r := range d.Status.Runs {
		if i < v1alpha1.KeptRunResults || r.ResultsConfigMap != RunResultsConfigMapName(d.Name, r.Generation) {
			continue
		}
		// One not ours is left alone, and the record no longer points at it.
		if _, err := deleteResultsCopy(ctx, c, d, r.ResultsConfigMap); err != nil {
			return err
		}
		gone[r.Generation] = r.ResultsConfigMap
	}
	if len(gone) == 0 {
		return nil
	}
	_, err := UpdateStatus(ctx, c, ref.NamespacedName, func(d *v1alpha1.DynamoGraphDeploymentRequest) error {
		if err := checkRef(ref, d); err != nil {
			return err
		}
		for i := range d.Status.Runs {
			if r := &d.Status.Runs[i]; gone[r.Generation] != "" && r.ResultsConfigMap == gone[r.Generation] {
				r.ResultsConfigMap = ""
			}
		}
		return nil
	})
	return err
}

// deleteResultsCopy deletes ConfigMap name if it is a results ConfigMap of d (label and controller
// reference; UID precondition), and reports whether it did.
func deleteResultsCopy(ctx context.Context, c client.Client, d *v1alpha1.DynamoGraphDeploymentRequest, name string) (bool, error) {
	cm := &corev1.ConfigMap{}
	err := c.Get(ctx, client.ObjectKey{Namespace: d.Namespace, Name: name}, cm)
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("reading ConfigMap %s: %w", name, err)
	case !ownsResults(d, cm):
		return false, nil
	}
	if err := c.Delete(ctx, cm, client.Preconditions{UID: &cm.UID}); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("deleting the results ConfigMap %s: %w", name, err)
	}
	return true, nil
}

// DeleteRunResults deletes the per-run copies d's records point at (`kubectl dgdr delete`; the garbage
// collector would remove them with the DGDR too, as it owns them) and returns the names deleted.
func DeleteRunResults(ctx context.Context, c client.Client, d *v1alpha1.DynamoGraphDeploymentRequest) ([]string, error) {
	var deleted []string
	for _, r := range d.Status.Runs {
		if r.ResultsConfigMap != RunResultsConfigMapName(d.Name, r.Generation) {
			continue
		}
		ok, err := deleteResultsCopy(ctx, c, d, r.ResultsConfigMap)
		if err != nil {
			return deleted, err
		}
		if ok {
			deleted = append(deleted, r.ResultsConfigMap)
		}
	}
	return deleted, nil
}

// ErrRunResultsGone says a run's full results are no longer kept (only the newest KeptRunResults runs keep theirs).
var ErrRunResultsGone = errors.New("the run's full results are no longer kept")

// GetRunResults reads the ConfigMap that holds run gen's full results, as its record says.
func GetRunResults(ctx context.Context, c client.Reader, d *v1alpha1.DynamoGraphDeploymentRequest, gen int64) (*corev1.ConfigMap, error) {
	r := d.Status.Run(gen)
	if r == nil {
		return nil, fmt.Errorf("DGDR %s has no run %d", d.Name, gen)
	}
	if r.ResultsConfigMap == "" {
		return nil, fmt.Errorf("run %d of DGDR %s: %w", gen, d.Name, ErrRunResultsGone)
	}
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: d.Namespace, Name: r.ResultsConfigMap}, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("run %d of DGDR %s: ConfigMap %s: %w", gen, d.Name, r.ResultsConfigMap, ErrRunResultsGone)
		}
		return nil, fmt.Errorf("reading ConfigMap %s: %w", r.ResultsConfigMap, err)
	}
	if !ownsResults(d, cm) || resultsGeneration(d, cm) != gen {
		return nil, fmt.Errorf("run %d of DGDR %s: ConfigMap %s does not hold this run's results: %w", gen, d.Name, cm.Name, ErrRunResultsGone)
	}
	return cm, nil
}
