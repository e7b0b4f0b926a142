package cli

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// profilingJob creates a profiling Job for a DGDR, records its name in the DGDR's status as the profiler
// does, and returns it with the selector and
// pod-template labels the API server adds.
func (h *harness) profilingJob(ns, dgdr, name string) *batchv1.Job {
	h.t.Helper()
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{v1alpha1.LabelDGDRName: dgdr}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "profiler", Image: "dgdr-profiler"}, {Name: "sidecar", Image: "busybox"}},
		}}},
	}
	testenv.Must(h.t, h.env.Client.Create(h.t.Context(), job), "creating Job %s", name)
	// The name the profiler records in status (the plugin finds the Job by it; tests name Jobs freely).
	_, err := lifecycle.UpdateStatus(h.t.Context(), h.env.Client, types.NamespacedName{Namespace: ns, Name: dgdr}, func(d *v1alpha1.DynamoGraphDeploymentRequest) error {
		d.Status.ProfilingJobName = name
		return nil
	})
	testenv.Must(h.t, err, "recording Job %s in the status of DGDR %s", name, dgdr)
	return job
}

// jobPod creates a pod of the Job, as the Job controller would.
func (h *harness) jobPod(job *batchv1.Job, name string, status corev1.PodStatus) *corev1.Pod {
	h.t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: job.Namespace, Labels: job.Spec.Template.Labels},
		Spec:       job.Spec.Template.Spec,
	}
	testenv.Must(h.t, h.env.Client.Create(h.t.Context(), pod), "creating pod %s", name)
	pod.Status = status
	testenv.Must(h.t, h.env.Client.Status().Update(h.t.Context(), pod), "setting the status of pod %s", name)
	return pod
}

func TestLogs(t *testing.T) {
	h := newHarness(t, testenv.Options{})
	ns := h.namespace("logs")

	h.dgdr(ns, "nojob", spec(), nil)
	h.dgdr(ns, "done", spec(), ptr.To(readyStatus("done")))
	h.dgdr(ns, "nopod", spec(), nil)
	h.profilingJob(ns, "nopod", "nopod-prof")
	h.dgdr(ns, "pending", spec(), nil)
	h.jobPod(h.profilingJob(ns, "pending", "pending-prof"), "pending-prof-a", corev1.PodStatus{Phase: corev1.PodPending})

	errs := []struct {
		name string
		args []string
		want string
	}{
		{"no Job", []string{"logs", "nojob"}, "error: DGDR nojob has no profiling Job (hint: `kubectl dgdr status nojob -n logs` shows what happened)"},
		{"Job gone after profiling", []string{"logs", "done"}, "the results are in `kubectl dgdr results done -n logs`"},
		{"no pod yet", []string{"logs", "nopod"}, "the profiling Job nopod-prof has no pod yet"},
		{"pending pod", []string{"logs", "pending"}, "pod pending-prof-a of the profiling Job is Pending, it has no logs yet"},
		{"unknown container", []string{"logs", "pending", "-c", "main"}, `pod pending-prof-a has no container "main" (hint: pick one of [profiler sidecar] with -c)`},
		{"not found", []string{"logs", "nope"}, `dynamographdeploymentrequest "nope" not found`},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			h := h.with(t)
			r := h.fail(append(tt.args, "-n", ns)...)
			assert.Contains(t, r.errLine, tt.want)
		})
	}

	t.Run("the newest pod's default container is streamed", func(t *testing.T) {
		h := h.with(t)
		d := h.dgdr(ns, "running", spec(), &v1alpha1.DynamoGraphDeploymentRequestStatus{Phase: v1alpha1.PhaseProfiling})
		job := h.profilingJob(ns, "running", "running-prof")
		failed := corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{{Name: "profiler", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}}}}
		h.jobPod(job, "running-prof-1", failed)
		running := corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: "profiler", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}}
		newest := h.jobPod(job, "running-prof-2", running)

		// No kubelet runs beside envtest, so the log stream itself comes from client-go's fake, which
		// records the request the plugin made.
		kube := fake.NewClientset(newest)
		var got *corev1.PodLogOptions
		kube.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
			if a.GetSubresource() != "log" {
				return false, nil, nil
			}
			got = a.(k8stesting.GenericAction).GetValue().(*corev1.PodLogOptions)
			return true, &runtime.Unknown{Raw: []byte("profiler says hi\n")}, nil
		})
		flags := genericclioptions.NewConfigFlags(true)
		flags.KubeConfig = &h.env.Kubeconfig
		c, err := newCluster(flags, genericiooptions.IOStreams{})
		require.NoError(t, err)
		c.namespace, c.kube = ns, kube
		var out, errOut bytes.Buffer
		o := &LogsOptions{clusterOptions: clusterOptions{IOStreams: genericiooptions.IOStreams{Out: &out, ErrOut: &errOut}, cluster: c}, Name: d.Name, Follow: true, Tail: 10}
		require.NoError(t, o.Run(t.Context()))
		assert.Equal(t, "profiler says hi\n", out.String())
		assert.Equal(t, "Showing pod running-prof-2, the newest of the Job's 2 pods\n", errOut.String())
		assert.Equal(t, &corev1.PodLogOptions{Container: "profiler", Follow: true, TailLines: ptr.To[int64](10)}, got)
	})
}
