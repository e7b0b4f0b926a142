package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// defaultContainerAnnotation is kubectl's way for a pod to name the container `kubectl logs` shows.
const defaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

// LogsOptions prints the profiling Job's logs.
type LogsOptions struct {
	clusterOptions

	Name      string
	Follow    bool
	Container string
	Tail      int64
}

// NewCmdLogs is `kubectl dgdr logs NAME`.
func NewCmdLogs(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &LogsOptions{clusterOptions: clusterOptions{IOStreams: streams}}
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Print the logs of a DGDR's profiling Job",
		Long: `Print the logs of the profiling Job of a DynamoGraphDeploymentRequest: the newest pod of the Job
(a retried Job has several), its default container unless -c names another.`,
		Example: `  # Follow the profiler while it runs
  kubectl dgdr logs qwen -f`,
		Args:              exactName,
		ValidArgsFunction: completeDGDRNames(getter, 1),
		RunE:              runCommand(getter, o),
	}
	cmd.Flags().BoolVarP(&o.Follow, "follow", "f", false, "Stream the logs until the pod ends")
	cmd.Flags().StringVarP(&o.Container, "container", "c", "", "Container of the pod (default: the pod's default container, else its first)")
	cmd.Flags().Int64Var(&o.Tail, "tail", -1, "Lines of recent log to show (-1: all)")
	return cmd
}

// Complete takes the name and builds the client.
func (o *LogsOptions) Complete(getter genericclioptions.RESTClientGetter, _ *cobra.Command, args []string) error {
	o.Name = args[0]
	return o.complete(getter)
}

// Validate has nothing to check: -c is checked against the pod's containers, and a --tail below 0 shows all.
func (o *LogsOptions) Validate() error { return nil }

// Run finds the Job's newest pod and copies its log to stdout.
func (o *LogsOptions) Run(ctx context.Context) error {
	d, err := o.cluster.getDGDR(ctx, o.Name)
	if err != nil {
		return err
	}
	ns := nsFlag(d.Namespace)
	job, err := o.cluster.profilingJob(ctx, d)
	if err != nil {
		return err
	}
	if job == nil {
		hint := fmt.Sprintf("`kubectl dgdr status %s%s` shows what happened", d.Name, ns)
		if d.Status.Phase != "" && d.Status.Phase != v1alpha1.PhasePending {
			hint = fmt.Sprintf("finished Jobs are removed after a while; the results are in `kubectl dgdr results %s%s`", d.Name, ns)
		}
		return WithHint(fmt.Errorf("DGDR %s has no profiling Job", d.Name), "%s", hint)
	}
	pods, err := o.cluster.jobPods(ctx, job)
	if err != nil {
		return err
	}
	if len(pods) == 0 {
		return WithHint(fmt.Errorf("the profiling Job %s has no pod yet", job.Name), "`kubectl dgdr status %s%s` shows the Job's events", d.Name, ns)
	}
	pod := pods[len(pods)-1]
	if len(pods) > 1 {
		fmt.Fprintf(o.ErrOut, "Showing pod %s, the newest of the Job's %d pods\n", pod.Name, len(pods))
	}
	container, err := o.pickContainer(&pod)
	if err != nil {
		return err
	}
	if pod.Status.Phase == corev1.PodPending && !started(&pod, container) {
		return WithHint(fmt.Errorf("pod %s of the profiling Job is Pending, it has no logs yet", pod.Name),
			"`kubectl dgdr status %s%s` shows why (scheduling, image pull)", d.Name, ns)
	}

	opts := &corev1.PodLogOptions{Container: container, Follow: o.Follow}
	if o.Tail >= 0 {
		opts.TailLines = ptr.To(o.Tail)
	}
	stream, err := o.cluster.kube.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, opts).Stream(ctx)
	if err != nil {
		return apiError(fmt.Errorf("reading the logs of pod %s: %w", pod.Name, err), "")
	}
	defer stream.Close()
	if _, err := io.Copy(o.Out, stream); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("reading the logs of pod %s: %w", pod.Name, err)
	}
	return nil
}

// pickContainer is -c, else the pod's default-container annotation, else its first container.
func (o *LogsOptions) pickContainer(pod *corev1.Pod) (string, error) {
	names := make([]string, 0, len(pod.Spec.Containers))
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	want := o.Container
	if want == "" {
		want = pod.Annotations[defaultContainerAnnotation]
	}
	if want == "" && len(names) > 0 {
		return names[0], nil
	}
	for _, n := range names {
		if n == want {
			return n, nil
		}
	}
	return "", WithHint(fmt.Errorf("pod %s has no container %q", pod.Name, want), "pick one of %v with -c", names)
}

// started reports whether the container has run (then it has logs even if the pod is not Running).
func started(pod *corev1.Pod, container string) bool {
	for _, s := range pod.Status.ContainerStatuses {
		if s.Name == container && (s.State.Running != nil || s.State.Terminated != nil || s.LastTerminationState.Terminated != nil) {
			return true
		}
	}
	return false
}
