package webhook

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
)

const testProfilerImage = "ghcr.io/dgdr-dev/dgdr:v0.1.0-test"

// webhookUser is the identity of the webhook's ServiceAccount in manifests/: the handlers under test act
// as it, so the manifests' RBAC is exercised too.
var webhookUser = rest.ImpersonationConfig{
	UserName: "system:serviceaccount:dgdr-system:dgdr-webhook",
	Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:dgdr-system", "system:authenticated"},
}

// cluster is a real control plane with the webhook configurations of manifests/ installed and served
// by this process, and the webhook's RBAC from manifests/ applied.
type cluster struct {
	env     *testenv.Env
	handler *Handler // acting as the webhook's ServiceAccount
}

func startCluster(t testing.TB) *cluster {
	t.Helper()
	install := render(t, ".", nil)
	m, v := install.webhookConfigs(t)
	cl := &cluster{}
	cl.env = testenv.Start(t, testenv.Options{
		MutatingWebhooks:   []*admissionregistrationv1.MutatingWebhookConfiguration{m},
		ValidatingWebhooks: []*admissionregistrationv1.ValidatingWebhookConfiguration{v},
		Register: func(s webhook.Server, cfg *rest.Config, _ client.Client) {
			asWebhook := rest.CopyConfig(cfg)
			asWebhook.Impersonate = webhookUser
			asWebhook.QPS, asWebhook.Burst = ClientQPS, ClientBurst // as Run sets them
			c, err := client.New(asWebhook, client.Options{Scheme: lifecycle.Scheme()})
			require.NoError(t, err)
			cl.handler = &Handler{Client: c, DefaultImage: DefaultImage, ProfilerImage: testProfilerImage, Background: t.Context()}
			Register(s, cl.handler)
		},
	})
	// The webhook's namespace, ServiceAccount and RBAC exactly as the default install renders them.
	for _, u := range install {
		switch u.GetKind() {
		case "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding":
			require.NoError(t, cl.env.Client.Create(t.Context(), u.DeepCopy()), "creating %s %s", u.GetKind(), u.GetName())
		}
	}
	return cl
}

// namespace creates a namespace for one subtest, with the profiler ServiceAccount unless bare.
func (cl *cluster) namespace(t *testing.T, name string, bare bool) string {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, cl.env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}))
	if !bare {
		require.NoError(t, cl.env.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.ProfilerServiceAccount, Namespace: name}}))
	}
	return name
}

// warningRecorder keeps the admission warnings the API server returns.
type warningRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningRecorder) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

// create creates obj as the test's admin user and returns the warnings of that one request.
func (cl *cluster) create(t *testing.T, obj client.Object, opts ...client.CreateOption) ([]string, error) {
	t.Helper()
	rec := &warningRecorder{}
	cfg := rest.CopyConfig(cl.env.Config)
	cfg.WarningHandlerWithContext = rec
	c, err := client.New(cfg, client.Options{Scheme: cl.env.Scheme})
	require.NoError(t, err)
	err = c.Create(t.Context(), obj, opts...)
	return rec.msgs, err
}

func (cl *cluster) jobsFor(t *testing.T, ns, dgdrName string) []batchv1.Job {
	t.Helper()
	jobs := &batchv1.JobList{}
	// Filtered here, not by a label selector: some names under test are not valid label values.
	require.NoError(t, cl.env.Client.List(t.Context(), jobs, client.InNamespace(ns)))
	return slices.DeleteFunc(jobs.Items, func(j batchv1.Job) bool { return j.Labels[v1alpha1.LabelDGDRName] != dgdrName })
}

