package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// ApplyBackoff paces the retries of a transient apply error: about a minute and a half in all.
var ApplyBackoff = wait.Backoff{Steps: 7, Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Cap: 30 * time.Second}

// IsTransient reports whether an API error may go away by itself (the server busy or restarting, a
// timeout, rate limiting, an optimistic-lock conflict), as opposed to one the request must change for
// (validation, forbidden, a missing CRD, a server-side apply field conflict).
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	if apierrors.IsConflict(err) {
		// A server-side apply conflict names the fields and their managers: another writer, not a race.
		var se apierrors.APIStatus
		if errors.As(err, &se) && se.Status().Details != nil {
			for _, c := range se.Status().Details.Causes {
				if c.Type == metav1.CauseTypeFieldManagerConflict {
					return false
				}
			}
		}
		return true
	}
	if apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsUnexpectedServerError(err) {
		return true
	}
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		return se.Status().Code >= 500
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled)
}

// RetryTransient runs fn until it succeeds, fails for good, or ApplyBackoff is spent (then the last
// transient error is returned). ctx ends it early.
func RetryTransient(ctx context.Context, fn func() error) error {
	return retry.OnError(ApplyBackoff, func(err error) bool { return ctx.Err() == nil && IsTransient(err) }, fn)
}

// OwnerError refuses to apply over a DGD that is not the DGDR's to change.
type OwnerError struct {
	Name string
	// Msg says whose it is; Hint what the user may do.
	Msg, Hint string
	// Edited: the DGD is this DGDR's, but its spec changed since dgdr applied it (edited by hand).
	Edited bool
}

func (e *OwnerError) Error() string { return e.Msg }

// IsOwnerError reports whether err is a refusal to touch another's DGD.
func IsOwnerError(err error) bool {
	var oe *OwnerError
	return errors.As(err, &oe)
}

// CheckOwner refuses a DGD that dgdr did not apply, one of another DGDR, or one whose spec changed since
// dgdr applied it (the annotation holds the hash of the spec dgdr applied).
func CheckOwner(live *unstructured.Unstructured, d *v1alpha1.DynamoGraphDeploymentRequest) error {
	name := live.GetName()
	force := "rerun with --force to overwrite it"
	if owner, ok := live.GetLabels()[v1alpha1.LabelDGDRName]; ok && owner != d.Name {
		return &OwnerError{Name: name, Msg: fmt.Sprintf("DGD %s belongs to DGDR %s", name, owner), Hint: force + ", or set another name in spec.overrides.dgd"}
	}
	managers := otherManagers(live)
	hash, ok := live.GetAnnotations()[v1alpha1.AnnotationAppliedSpecHash]
	if !ok {
		if !slices.Contains(allManagers(live), v1alpha1.FieldManager) {
			return &OwnerError{Name: name, Msg: fmt.Sprintf("DGD %s exists and was not applied by dgdr (managers: %s)", name, strings.Join(managers, ", ")), Hint: force}
		}
		return nil // applied by the profiler: the server-side apply conflict check covers it
	}
	if hash != SpecHash(live) {
		by := "another client"
		if len(managers) > 0 {
			by = strings.Join(managers, ", ")
		}
		return &OwnerError{Name: name, Edited: true, Msg: fmt.Sprintf("DGD %s was changed since dgdr applied it (by %s)", name, by),
			Hint: fmt.Sprintf("keep iterating on the DGD itself (`kubectl dgdr export %s` shows what dgdr would apply), or %s", d.Name, force)}
	}
	return nil
}

func allManagers(u *unstructured.Unstructured) []string {
	var out []string
	for _, m := range u.GetManagedFields() {
		if !slices.Contains(out, m.Manager) {
			out = append(out, m.Manager)
		}
	}
	return out
}

// otherManagers are the field managers other than dgdr that wrote the DGD's spec or metadata (the Dynamo
// operator's status writes do not count).
func otherManagers(u *unstructured.Unstructured) []string {
	var out []string
	for _, m := range u.GetManagedFields() {
		if m.Manager == v1alpha1.FieldManager || m.Subresource == "status" || slices.Contains(out, m.Manager) {
			continue
		}
		out = append(out, m.Manager)
	}
	return out
}

