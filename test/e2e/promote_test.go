package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// promoteDelete is docs/plugin.md's promote and delete on a real cluster: a DGDR profiled without
// autoApply stops at Ready with no DGD; `promote --wait` applies the selected DGD with server-side apply as
// field manager dgdr, the stand-in makes it ready and the DGDR is Deployed; promoting again changes
// nothing. `delete --wait` removes the DGDR, its profiling Job and <name>-profiling and says the DGD is
// kept; after the garbage collector has run, nothing dgdr made is left in the namespace but the DGD,
// which still serves; and the same name can be created again at once.
func promoteDelete(t *testing.T, c *cluster, u *user, assets string) {
	began := time.Now()
	const ns, name = "promote", "promote"
	c.profilerNamespace(t, u.root, assets, ns, false)
	f := filepath.Join(t.TempDir(), "promote.yaml")
	must(t, os.WriteFile(f, []byte(`apiVersion: nvidia.com/v1alpha1
kind: DynamoGraphDeploymentRequest
metadata:
  name: `+name+`
spec:
  model: Qwen/Qwen3-32B
  backend: any
  image: nvcr.io/nvidia/ai-dynamo/profiler:1.0.0
  autoApply: false
`), 0o644), "writing the DGDR")
	stdout, stderr, err := u.dgdr(ns, "create", "-f", f, "--wait", "--timeout", "5m")
	t.Logf("kubectl dgdr create --wait (autoApply false):\n%s%s", stdout, stderr)
	if err != nil {
		t.Fatalf("create --wait: %v%s", err, c.podTrouble(t.Context(), ns))
	}
	key := types.NamespacedName{Namespace: ns, Name: name}
	d := &v1alpha1.DynamoGraphDeploymentRequest{}
	must(t, c.client.Get(t.Context(), key, d), "reading the DGDR")
	require.Equal(t, v1alpha1.PhaseReady, d.Status.Phase, "without autoApply profiling stops at Ready")
	assert.Empty(t, listDGDs(t, c, ns), "nothing deployed before promote")
	jobName := d.Status.ProfilingJobName
	require.NotEmpty(t, jobName)
	job := &batchv1.Job{}
	must(t, c.client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: jobName}, job), "reading the profiling Job")
	owner := metav1.GetControllerOf(job)
	require.NotNil(t, owner, "the DGDR owns its profiling Job")
	assert.Equal(t, d.UID, owner.UID)
	c.waitFor(t, "the profiling Job complete", time.Minute, func() (bool, error) {
		err := c.client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: jobName}, job)
		return err == nil && job.Status.Succeeded == 1, fmt.Errorf("succeeded %d, failed %d: %v", job.Status.Succeeded, job.Status.Failed, err)
	})
	cmName := name + v1alpha1.ProfilingConfigMapSuffix
	must(t, c.client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: cmName}, &corev1.ConfigMap{}), "reading the results ConfigMap")
	c.timed("promote: create --wait to Ready", began)

	// promote: the DGD is created (diff on stderr, kubectl's line on stdout) and becomes ready.
	step := time.Now()
	stdout, stderr, err = u.dgdr(ns, "promote", name, "--wait", "--timeout", "3m")
	t.Logf("kubectl dgdr promote %s --wait:\n%s%s", name, stdout, tailString(stderr, 8))
	if err != nil {
		t.Fatalf("promote --wait: %v: %s%s", err, stderr, c.podTrouble(t.Context(), ns))
	}
	must(t, c.client.Get(t.Context(), key, d), "reading the DGDR")
	dgdName := d.Status.DGDName
	require.NotEmpty(t, dgdName, "promote records status.dgdName")
	assert.Equal(t, "dynamographdeployment.nvidia.com/"+dgdName+" created\n", stdout)
	assert.True(t, strings.HasPrefix(stderr, "--- /dev/null\n+++ dgdr/"+dgdName+"\n"), "the diff against no live DGD comes first on stderr:\n%s", stderr)
	assert.Equal(t, v1alpha1.PhaseDeployed, d.Status.Phase)
	generated := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionDGDGenerated)
	if assert.NotNil(t, generated) {
		assert.Equal(t, metav1.ConditionTrue, generated.Status)
	}
	ready := meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionDeploymentReady)
	if assert.NotNil(t, ready) {
		assert.Equal(t, metav1.ConditionTrue, ready.Status)
	}

	dgd := getDGD(t, c, ns, dgdName)
	state, _, _ := unstructured.NestedString(dgd.Object, "status", "state")
	assert.Equal(t, "successful", state, "the stand-in reports the DGD ready")
	assert.Equal(t, name, dgd.GetLabels()[v1alpha1.LabelDGDRName])
	assert.NotEmpty(t, dgd.GetAnnotations()[v1alpha1.AnnotationAppliedSpecHash], "promote records the hash of what it applied")
	assert.Empty(t, dgd.GetOwnerReferences(), "the DGD lives on its own: the garbage collector must not take it with the DGDR")
	applied := false
	for _, m := range dgd.GetManagedFields() {
		applied = applied || (m.Manager == v1alpha1.FieldManager && m.Operation == metav1.ManagedFieldsOperationApply)
	}
	assert.True(t, applied, "the DGD is applied server-side by field manager %q: %+v", v1alpha1.FieldManager, dgd.GetManagedFields())
	c.timed("promote: promote --wait to Deployed", step)

	// Promoting the same point again changes nothing.
	stdout, stderr, err = u.dgdr(ns, "promote", name)
	require.NoError(t, err, stderr)
	assert.Equal(t, "dynamographdeployment.nvidia.com/"+dgdName+" unchanged\n", stdout)
	assert.Equal(t, dgd.GetResourceVersion(), getDGD(t, c, ns, dgdName).GetResourceVersion(), "an unchanged promote does not write the DGD")
	must(t, c.client.Get(t.Context(), key, d), "reading the DGDR")
	assert.Equal(t, v1alpha1.PhaseDeployed, d.Status.Phase, "an unchanged promote leaves the DGDR Deployed")

	// What delete must remove, seen by the same sweep that checks afterwards (so that check can fail):
	// the Job, its pod (the garbage collector's to remove) and the results ConfigMap.
	before := leftovers(t, c, ns, name, []types.UID{d.UID, job.UID}, dgdName)
	t.Logf("the DGDR's objects before delete: %s", strings.Join(before, ", "))
	assert.Contains(t, before, "job/"+jobName)
	assert.Contains(t, before, "configmap/"+cmName)
	assert.True(t, slices.ContainsFunc(before, func(s string) bool { return strings.HasPrefix(s, "pod/"+jobName+"-") }), "the profiling Job's pod: %v", before)

	// delete: the DGDR, its Job and its results go; the DGD stays and the command says how to delete it.
	step = time.Now()
	stdout, stderr, err = u.dgdr(ns, "delete", name, "--wait")
	t.Logf("kubectl dgdr delete %s --wait:\n%s%s", name, stdout, stderr)
	require.NoError(t, err, stderr)
	assert.Equal(t, "job.batch/"+jobName+" deleted\n"+
		"configmap/"+cmName+" deleted\n"+
		"dynamographdeploymentrequest.nvidia.com/"+name+" deleted\n", stdout)
	assert.Equal(t, "The DGD "+dgdName+" is kept and keeps serving; delete it with `kubectl delete dynamographdeployment "+dgdName+" -n "+ns+"`\n", stderr)
	if err := c.client.Get(t.Context(), key, &v1alpha1.DynamoGraphDeploymentRequest{}); !apierrors.IsNotFound(err) {
		t.Errorf("the DGDR after delete --wait: want NotFound, got %v", err)
	}

	// The garbage collector removes the Job's pods; then nothing that dgdr made is left but the DGD.
	c.waitFor(t, "nothing of the DGDR left in "+ns, time.Minute, func() (bool, error) {
		left := leftovers(t, c, ns, name, []types.UID{d.UID, job.UID}, dgdName)
		return len(left) == 0, fmt.Errorf("left: %s", strings.Join(left, ", "))
	})
	kept := getDGD(t, c, ns, dgdName)
	assert.Nil(t, kept.GetDeletionTimestamp(), "the DGD is not being deleted")
	state, _, _ = unstructured.NestedString(kept.Object, "status", "state")
	assert.Equal(t, "successful", state, "the DGD still serves")
	deps := &appsv1.DeploymentList{}
	must(t, c.client.List(t.Context(), deps, client.InNamespace(ns), client.MatchingLabels{standInLabel: dgdName}), "listing the DGD's Deployments")
	require.NotEmpty(t, deps.Items, "the DGD's workers")
	for _, dep := range deps.Items {
		assert.Equal(t, *dep.Spec.Replicas, dep.Status.ReadyReplicas, "deployment %s still ready", dep.Name)
	}
	c.timed("promote: delete --wait, GC done", step)

	// The same name again, at once (docs/plugin.md): a new DGDR with a Job of its own.
	step = time.Now()
	stdout, stderr, err = u.dgdr(ns, "create", "-f", f, "--wait", "--timeout", "5m")
	t.Logf("kubectl dgdr create --wait again after delete:\n%s%s", stdout, stderr)
	if err != nil {
		t.Fatalf("create again: %v%s", err, c.podTrouble(t.Context(), ns))
	}
	again := &v1alpha1.DynamoGraphDeploymentRequest{}
	must(t, c.client.Get(t.Context(), key, again), "reading the new DGDR")
	assert.NotEqual(t, d.UID, again.UID)
	assert.Equal(t, v1alpha1.PhaseReady, again.Status.Phase)
	assert.NotEqual(t, jobName, again.Status.ProfilingJobName, "a new profiling Job")
	c.timed("promote: create again after delete", step)
	c.timed("promote: total", began)
}