func (cl *cluster) kubectl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), testenv.Kubectl(t), append([]string{"--kubeconfig", cl.env.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func jobOverride(js string) func(*v1alpha1.DynamoGraphDeploymentRequest) {
	return func(d *v1alpha1.DynamoGraphDeploymentRequest) {
		d.Spec.Overrides = &v1alpha1.Overrides{ProfilingJob: &runtime.RawExtension{Raw: []byte(js)}}
	}
}

func newDGDR(ns, name string, mutate func(*v1alpha1.DynamoGraphDeploymentRequest)) *v1alpha1.DynamoGraphDeploymentRequest {
	d := &v1alpha1.DynamoGraphDeploymentRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       v1alpha1.DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-0.6B"},
	}
	if mutate != nil {
		mutate(d)
	}
	return d
}

// causes returns the field paths of a 422, failing the test when err is not one.
func causes(t *testing.T, err error) []string {
	t.Helper()
	require.Error(t, err)
	require.True(t, apierrors.IsInvalid(err), "expected a 422 Invalid, got %v", err)
	var fields []string
	for _, c := range err.(apierrors.APIStatus).Status().Details.Causes {
		// The CRD's schema adds a field-less note that CEL rules were skipped; it names no field.
		if c.Field != "<nil>" {
			fields = append(fields, c.Field)
		}
	}
	return fields
}

// TestAdmission runs the admission behaviour against a real API server, in order: the last subtests
// remove the DGD CRD and stop the webhook.
func TestAdmission(t *testing.T) {
	cl := startCluster(t)
	c := cl.env.Client

	t.Run("defaults are applied and stored", func(t *testing.T) {
		ns := cl.namespace(t, "defaults", false)
		_, err := cl.create(t, newDGDR(ns, "minimal", nil))
		require.NoError(t, err)
		_, err = cl.create(t, newDGDR(ns, "auto", func(d *v1alpha1.DynamoGraphDeploymentRequest) { d.Spec.Backend = v1alpha1.BackendAuto }))
		require.NoError(t, err)

		for _, name := range []string{"minimal", "auto"} {
			// Read back as plain JSON, to see what is stored, not what Go zero values would suggest.
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind(v1alpha1.Kind))
			require.NoError(t, c.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, u))
			spec, _, _ := unstructured.NestedMap(u.Object, "spec")
			assert.Equal(t, map[string]any{
				"model":             "Qwen/Qwen3-0.6B",
				"backend":           "any",
				"image":             DefaultImage,
				"searchStrategy":    "rapid",
				"workload":          map[string]any{"isl": int64(512), "osl": int64(128)},
				"sla":               map[string]any{"ttft": int64(100), "itl": int64(15)},
				"autoApply":         false,
				"enableAutoScaling": false,
			}, spec, name)
			assert.Empty(t, u.GetAnnotations(), "defaulting touches only spec")
		}
	})

	t.Run("generateName gets a name and a Job", func(t *testing.T) {
		ns := cl.namespace(t, "generated", false)
		d := newDGDR(ns, "", func(d *v1alpha1.DynamoGraphDeploymentRequest) { d.GenerateName = "gen-" })
		_, err := cl.create(t, d)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(d.Name, "gen-"), d.Name)
		assert.Len(t, cl.jobsFor(t, ns, d.Name), 1)
	})

	t.Run("one Job per DGDR with the expected contents", func(t *testing.T) {
		ns := cl.namespace(t, "jobs", false)
		pvc := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: "weights", Namespace: ns},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadOnlyMany},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("100Gi")}},
			},
		}
		require.NoError(t, c.Create(t.Context(), pvc))
		d := newDGDR(ns, "cached", func(d *v1alpha1.DynamoGraphDeploymentRequest) {
			d.Spec.SearchStrategy = v1alpha1.SearchThorough
			d.Spec.ModelCache = &v1alpha1.ModelCache{PVCName: "weights", PVCPath: "qwen3"}
			d.Spec.Overrides = &v1alpha1.Overrides{ProfilingJob: &runtime.RawExtension{Raw: []byte(`{"template":{"spec":{
				"nodeSelector":{"pool":"cpu"},
				"tolerations":[{"key":"dedicated","operator":"Exists","effect":"NoSchedule"}],
				"imagePullSecrets":[{"name":"pull"}],
				"containers":[{"name":"profiler","env":[{"name":"EXTRA","value":"1"}],"resources":{"limits":{"memory":"3Gi"}}}]}}}`)}}
		})
		_, err := cl.create(t, d)
		require.NoError(t, err)

		jobs := cl.jobsFor(t, ns, "cached")
		require.Len(t, jobs, 1)
		job := jobs[0]
		stored := &v1alpha1.DynamoGraphDeploymentRequest{}
		require.NoError(t, c.Get(t.Context(), client.ObjectKeyFromObject(d), stored))
		require.NotEmpty(t, stored.UID)
		assert.Equal(t, "cached-profile-"+string(stored.UID)[:5], job.Name)
		assert.Equal(t, string(stored.UID), job.Annotations[v1alpha1.AnnotationDGDRUID], "made for the stored DGDR's UID (assigned before validating admission)")
		// Created without an owner (the garbage collector would delete a Job whose owner is not stored yet),
		// then claimed by the webhook once the DGDR is stored.
		require.Eventually(t, func() bool {
			require.NoError(t, c.Get(t.Context(), client.ObjectKeyFromObject(&job), &job))
			owner := metav1.GetControllerOf(&job)
			return owner != nil && owner.UID == stored.UID && owner.BlockOwnerDeletion == nil
		}, 10*time.Second, 50*time.Millisecond, "the webhook makes the stored DGDR the Job's owner")
		assert.Len(t, job.Annotations[v1alpha1.AnnotationSpecHash], 64)
		assert.Equal(t, expand.ThoroughDeadlineSeconds, *job.Spec.ActiveDeadlineSeconds)
		pod := job.Spec.Template.Spec
		assert.Equal(t, v1alpha1.ProfilerServiceAccount, pod.ServiceAccountName)
		assert.Equal(t, map[string]string{"pool": "cpu"}, pod.NodeSelector)
		assert.Equal(t, []corev1.LocalObjectReference{{Name: "pull"}}, pod.ImagePullSecrets)
		assert.Len(t, pod.Tolerations, 1)
		assert.True(t, *pod.SecurityContext.RunAsNonRoot)
		require.Len(t, pod.Containers, 1)
		ctr := pod.Containers[0]
		assert.Contains(t, ctr.Env, corev1.EnvVar{Name: "EXTRA", Value: "1"}, "the profiler's env merges by name")
		assert.Equal(t, resource.MustParse("3Gi"), ctr.Resources.Limits[corev1.ResourceMemory])
		assert.Equal(t, resource.MustParse("1"), ctr.Resources.Requests[corev1.ResourceCPU], "the resources merge")
		assert.Equal(t, testProfilerImage, ctr.Image)
		assert.Equal(t, []string{expand.ProfilerBinary}, ctr.Command)
		assert.Equal(t, []string{"--namespace", ns, "--name", "cached", "--uid", string(stored.UID), "--generation", "1", "--job", job.Name}, ctr.Args)
		assert.Contains(t, ctr.Env, corev1.EnvVar{Name: expand.EnvModelPath, Value: "/models/qwen3"})
		assert.Contains(t, ctr.VolumeMounts, corev1.VolumeMount{Name: "model-cache", MountPath: expand.ModelCacheMountPath, ReadOnly: true})
		var claim *corev1.PersistentVolumeClaimVolumeSource
		for _, v := range pod.Volumes {
			if v.PersistentVolumeClaim != nil {
				claim = v.PersistentVolumeClaim
			}
		}
		require.NotNil(t, claim)
		assert.Equal(t, corev1.PersistentVolumeClaimVolumeSource{ClaimName: "weights", ReadOnly: true}, *claim)
	})

	t.Run("invalid specs are refused with a 422 naming each field", func(t *testing.T) {
		ns := cl.namespace(t, "invalid", false)
		tests := map[string]struct {
			mutate func(*v1alpha1.DynamoGraphDeploymentRequest)
			name   string
			fields []string
			msg    string // in the message as well
		}{
			"model format": {
				mutate: func(d *v1alpha1.DynamoGraphDeploymentRequest) { d.Spec.Model = "Qwen//Qwen3" },
				fields: []string{"spec.model"}, msg: "Hugging Face id",
			},
			"isl zero": {
				mutate: func(d *v1alpha1.DynamoGraphDeploymentRequest) {
					d.Spec.Workload = &v1alpha1.Workload{ISL: ptr.To[int32](0)}
				},
				fields: []string{"spec.workload.isl"}, msg: "1 to 1048576",
			},
			"osl too long": {
				mutate: func(d *v1alpha1.DynamoGraphDeploymentRequest) {
					d.Spec.Workload = &v1alpha1.Workload{OSL: ptr.To[int32](v1alpha1.MaxSequenceLength + 1)}
				},
				fields: []string{"spec.workload.osl"},
			},
			"ttft negative": {
				mutate: func(d *v1alpha1.DynamoGraphDeploymentRequest) { d.Spec.SLA = &v1alpha1.SLA{TTFT: ptr.To(-1.0)} },
				fields: []string{"spec.sla.ttft"}, msg: "greater than 0",
			},
			"itl an hour": {
				mutate: func(d *v1alpha1.DynamoGraphDeploymentRequest) { d.Spec.SLA = &v1alpha1.SLA{ITL: ptr.To(3_600_000.0)} },
				fields: []string{"spec.sla.itl"}, msg: "an hour",
			},
			"missing PVC": {
				mutate: func(d *v1alpha1.DynamoGraphDeploymentRequest) {
					d.Spec.ModelCache = &v1alpha1.ModelCache{PVCName: "no-such-claim"}
				},
				fields: []string{"spec.modelCache.pvcName"}, msg: `PersistentVolumeClaim "no-such-claim" does not exist in namespace "invalid"`,
			},
			"overrides.dgd not a DGD": {
				mutate: func(d *v1alpha1.DynamoGraphDeploymentRequest) {
					d.Spec.Overrides = &v1alpha1.Overrides{DGD: &runtime.RawExtension{Raw: []byte(`{"kind":"Deployment"}`)}}
				},
				fields: []string{"spec.overrides.dgd.kind"},
			},
			"overrides.profilingJob not a JobSpec": {
				mutate: func(d *v1alpha1.DynamoGraphDeploymentRequest) {
					d.Spec.Overrides = &v1alpha1.Overrides{ProfilingJob: &runtime.RawExtension{Raw: []byte(`{"templat":{}}`)}}
				},
				fields: []string{"spec.overrides.profilingJob.templat"}, msg: v1alpha1.JobOverrideAllowlist,
			},
			// Overrides that would escalate: the webhook creates the Job with its own rights.
			"overrides.profilingJob serviceAccountName": {
				mutate: jobOverride(`{"template":{"spec":{"serviceAccountName":"admin"}}}`),
				fields: []string{"spec.overrides.profilingJob.template.spec.serviceAccountName"}, msg: v1alpha1.JobOverrideAllowlist,
			},
			"overrides.profilingJob hostPath volume": {
				mutate: jobOverride(`{"template":{"spec":{"volumes":[{"name":"root","hostPath":{"path":"/"}}]}}}`),
				fields: []string{"spec.overrides.profilingJob.template.spec.volumes"}, msg: "scheduling and sizing",
			},
			"overrides.profilingJob privileged": {
				mutate: jobOverride(`{"template":{"spec":{"containers":[{"name":"profiler","securityContext":{"privileged":true}}]}}}`),
				fields: []string{"spec.overrides.profilingJob.template.spec.containers[0].securityContext"},
			},
			"overrides.profilingJob host namespaces": {
				mutate: jobOverride(`{"template":{"spec":{"hostNetwork":true,"hostPID":true,"hostIPC":true}}}`),
				fields: []string{"spec.overrides.profilingJob.template.spec.hostIPC", "spec.overrides.profilingJob.template.spec.hostNetwork", "spec.overrides.profilingJob.template.spec.hostPID"},
			},
			"overrides.profilingJob image and command": {
				mutate: jobOverride(`{"template":{"spec":{"containers":[{"name":"profiler","image":"evil","command":["sh"],"args":["-c","id"]}]}}}`),
				fields: []string{"spec.overrides.profilingJob.template.spec.containers[0].args", "spec.overrides.profilingJob.template.spec.containers[0].command", "spec.overrides.profilingJob.template.spec.containers[0].image"},
			},
			"overrides.profilingJob another container": {
				mutate: jobOverride(`{"template":{"spec":{"containers":[{"name":"sidecar","image":"evil"}],"initContainers":[{"name":"i","image":"evil"}]}}}`),
				fields: []string{"spec.overrides.profilingJob.template.spec.containers[0].name", "spec.overrides.profilingJob.template.spec.initContainers"}, msg: "only the profiler container",
			},
			"overrides.profilingJob pod securityContext and metadata": {
				mutate: jobOverride(`{"template":{"metadata":{"labels":{"a":"b"}},"spec":{"securityContext":{"runAsUser":0}}},"ttlSecondsAfterFinished":1}`),
				fields: []string{"spec.overrides.profilingJob.template.metadata", "spec.overrides.profilingJob.template.spec.securityContext", "spec.overrides.profilingJob.ttlSecondsAfterFinished"},
			},
			"overrides.profilingJob strategic-merge directives": {
				mutate: jobOverride(`{"template":{"spec":{"$patch":"replace","containers":[{"name":"profiler","$patch":"delete"}],"tolerations":[{"$patch":"replace"}]}}}`),
				fields: []string{"spec.overrides.profilingJob.template.spec.$patch", "spec.overrides.profilingJob.template.spec.containers[0].$patch", "spec.overrides.profilingJob.template.spec.tolerations[0].$patch"},
			},
			"overrides.profilingJob the API server refuses": {
				mutate: jobOverride(`{"template":{"spec":{"tolerations":[{"key":"a","operator":"Exists","value":"x"}],"priorityClassName":"Not_A_Name"}}}`),
				fields: []string{"spec.overrides.profilingJob.template.spec.priorityClassName",
					"spec.overrides.profilingJob.template.spec.tolerations[0].operator"}, msg: "the API server refuses the profiling Job",
			},
			// overrides.dgd that can never generate a DGD, refused now rather than after profiling.
			"overrides.dgd of the other apiVersion": {
				mutate: func(d *v1alpha1.DynamoGraphDeploymentRequest) {
					d.Spec.Overrides = &v1alpha1.Overrides{DGD: &runtime.RawExtension{Raw: []byte(`{"apiVersion":"nvidia.com/v1alpha1","spec":{"services":{"Frontend":{"replicas":2}}}}`)}}
				},
				fields: []string{"spec.overrides.dgd"}, msg: "write the patch for nvidia.com/v1beta1",
			},
			"overrides.dgd invalid name": {
				mutate: func(d *v1alpha1.DynamoGraphDeploymentRequest) {
					d.Spec.Overrides = &v1alpha1.Overrides{DGD: &runtime.RawExtension{Raw: []byte(`{"metadata":{"name":"Serving_DGD"}}`)}}
				},
				fields: []string{"spec.overrides.dgd"}, msg: "Serving_DGD",
			},
			"overrides.dgd name too long for the components": {
				mutate: func(d *v1alpha1.DynamoGraphDeploymentRequest) {
					d.Spec.Overrides = &v1alpha1.Overrides{DGD: &runtime.RawExtension{Raw: []byte(`{"metadata":{"name":"a-rather-long-deployment-name-x"}}`)}}
				},
				fields: []string{"spec.overrides.dgd"}, msg: "choose a shorter name",
			},
			"backend enum": {
				mutate: func(d *v1alpha1.DynamoGraphDeploymentRequest) { d.Spec.Backend = "tgi" },
				fields: []string{"spec.backend"}, msg: `"any", "sglang", "trtllm", "vllm"`,
			},
			"searchStrategy enum": {
				mutate: func(d *v1alpha1.DynamoGraphDeploymentRequest) { d.Spec.SearchStrategy = "fast" },
				fields: []string{"spec.searchStrategy"}, msg: `"rapid", "thorough"`,
			},
			"unknown gpuType": {
				mutate: func(d *v1alpha1.DynamoGraphDeploymentRequest) { d.Spec.Hardware = &v1alpha1.Hardware{GPUType: "h900"} },
				fields: []string{"spec.hardware.gpuType"}, msg: "h100_sxm",
			},
			"token Secret annotation that names no Secret": {
				mutate: func(d *v1alpha1.DynamoGraphDeploymentRequest) {
					d.Annotations = map[string]string{v1alpha1.AnnotationHFTokenSecret: "HF Token"}
				},
				fields: []string{"metadata.annotations[nvidia.com/dgdr-hf-token-secret]"}, msg: "HF_TOKEN",
			},
			"name too long for a label": {
				name:   strings.Repeat("n", 64),
				fields: []string{"metadata.name"}, msg: v1alpha1.LabelDGDRName,
			},
			// Everything the webhook checks, at once: one 422 lists every cause (enums are the CRD
			// schema's, which refuses before the webhook is asked).
			"every cause at once": {
				mutate: func(d *v1alpha1.DynamoGraphDeploymentRequest) {
					d.Spec.Model = "-bad"
					d.Spec.Workload = &v1alpha1.Workload{ISL: ptr.To[int32](0), OSL: ptr.To[int32](-5)}
					d.Spec.SLA = &v1alpha1.SLA{TTFT: ptr.To(0.0), ITL: ptr.To(5e6)}
					d.Spec.ModelCache = &v1alpha1.ModelCache{PVCName: "absent"}
					d.Spec.Overrides = &v1alpha1.Overrides{
						DGD:          &runtime.RawExtension{Raw: []byte(`{"apiVersion":"apps/v1"}`)},
						ProfilingJob: &runtime.RawExtension{Raw: []byte(`{"backoffLimit":"three"}`)},
					}
					d.Spec.Hardware = &v1alpha1.Hardware{GPUType: "tpu"}
				},
				fields: []string{"spec.model", "spec.workload.isl", "spec.workload.osl", "spec.sla.ttft", "spec.sla.itl",
					"spec.modelCache.pvcName", "spec.overrides.dgd.apiVersion", "spec.overrides.profilingJob", "spec.hardware.gpuType"},
			},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				dgdrName := tc.name
				if dgdrName == "" {
					dgdrName = "bad-" + strings.NewReplacer(" ", "-", ".", "-").Replace(strings.ToLower(name))
				}
				_, err := cl.create(t, newDGDR(ns, dgdrName, tc.mutate))
				assert.ElementsMatch(t, tc.fields, causes(t, err), "%v", err)
				assert.Contains(t, err.Error(), tc.msg)
				assert.Empty(t, cl.jobsFor(t, ns, dgdrName), "no Job for a refused DGDR")
			})
		}
	})

	t.Run("each spec change starts one run with one Job; metadata-only changes start none", func(t *testing.T) {
		ns := cl.namespace(t, "mutable", false)
		d := newDGDR(ns, "live", nil)
		_, err := cl.create(t, d)
		require.NoError(t, err)
		require.Len(t, cl.jobsFor(t, ns, "live"), 1)
		assert.Equal(t, expand.ProfilingJobName("live", d.UID), cl.jobsFor(t, ns, "live")[0].Name, "run 1 keeps the create's name")

		// Metadata only: no Job, no new generation.
		require.NoError(t, c.Get(t.Context(), client.ObjectKeyFromObject(d), d))
		d.Labels = map[string]string{"team": "a"}
		require.NoError(t, c.Update(t.Context(), d))
		assert.Equal(t, int64(1), d.Generation)
		assert.Len(t, cl.jobsFor(t, ns, "live"), 1)

		// Two spec changes: one Job each, named and annotated with their generation and inputs.
		for _, step := range []struct {
			gen  int64
			ttft float64
		}{{2, 50}, {3, 40}} {
			require.NoError(t, c.Get(t.Context(), client.ObjectKeyFromObject(d), d))
			d.Spec.SLA.TTFT = ptr.To(step.ttft)
			require.NoError(t, c.Update(t.Context(), d))
			require.Equal(t, step.gen, d.Generation)
			name := expand.RunJobName("live", d.UID, step.gen, v1alpha1.InputsHash(&d.Spec))
			job := &batchv1.Job{}
			require.NoError(t, c.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, job), "Job of run %d", step.gen)
			assert.Equal(t, strconv.FormatInt(step.gen, 10), job.Annotations[v1alpha1.AnnotationGeneration])
			assert.Equal(t, v1alpha1.InputsHash(&d.Spec), job.Annotations[v1alpha1.AnnotationInputsHash])
			assert.Contains(t, job.Spec.Template.Spec.Containers[0].Args, "--generation")
			// The claim adopts the new run's Job and cancels the older run's, still going.
			require.Eventually(t, func() bool {
				jobs := cl.jobsFor(t, ns, "live")
				return len(jobs) == 1 && jobs[0].Name == name && metav1.GetControllerOf(&jobs[0]) != nil
			}, 30*time.Second, 100*time.Millisecond, "only run %d's Job is left, owned by the DGDR", step.gen)
		}

		// A spec change is validated in full, as a create: refused with its field, and no Job.
		require.NoError(t, c.Get(t.Context(), client.ObjectKeyFromObject(d), d))
		d.Spec.SLA.TTFT = ptr.To(-1.0)
		err = c.Update(t.Context(), d)
		assert.Equal(t, []string{"spec.sla.ttft"}, causes(t, err))
		assert.Len(t, cl.jobsFor(t, ns, "live"), 1)

		// A dry-run update creates nothing.
		require.NoError(t, c.Get(t.Context(), client.ObjectKeyFromObject(d), d))
		d.Spec.SLA.TTFT = ptr.To(30.0)
		require.NoError(t, c.Update(t.Context(), d, client.DryRunAll))
		assert.Len(t, cl.jobsFor(t, ns, "live"), 1)

		// A bad skip annotation is refused on a metadata update.
		require.NoError(t, c.Get(t.Context(), client.ObjectKeyFromObject(d), d))
		d.Annotations = map[string]string{v1alpha1.AnnotationSkipCandidates: "1,x"}
		err = c.Update(t.Context(), d)
		assert.Equal(t, []string{"metadata.annotations[" + v1alpha1.AnnotationSkipCandidates + "]"}, causes(t, err))
	})

	t.Run("concurrent spec changes end with the last generation's Job", func(t *testing.T) {
		ns := cl.namespace(t, "concurrent", false)
		d := newDGDR(ns, "busy", nil)
		_, err := cl.create(t, d)
		require.NoError(t, err)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				assert.NoError(t, retry.RetryOnConflict(wait.Backoff{Steps: 100, Duration: 10 * time.Millisecond, Factor: 1.1, Jitter: 1}, func() error {
					cur := &v1alpha1.DynamoGraphDeploymentRequest{}
					if err := c.Get(t.Context(), client.ObjectKeyFromObject(d), cur); err != nil {
						return err
					}
					cur.Spec.SLA.ITL = ptr.To(float64(100 + i))
					return c.Update(t.Context(), cur)
				}))
			})
		}
		wg.Wait()
		require.NoError(t, c.Get(t.Context(), client.ObjectKeyFromObject(d), d))
		assert.Equal(t, int64(9), d.Generation, "8 changes, 8 generations")
		want := expand.RunJobName("busy", d.UID, d.Generation, v1alpha1.InputsHash(&d.Spec))
		require.Eventually(t, func() bool {
			jobs := cl.jobsFor(t, ns, "busy")
			return len(jobs) == 1 && jobs[0].Name == want && metav1.GetControllerOf(&jobs[0]) != nil
		}, 60*time.Second, 200*time.Millisecond, "only the last generation's Job is left, owned by the DGDR")
	})

	t.Run("server-side dry run creates no Job", func(t *testing.T) {
		ns := cl.namespace(t, "dryrun", false)
		d := newDGDR(ns, "trial", nil)
		_, err := cl.create(t, d, client.DryRunAll)
		require.NoError(t, err)
		assert.Equal(t, v1alpha1.BackendAny, d.Spec.Backend, "the dry-run answer is defaulted")
		assert.Empty(t, cl.jobsFor(t, ns, "trial"))
		err = c.Get(t.Context(), client.ObjectKeyFromObject(d), &v1alpha1.DynamoGraphDeploymentRequest{})
		assert.True(t, apierrors.IsNotFound(err), "nothing stored: %v", err)

		out, err := cl.kubectl(t, "create", "--dry-run=server", "-n", ns, "-f", filepath.Join(testenv.RepoRoot(t), "examples", "quick-start.yaml"))
		require.NoError(t, err, out)
		assert.Empty(t, cl.jobsFor(t, ns, "quick-start"))
	})

	t.Run("re-applying makes no second Job", func(t *testing.T) {
		ns := cl.namespace(t, "reapply", false)
		file := filepath.Join(testenv.RepoRoot(t), "examples", "exploratory.yaml")
		for _, args := range [][]string{
			{"apply", "-f", file},
			{"apply", "-f", file},
			{"apply", "--server-side", "--field-manager", v1alpha1.FieldManager, "-f", file},
			{"apply", "--server-side", "--field-manager", v1alpha1.FieldManager, "-f", file},
		} {
			out, err := cl.kubectl(t, append(args, "-n", ns)...)
			require.NoError(t, err, "kubectl %v: %s", args, out)
		}
		before := cl.jobsFor(t, ns, "exploratory")
		require.Len(t, before, 1)
		out, err := cl.kubectl(t, "create", "-n", ns, "-f", file)
		require.Error(t, err)
		assert.Contains(t, out, "AlreadyExists")
		// The duplicate got past the webhook (the API server finds the name taken only when storing it):
		// its own Job is deleted by the webhook's claim, and the stored DGDR's Job is left alone.
		require.Eventually(t, func() bool { return len(cl.jobsFor(t, ns, "exploratory")) == 1 }, 30*time.Second, 100*time.Millisecond)
		assert.Equal(t, before[0].UID, cl.jobsFor(t, ns, "exploratory")[0].UID)
	})

	t.Run("a retried validation finds its Job, and mutation has no side effect", func(t *testing.T) {
		ns := cl.namespace(t, "retry", false)
		d := newDGDR(ns, "twice", nil)
		req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{Operation: admissionv1.Create, Namespace: ns, Name: "twice",
			UserInfo: authenticationv1.UserInfo{Username: "dgdr-test-admin", Groups: []string{"system:masters"}}}}
		ctx := admission.NewContextWithRequest(t.Context(), req)
		require.NoError(t, cl.handler.Default(ctx, d))
		again := newDGDR(ns, "twice", nil)
		require.NoError(t, cl.handler.Default(ctx, again))
		require.NoError(t, cl.handler.Default(ctx, again), "reinvocation on the already mutated object")
		assert.Equal(t, d, again)
		assert.Empty(t, cl.jobsFor(t, ns, "twice"), "the mutating path creates nothing")

		d.UID = "11111111-2222-3333-4444-555555555555" // what the API server assigns before validation
		_, err := cl.handler.ValidateCreate(ctx, d.DeepCopy())
		require.NoError(t, err)
		_, err = cl.handler.ValidateCreate(ctx, d.DeepCopy())
		require.NoError(t, err, "a retry of the same request reuses its Job")
		jobs := cl.jobsFor(t, ns, "twice")
		require.Len(t, jobs, 1)
		assert.Equal(t, d.UID, v1alpha1.JobDGDRUID(&jobs[0]))

		d.UID = ""
		_, err = cl.handler.ValidateCreate(ctx, d.DeepCopy())
		require.Error(t, err, "without a UID the Job could not be claimed: refused, not leaked")
	})

	t.Run("Jobs of earlier creates of the name are never touched; a Job of this request's name not made for it is a 409", func(t *testing.T) {
		ns := cl.namespace(t, "clash", false)
		job := func(name string, annotations map[string]string) *batchv1.Job {
			j := &batchv1.Job{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{v1alpha1.LabelDGDRName: "taken"}, Annotations: annotations},
				Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "x", Image: "busybox"}},
				}}},
			}
			require.NoError(t, c.Create(t.Context(), j))
			return j
		}
		// Left-overs of earlier DGDRs named "taken" (another UID): the new create gets its own Job beside them.
		olds := []*batchv1.Job{job("taken-profile", nil), job("taken-profile-00000", map[string]string{v1alpha1.AnnotationDGDRUID: "00000000-gone"})}
		d := newDGDR(ns, "taken", nil)
		_, err := cl.create(t, d)
		require.NoError(t, err)
		for _, old := range olds {
			got := &batchv1.Job{}
			require.NoError(t, c.Get(t.Context(), client.ObjectKeyFromObject(old), got))
			assert.Equal(t, old.UID, got.UID, "%s is not the webhook's to touch", old.Name)
			assert.Equal(t, "busybox", got.Spec.Template.Spec.Containers[0].Image)
		}
		assert.Len(t, cl.jobsFor(t, ns, "taken"), 3)

		// A Job already holding the exact name of this request's Job (its name and UID) that was not made
		// for it: refused, not reused and not replaced.
		req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{Operation: admissionv1.Create, Namespace: ns, Name: "clashing",
			UserInfo: authenticationv1.UserInfo{Username: "dgdr-test-admin", Groups: []string{"system:masters"}}}}
		ctx := admission.NewContextWithRequest(t.Context(), req)
		clashing := newDGDR(ns, "clashing", nil)
		clashing.UID = "abcde000-0000-4000-8000-000000000000"
		squatter := job(expand.ProfilingJobName("clashing", clashing.UID), nil)
		_, err = cl.handler.ValidateCreate(ctx, clashing)
		require.True(t, apierrors.IsConflict(err), "%v", err)
		assert.Contains(t, err.Error(), "was not made for this request")
		got := &batchv1.Job{}
		require.NoError(t, c.Get(t.Context(), client.ObjectKeyFromObject(squatter), got))
		assert.Equal(t, squatter.UID, got.UID)
	})

	t.Run("delete and recreate with a changed spec gets a Job built from the new spec", func(t *testing.T) {
		// No garbage collector runs in this control plane: the first DGDR's Job outlives it, as it does
		// for a moment on a real cluster (TestGarbageCollection runs one).
		ns := cl.namespace(t, "recreate", false)
		first := newDGDR(ns, "again", nil)
		_, err := cl.create(t, first)
		require.NoError(t, err)
		before := cl.jobsFor(t, ns, "again")
		require.Len(t, before, 1)
		require.NoError(t, c.Delete(t.Context(), first))

		second := newDGDR(ns, "again", func(d *v1alpha1.DynamoGraphDeploymentRequest) { d.Spec.SearchStrategy = v1alpha1.SearchThorough })
		_, err = cl.create(t, second)
		require.NoError(t, err)
		after := &batchv1.Job{}
		require.NoError(t, c.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: expand.ProfilingJobName("again", second.UID)}, after))
		assert.NotEqual(t, before[0].Name, after.Name)
		assert.Equal(t, second.UID, v1alpha1.JobDGDRUID(after))
		assert.Equal(t, expand.ThoroughDeadlineSeconds, *after.Spec.ActiveDeadlineSeconds, "built from the new spec")
	})

	t.Run("an object refused by the API server before validating admission leaves no Job", func(t *testing.T) {
		// Metadata is validated after mutating admission and before validating admission: a Job made while
		// mutating (as before) leaked here.
		ns := cl.namespace(t, "badlabel", false)
		_, err := cl.create(t, newDGDR(ns, "labelled", func(d *v1alpha1.DynamoGraphDeploymentRequest) {
			d.Labels = map[string]string{"not a label key": "x"}
		}))
		require.True(t, apierrors.IsInvalid(err), "%v", err)
		assert.Empty(t, cl.jobsFor(t, ns, "labelled"))
	})

	t.Run("overrides.profilingJob only for users who may create Jobs themselves", func(t *testing.T) {
		ns := cl.namespace(t, "sar", false)
		grant := func(user string, rules ...rbacv1.PolicyRule) {
			require.NoError(t, c.Create(t.Context(), &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: user, Namespace: ns}, Rules: rules}))
			require.NoError(t, c.Create(t.Context(), &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: user, Namespace: ns},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: user},
				Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
			}))
		}
		dgdrs := rbacv1.PolicyRule{APIGroups: []string{"nvidia.com"}, Resources: []string{"dynamographdeploymentrequests"}, Verbs: []string{"create", "get"}}
		grant("alice", dgdrs)
		grant("bob", dgdrs, rbacv1.PolicyRule{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"create"}})
		as := func(user string) client.Client {
			cfg := rest.CopyConfig(cl.env.Config)
			cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:authenticated"}}
			uc, err := client.New(cfg, client.Options{Scheme: cl.env.Scheme})
			require.NoError(t, err)
			return uc
		}
		sized := jobOverride(`{"template":{"spec":{"nodeSelector":{"pool":"cpu"}}}}`)

		err := as("alice").Create(t.Context(), newDGDR(ns, "alice-sized", sized))
		assert.Equal(t, []string{"spec.overrides.profilingJob"}, causes(t, err))
		assert.Contains(t, err.Error(), `user "alice" may not create Jobs in namespace "sar"`)
		assert.Contains(t, err.Error(), "remove spec.overrides.profilingJob")
		assert.Empty(t, cl.jobsFor(t, ns, "alice-sized"))

		require.NoError(t, as("alice").Create(t.Context(), newDGDR(ns, "alice-plain", nil)), "no override: the webhook creates the Job")
		assert.Len(t, cl.jobsFor(t, ns, "alice-plain"), 1)
		require.NoError(t, as("bob").Create(t.Context(), newDGDR(ns, "bob-sized", sized)), "bob may create Jobs himself")
		jobs := cl.jobsFor(t, ns, "bob-sized")
		require.Len(t, jobs, 1)
		assert.Equal(t, map[string]string{"pool": "cpu"}, jobs[0].Spec.Template.Spec.NodeSelector)

		// A spec change is a new run and gets the same check: carol may change DGDRs, not create Jobs.
		grant("carol", rbacv1.PolicyRule{APIGroups: []string{"nvidia.com"}, Resources: []string{"dynamographdeploymentrequests"}, Verbs: []string{"create", "get", "update"}})
		d := newDGDR(ns, "carol-plain", nil)
		require.NoError(t, as("carol").Create(t.Context(), d))
		sized(d)
		err = as("carol").Update(t.Context(), d)
		assert.Equal(t, []string{"spec.overrides.profilingJob"}, causes(t, err))
		assert.Contains(t, err.Error(), `user "carol" may not create Jobs in namespace "sar"`)
		assert.Len(t, cl.jobsFor(t, ns, "carol-plain"), 1, "the refused change made no Job")
	})

	t.Run("the design's examples are admitted", func(t *testing.T) {
		ns := cl.namespace(t, "examples", false)
		files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(t), "examples", "*.yaml"))
		require.NoError(t, err)
		var names []string
		for _, f := range files {
			if name := strings.TrimSuffix(filepath.Base(f), ".yaml"); slices.Contains([]string{"quick-start", "sla-optimized", "exploratory", "autoscaling"}, name) {
				names = append(names, name)
				out, err := cl.kubectl(t, "create", "-n", ns, "-f", f)
				require.NoError(t, err, out)
			}
		}
		assert.ElementsMatch(t, []string{"quick-start", "sla-optimized", "exploratory", "autoscaling"}, names)
		for _, name := range names {
			d := &v1alpha1.DynamoGraphDeploymentRequest{}
			require.NoError(t, c.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, d))
			assert.Equal(t, "nvcr.io/nvidia/ai-dynamo/profiler:1.0.0", d.Spec.Image, "an explicit image is kept")
			assert.Equal(t, v1alpha1.SearchRapid, d.Spec.SearchStrategy)
			assert.Len(t, cl.jobsFor(t, ns, name), 1, name)
		}
	})

	t.Run("RBAC grants the webhook and the profiler what they use, and no more", func(t *testing.T) {
		ns := cl.namespace(t, "rbac", true)
		cl.profilerClient(t, ns)
		type check struct {
			who                                         string // "webhook" or "profiler"
			verb, group, resource, sub, namespace, name string
			allowed                                     bool
		}
		const crd = "dynamographdeployments.nvidia.com"
		checks := []check{
			{"webhook", "create", "batch", "jobs", "", ns, "", true},
			{"webhook", "get", "batch", "jobs", "", ns, "x-profile", true},
			{"webhook", "get", "", "persistentvolumeclaims", "", ns, "weights", true},
			{"webhook", "get", "nvidia.com", "dynamographdeploymentrequests", "", ns, "x", true},
			{"webhook", "get", "", "serviceaccounts", "", ns, v1alpha1.ProfilerServiceAccount, true},
			{"webhook", "list", "", "nodes", "", "", "", true},
			{"webhook", "get", "apiextensions.k8s.io", "customresourcedefinitions", "", "", crd, true},
			{"webhook", "delete", "batch", "jobs", "", ns, "x-profile", true},
			{"webhook", "create", "authorization.k8s.io", "subjectaccessreviews", "", "", "", true},
			{"webhook", "patch", "batch", "jobs", "", ns, "x-profile", true},
			{"webhook", "update", "batch", "jobs", "", ns, "x-profile", false},
			{"webhook", "list", "batch", "jobs", "", ns, "", true}, // the Jobs of older runs, to cancel them
			{"webhook", "watch", "batch", "jobs", "", ns, "", false},
			{"webhook", "create", "batch", "cronjobs", "", ns, "", true},
			{"webhook", "get", "batch", "cronjobs", "", ns, "x-adapt", true},
			{"webhook", "patch", "batch", "cronjobs", "", ns, "x-adapt", true},
			{"webhook", "delete", "batch", "cronjobs", "", ns, "x-adapt", true},
			{"webhook", "update", "batch", "cronjobs", "", ns, "x-adapt", false},
			{"webhook", "list", "batch", "cronjobs", "", ns, "", false},
			{"webhook", "get", "", "secrets", "", ns, "token", false},
			{"webhook", "get", "", "serviceaccounts", "", ns, "default", false},
			{"webhook", "get", "apiextensions.k8s.io", "customresourcedefinitions", "", "", "secrets.example.com", false},
			{"webhook", "update", "nvidia.com", "dynamographdeploymentrequests", "", ns, "x", false},

			{"profiler", "get", "nvidia.com", "dynamographdeploymentrequests", "", ns, "x", true},
			{"profiler", "update", "nvidia.com", "dynamographdeploymentrequests", "status", ns, "x", true},
			{"profiler", "patch", "nvidia.com", "dynamographdeployments", "", ns, "x", true},
			{"profiler", "create", "nvidia.com", "dynamographdeployments", "", ns, "", true},
			{"profiler", "create", "", "configmaps", "", ns, "", true},
			{"profiler", "delete", "", "configmaps", "", ns, "x-profiling-g1", true}, // results of runs older than the last 3
			{"profiler", "list", "", "configmaps", "", ns, "", false},
			{"profiler", "delete", "", "configmaps", "", "defaults", "x-profiling-g1", false},
			{"profiler", "patch", "batch", "jobs", "", ns, "x-profile", true},
			{"profiler", "delete", "batch", "jobs", "", ns, "x-profile", true},
			{"profiler", "update", "nvidia.com", "dynamographdeploymentrequests", "finalizers", ns, "x", false},
			{"profiler", "get", "", "pods", "log", ns, "p", true},
			{"profiler", "create", "", "events", "", ns, "", true},
			{"profiler", "list", "", "nodes", "", "", "", true},
			{"profiler", "list", "", "pods", "", "", "", true},
			{"profiler", "get", "apiextensions.k8s.io", "customresourcedefinitions", "", "", crd, true},
			{"profiler", "get", "nvidia.com", "dynamographdeploymentrequests", "", "defaults", "minimal", false},
			{"profiler", "update", "nvidia.com", "dynamographdeploymentrequests", "", ns, "x", false},
			{"profiler", "patch", "nvidia.com", "dynamographdeploymentrequests", "", ns, "x", true}, // adaptation mode Apply: spec.workload
			{"profiler", "patch", "nvidia.com", "dynamographdeploymentrequests", "", "defaults", "x", false},
			{"profiler", "create", "batch", "cronjobs", "", ns, "", false},
			{"profiler", "patch", "batch", "cronjobs", "", ns, "x-adapt", false},
			{"profiler", "create", "batch", "jobs", "", ns, "", false},
			{"profiler", "get", "", "secrets", "", ns, "token", false},
			{"profiler", "create", "", "configmaps", "", "defaults", "", false},
		}
		for _, ck := range checks {
			user, sans := "system:serviceaccount:dgdr-system:dgdr-webhook", "dgdr-system"
			if ck.who == "profiler" {
				user, sans = "system:serviceaccount:"+ns+":"+v1alpha1.ProfilerServiceAccount, ns
			}
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:   user,
				Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + sans, "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: ck.verb, Group: ck.group, Resource: ck.resource,
					Subresource: ck.sub, Namespace: ck.namespace, Name: ck.name},
			}}
			require.NoError(t, c.Create(t.Context(), sar))
			assert.Equal(t, ck.allowed, sar.Status.Allowed, "%s %s %s/%s %s/%s", ck.who, ck.verb, ck.resource, ck.sub, ck.namespace, ck.name)
		}
	})

	t.Run("warnings", func(t *testing.T) {
		ctx := t.Context()
		bare := cl.namespace(t, "warn-bare", true)
		ready := cl.namespace(t, "warn-ready", false)
		noGPU := "no GPU nodes are visible"
		noSA := "ServiceAccount dgdr-profiler does not exist in namespace warn-bare"

		warnings, err := cl.create(t, newDGDR(bare, "w1", nil))
		require.NoError(t, err)
		assert.Len(t, warnings, 2, "%q", warnings)
		assertContainsSubstring(t, warnings, noGPU)
		assertContainsSubstring(t, warnings, noSA)

		warnings, err = cl.create(t, newDGDR(ready, "w2", func(d *v1alpha1.DynamoGraphDeploymentRequest) {
			d.Spec.Hardware = &v1alpha1.Hardware{GPUType: "h200_sxm", GPUsPerNode: ptr.To[int32](8)}
		}))
		require.NoError(t, err)
		assert.Empty(t, warnings, "spec.hardware replaces discovery; the ServiceAccount exists")

		// A GPU node (labelled by feature discovery) makes the GPU warning go away.
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "gpu-1", Labels: map[string]string{LabelGPUPresent: "true"}}}
		require.NoError(t, c.Create(ctx, node))
		warnings, err = cl.create(t, newDGDR(ready, "w3", nil))
		require.NoError(t, err)
		assert.Empty(t, warnings)
		require.NoError(t, c.Delete(ctx, node))

		// So does a node that only advertises allocatable GPUs.
		node = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "gpu-2"}}
		require.NoError(t, c.Create(ctx, node))
		node.Status.Allocatable = corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("8")}
		require.NoError(t, c.Status().Update(ctx, node))
		warnings, err = cl.create(t, newDGDR(ready, "w4", nil))
		require.NoError(t, err)
		assert.Empty(t, warnings)

		// A thorough request is told the GPU-hours it is expected to spend, and their ceiling.
		warnings, err = cl.create(t, newDGDR(ready, "w4t", func(d *v1alpha1.DynamoGraphDeploymentRequest) {
			d.Spec.SearchStrategy = v1alpha1.SearchThorough
			d.Spec.Hardware = &v1alpha1.Hardware{GPUType: "h200_sxm", GPUsPerNode: ptr.To[int32](8), TotalGPUs: ptr.To[int32](8)}
		}))
		require.NoError(t, err)
		require.Len(t, warnings, 1, "%q", warnings)
		assert.Contains(t, warnings[0], "of wall time for")
		assert.Contains(t, warnings[0], "up to 8 GPUs for up to 6h0m0s")
		assert.Contains(t, warnings[0], "at most 48 GPU-hours")

		// Without the Dynamo CRD: admitted, with a warning that says what will fail.
		crd := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: lifecycle.DGDCRDName}}
		require.NoError(t, c.Delete(ctx, crd))
		require.Eventually(t, func() bool {
			return apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(crd), crd))
		}, 30*time.Second, 100*time.Millisecond, "the DGD CRD is deleted")
		cl.handler.facts.advance(factTTL) // the webhook remembered the CRD as installed; it asks again after factTTL
		warnings, err = cl.create(t, newDGDR(ready, "w5", func(d *v1alpha1.DynamoGraphDeploymentRequest) { d.Spec.AutoApply = true }))
		require.NoError(t, err)
		assert.Equal(t, []string{fmt.Sprintf("CustomResourceDefinition %s is not installed: autoApply will fail until NVIDIA Dynamo is installed", lifecycle.DGDCRDName)}, warnings)
		warnings, err = cl.create(t, newDGDR(ready, "w6", nil))
		require.NoError(t, err)
		assert.Len(t, warnings, 1)
		assertContainsSubstring(t, warnings, "cannot be deployed until NVIDIA Dynamo is installed")
	})

	t.Run("with the webhook unreachable DGDRs are refused, other kinds are not", func(t *testing.T) {
		ns := cl.namespace(t, "down", false)
		cl.env.Cancel() // stops the in-process webhook server
		wio := cl.env.Env.WebhookInstallOptions
		addr := net.JoinHostPort(wio.LocalServingHost, fmt.Sprint(wio.LocalServingPort))
		require.Eventually(t, func() bool {
			conn, err := net.Dial("tcp", addr)
			if err == nil {
				_ = conn.Close()
			}
			return err != nil
		}, 30*time.Second, 50*time.Millisecond, "the webhook server stops listening")

		_, err := cl.create(t, newDGDR(ns, "refused", nil))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "failed calling webhook", "failurePolicy Fail refuses DGDRs")
		assert.Empty(t, cl.jobsFor(t, ns, "refused"))
		err = c.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: "refused"}, &v1alpha1.DynamoGraphDeploymentRequest{})
		assert.True(t, apierrors.IsNotFound(err))

		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "unaffected", Namespace: ns}, Data: map[string]string{"a": "b"}}
		require.NoError(t, c.Create(t.Context(), cm), "the webhooks match DGDRs only")
	})
}

func assertContainsSubstring(t *testing.T, list []string, sub string) {
	t.Helper()
	assert.True(t, slices.ContainsFunc(list, func(s string) bool { return strings.Contains(s, sub) }), "%q in %q", sub, list)
}