// GetDGD reads a DGD; nil and no error when there is none.
func GetDGD(ctx context.Context, c client.Reader, namespace, name string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(DGDGroupVersionKind)
	err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, u)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading DGD %s: %w", name, err)
	}
	return u, nil
}

// LabelDGD puts a DGDR's DGD in its namespace with the label that finds it from the DGDR (kept even when
// a patch dropped it).
func LabelDGD(u *unstructured.Unstructured, d *v1alpha1.DynamoGraphDeploymentRequest) {
	labels := u.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[v1alpha1.LabelDGDRName] = d.Name
	u.SetLabels(labels)
	u.SetNamespace(d.Namespace)
}

// SelectedOptions modify ApplySelected.
type SelectedOptions struct {
	// Force applies over a DGD someone else changed, taking over the fields.
	Force bool
	// DryRun asks the server what it would store; nothing changes and the DGDR is not recorded.
	DryRun bool
	// Promoted names the point a user promoted, for the DGDGenerated condition ("" for autoApply).
	Promoted string
}

// Applied is what ApplySelected did.
type Applied struct {
	// Live is the DGD before (nil when there was none); Stored what the server stored or would store.
	Live, Stored *unstructured.Unstructured
	// Changed is false when the stored spec equals the live one.
	Changed bool
	// DGDR is as recorded (nil on a dry run).
	DGDR *v1alpha1.DynamoGraphDeploymentRequest
}

// ApplySelected is the one apply path of a DGDR's DGD, for autoApply (the profiler), promote (the
// plugin) and the UI: it labels the DGD as the DGDR's, refuses one that is another's (CheckOwner,
// unless forced), applies it with server-side apply, retrying transient errors, and records the DGDR
// Deploying (unless nothing changed and it is Deployed already), with the diff from the previous DGD in
// the record of the run the status describes. A later run's DGD is so updated in place.
func ApplySelected(ctx context.Context, c client.Client, d *v1alpha1.DynamoGraphDeploymentRequest, desired *unstructured.Unstructured, o SelectedOptions) (*Applied, error) {
	desired = desired.DeepCopy()
	LabelDGD(desired, d)
	name := desired.GetName()
	if !Legal(d.Status.Phase, v1alpha1.PhaseDeploying) {
		return nil, &TransitionError{Name: d.Name, From: d.Status.Phase, To: v1alpha1.PhaseDeploying}
	}

	out := &Applied{}
	err := RetryTransient(ctx, func() error {
		var err error
		if out.Live, err = GetDGD(ctx, c, d.Namespace, name); err != nil {
			return err
		}
		if out.Live != nil && !o.Force {
			if err := CheckOwner(out.Live, d); err != nil {
				return err
			}
		}
		out.Stored, err = ApplyDGD(ctx, c, desired, ApplyOptions{Force: o.Force, DryRun: o.DryRun})
		return err
	})
	if err != nil {
		return nil, err
	}
	out.Changed = out.Live == nil || SpecHash(out.Live) != SpecHash(out.Stored)
	if o.DryRun {
		return out, nil
	}
	if !out.Changed && d.Status.Phase == v1alpha1.PhaseDeployed && d.Status.DGDName == name {
		out.DGDR = d
		return out, nil
	}
	diff, err := DGDDiff(out.Live, out.Stored)
	if err != nil {
		return out, fmt.Errorf("the DGD %s was applied, but its diff could not be rendered: %w", name, err)
	}
	rec := &v1alpha1.RunApplied{DGDName: name, Time: ptr.To(metav1.Now()), By: "autoApply"}
	switch {
	case o.Force:
		rec.By = "promote --force"
	case o.Promoted != "":
		rec.By = "promote"
	}
	rec.Diff, rec.DiffTruncated = BoundDiff(diff, v1alpha1.MaxDGDDiff)
	err = RetryTransient(ctx, func() error {
		var err error
		out.DGDR, err = MarkDeploying(ctx, c, RefOf(d), name, o.Promoted, rec)
		return err
	})
	if err != nil {
		return out, fmt.Errorf("the DGD %s was applied, but recording it in DGDR %s failed: %w", name, d.Name, err)
	}
	return out, nil
}