func listDGDs(t *testing.T, c *cluster, ns string) []unstructured.Unstructured {
	dgds := &unstructured.UnstructuredList{}
	dgds.SetGroupVersionKind(dgdGVK.GroupVersion().WithKind("DynamoGraphDeploymentList"))
	must(t, c.client.List(t.Context(), dgds, client.InNamespace(ns)), "listing DGDs")
	return dgds.Items
}

func getDGD(t *testing.T, c *cluster, ns, name string) *unstructured.Unstructured {
	dgd := &unstructured.Unstructured{}
	dgd.SetGroupVersionKind(dgdGVK)
	must(t, c.client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, dgd), "reading DGD %s", name)
	return dgd
}

// leftovers lists, across every namespaced resource the API server serves, the objects in ns that belong
// to DGDR name: owned by one of owners (the DGDR, its Job) or labelled with the DGDR's name, except the
// DGD keep. Events are left out: they record what happened and expire on their own.
func leftovers(t *testing.T, c *cluster, ns, name string, owners []types.UID, keep string) []string {
	lists, err := c.clientset.Discovery().ServerPreferredNamespacedResources()
	must(t, err, "discovering the namespaced resources")
	dyn, err := dynamic.NewForConfig(c.config)
	must(t, err, "making a dynamic client")
	var left []string
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		must(t, err, "parsing %s", l.GroupVersion)
		for _, r := range l.APIResources {
			if !slices.Contains(r.Verbs, "list") || r.Name == "events" {
				continue
			}
			objs, err := dyn.Resource(gv.WithResource(r.Name)).Namespace(ns).List(t.Context(), metav1.ListOptions{})
			must(t, err, "listing %s in %s", r.Name, ns)
			for _, o := range objs.Items {
				if r.Kind == dgdGVK.Kind && o.GetName() == keep {
					continue
				}
				owned := o.GetLabels()[v1alpha1.LabelDGDRName] == name
				for _, ref := range o.GetOwnerReferences() {
					owned = owned || slices.Contains(owners, ref.UID)
				}
				if owned {
					left = append(left, strings.ToLower(r.Kind)+"/"+o.GetName())
				}
			}
		}
	}
	return left
}
