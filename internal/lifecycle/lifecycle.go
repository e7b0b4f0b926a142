package lifecycle

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// DGDGroupVersionKind is the DGD version dgdr generates by default (the CRD's storage version).
var DGDGroupVersionKind = schema.GroupVersionKind{Group: "nvidia.com", Version: "v1beta1", Kind: "DynamoGraphDeployment"}

// DGDCRDName is the CustomResourceDefinition that must exist before a DGD can be applied.
const DGDCRDName = "dynamographdeployments.nvidia.com"

// GetDGDCRD reads only the metadata of the DGD CRD, from the API server's watch cache: its schema is
// megabytes (every pod template field), reading it whole from etcd took ~80 ms of each admission, and
// callers only ask whether it exists. The error is the API server's (NotFound when Dynamo is not installed).
func GetDGDCRD(ctx context.Context, c client.Reader) error {
	crd := &metav1.PartialObjectMetadata{}
	crd.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
	return c.Get(ctx, types.NamespacedName{Name: DGDCRDName}, crd, &client.GetOptions{Raw: &metav1.GetOptions{ResourceVersion: "0"}})
}

// UpdateStatus re-reads the DGDR, applies mutate to it and writes its status subresource, retrying on
// conflicts so that concurrent writers (the profiler and the plugin) never lose each other's changes.
// It returns the object as stored. status.observedGeneration is the generation the phase describes: set
// by StartRun, left alone here (a spec change must not look observed before its run starts); a status
// written without runs (a DGDR profiled before run records existed) gets the stored generation.
func UpdateStatus(ctx context.Context, c client.Client, key types.NamespacedName, mutate func(*v1alpha1.DynamoGraphDeploymentRequest) error) (*v1alpha1.DynamoGraphDeploymentRequest, error) {
	d := &v1alpha1.DynamoGraphDeploymentRequest{}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx, key, d); err != nil {
			return err
		}
		if err := mutate(d); err != nil {
			return err
		}
		if d.Status.ObservedGeneration == 0 {
			d.Status.ObservedGeneration = d.Generation
		}
		return c.Status().Update(ctx, d)
	})
	if err != nil {
		return nil, fmt.Errorf("updating the status of DGDR %s: %w", key, err)
	}
	return d, nil
}

// SetCondition records a condition on the DGDR (replacing one of the same type).
func SetCondition(d *v1alpha1.DynamoGraphDeploymentRequest, condType string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&d.Status.Conditions, metav1.Condition{
		Type:               condType,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: cmp.Or(d.Status.ObservedGeneration, d.Generation),
	})
}

// ApplyOptions modify ApplyDGD.
type ApplyOptions struct {
	// Force takes ownership of fields another manager set.
	Force bool
	// DryRun asks the server what it would store, and changes nothing.
	DryRun bool
}

// ApplyDGD creates or updates the DGD with server-side apply under the field manager "dgdr" and returns
// what the server stored (or would store). It records the hash of the stored spec in the annotation
// nvidia.com/dgdr-applied-spec-hash, so that a later promote notices edits made by anyone else.
func ApplyDGD(ctx context.Context, c client.Client, dgd *unstructured.Unstructured, o ApplyOptions) (*unstructured.Unstructured, error) {
	desired := dgd.DeepCopy()
	desired.SetManagedFields(nil)
	desired.SetResourceVersion("")
	// apply sends a copy: the client fills what it sends with the server's answer.
	apply := func(dryRun bool) (*unstructured.Unstructured, error) {
		obj := desired.DeepCopy()
		opts := []client.ApplyOption{client.FieldOwner(v1alpha1.FieldManager)}
		if o.Force {
			opts = append(opts, client.ForceOwnership)
		}
		if dryRun {
			opts = append(opts, client.DryRunAll)
		}
		err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), opts...)
		if meta.IsNoMatchError(err) {
			return nil, fmt.Errorf("applying DGD %s: the DynamoGraphDeployment CRD is not installed (install the Dynamo operator): %w", obj.GetName(), err)
		}
		if err != nil {
			return nil, fmt.Errorf("applying DGD %s: %w", obj.GetName(), err)
		}
		return obj, nil
	}
	// The server defaults fields, so the hash is of what a dry run says it would store.
	stored, err := apply(true)
	if err != nil || o.DryRun {
		return stored, err
	}
	ann := desired.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[v1alpha1.AnnotationAppliedSpecHash] = SpecHash(stored)
	desired.SetAnnotations(ann)
	return apply(false)
}

// SpecHash fingerprints a DGD's spec (encoding/json sorts map keys, so equal specs hash equally).
func SpecHash(u *unstructured.Unstructured) string {
	spec, _, _ := unstructured.NestedFieldNoCopy(u.Object, "spec")
	data, err := json.Marshal(spec)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// DGDState is what dgdr reads of a deployed DGD.
type DGDState struct {
	Found bool
	Ready bool
	// Failed is true when the Dynamo operator reports the deployment failed (state "failed"): it will not
	// become ready without a change.
	Failed            bool
	Replicas          int32
	AvailableReplicas int32
	// Message says why it is not ready (the DGD's state or Ready condition message).
	Message string
}

// GetDGDState reads the DGD's readiness: state "successful" or a Ready condition that is True, with the
// replicas summed over its components (v1beta1 status.components, v1alpha1 status.services).
func GetDGDState(ctx context.Context, c client.Client, namespace, name string) (DGDState, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(DGDGroupVersionKind)
	if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, u); err != nil {
		if apierrors.IsNotFound(err) {
			return DGDState{Message: fmt.Sprintf("DGD %s/%s does not exist", namespace, name)}, nil
		}
		return DGDState{}, fmt.Errorf("reading DGD %s/%s: %w", namespace, name, err)
	}
	return ReadDGDState(u), nil
}

// ReadDGDState interprets a DGD object's status.
func ReadDGDState(u *unstructured.Unstructured) DGDState {
	st := DGDState{Found: true}
	state, _, _ := unstructured.NestedString(u.Object, "status", "state")
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	readyCond := ""
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Ready" {
			readyCond, _ = m["status"].(string)
			if msg, _ := m["message"].(string); msg != "" {
				st.Message = msg
			}
		}
	}
	st.Ready = state == "successful" || readyCond == string(metav1.ConditionTrue)
	st.Failed = state == "failed"
	if st.Message == "" {
		if state == "" {
			st.Message = "the Dynamo operator has not reported a state yet"
		} else {
			st.Message = "state " + state
		}
	}
	for _, key := range []string{"components", "services"} {
		comps, _, _ := unstructured.NestedMap(u.Object, "status", key)
		for _, v := range comps {
			m, _ := v.(map[string]any)
			st.Replicas += int32(asInt(m["replicas"]))
			// Deployments report availableReplicas; Grove PodCliques only readyReplicas.
			if v, ok := m["availableReplicas"]; ok {
				st.AvailableReplicas += int32(asInt(v))
			} else {
				st.AvailableReplicas += int32(asInt(m["readyReplicas"]))
			}
		}
	}
	return st
}

func asInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	case int:
		return int64(n)
	}
	return 0
}
