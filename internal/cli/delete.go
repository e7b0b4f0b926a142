package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// DeleteOptions deletes a DGDR with its profiling Job and results, and keeps its DGD.
type DeleteOptions struct {
	clusterOptions

	Name    string
	Wait    bool
	Timeout time.Duration

	poll time.Duration
}

// NewCmdDelete is `kubectl dgdr delete NAME`.
func NewCmdDelete(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &DeleteOptions{clusterOptions: clusterOptions{IOStreams: streams}, poll: 500 * time.Millisecond}
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a DGDR, its profiling Job and results; the DGD keeps serving",
		Long: `Delete a DynamoGraphDeploymentRequest together with its profiling Job, its <name>-profiling
ConfigMap and the results kept of earlier runs (<name>-profiling-g<run>). The DynamoGraphDeployment it generated is not deleted: the DGDR is the entry path and the
DGD lives on its own (delete it with kubectl delete dynamographdeployment NAME).`,
		Example: `  # Delete a request and wait until it is gone
  kubectl dgdr delete qwen --wait`,
		Args:              exactName,
		ValidArgsFunction: completeDGDRNames(getter, 1),
		RunE:              runCommand(getter, o),
	}
	cmd.Flags().BoolVar(&o.Wait, "wait", false, "Wait until the DGDR is gone")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", time.Minute, "How long --wait waits")
	return cmd
}

// Complete takes the name and builds the client.
func (o *DeleteOptions) Complete(getter genericclioptions.RESTClientGetter, _ *cobra.Command, args []string) error {
	o.Name = args[0]
	return o.complete(getter)
}

// Validate has nothing to check: NAME is checked by cobra, --wait and --timeout take any value.
func (o *DeleteOptions) Validate() error { return nil }

// Run deletes what only the DGDR used, then the DGDR, and says what is kept.
func (o *DeleteOptions) Run(ctx context.Context) error {
	c := o.cluster
	d, err := c.getDGDR(ctx, o.Name)
	if err != nil {
		return err
	}
	// The Job and the results go first, then the DGDR. Both are owned by the DGDR, so once it is gone
	// the garbage collector races this command for them, and what the command says it deleted would
	// depend on who won (seen in make e2e). A Job the DGDR never came to own (its profiler never ran,
	// or the adoption was forbidden) would be left to its TTL without this.
	// A retried Job may have several pods: background propagation removes them with the Job.
	bg := client.PropagationPolicy(metav1.DeletePropagationBackground)
	if job, err := c.profilingJob(ctx, d); err != nil {
		return err
	} else if job != nil {
		if err := c.client.Delete(ctx, job, bg); err != nil && !apierrors.IsNotFound(err) {
			return apiError(fmt.Errorf("deleting the profiling Job %s: %w", job.Name, err), "")
		}
		fmt.Fprintf(o.Out, "job.batch/%s deleted\n", job.Name)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: d.Namespace, Name: d.Name + v1alpha1.ProfilingConfigMapSuffix}}
	switch err := c.client.Delete(ctx, cm); {
	case err == nil:
		fmt.Fprintf(o.Out, "configmap/%s deleted\n", cm.Name)
	case !apierrors.IsNotFound(err):
		return apiError(fmt.Errorf("deleting the results ConfigMap %s: %w", cm.Name, err), "")
	}
	kept, err := lifecycle.DeleteRunResults(ctx, c.client, d)
	for _, name := range kept {
		fmt.Fprintf(o.Out, "configmap/%s deleted\n", name)
	}
	if err != nil {
		return apiError(err, "")
	}
	if err := c.client.Delete(ctx, d, bg, client.Preconditions{UID: &d.UID}); err != nil && !apierrors.IsNotFound(err) {
		return apiError(fmt.Errorf("deleting dynamographdeploymentrequest %s/%s: %w", d.Namespace, d.Name, err), "")
	}
	fmt.Fprintf(o.Out, "dynamographdeploymentrequest.nvidia.com/%s deleted\n", d.Name)

	if d.Status.DGDName != "" {
		st, err := lifecycle.GetDGDState(ctx, c.client, d.Namespace, d.Status.DGDName)
		if err == nil && st.Found {
			fmt.Fprintf(o.ErrOut, "The DGD %s is kept and keeps serving; delete it with `kubectl delete dynamographdeployment %s%s`\n",
				d.Status.DGDName, d.Status.DGDName, nsFlag(d.Namespace))
		}
	}

	if !o.Wait {
		return nil
	}
	err = wait.PollUntilContextTimeout(ctx, o.poll, o.Timeout, true, func(ctx context.Context) (bool, error) {
		err := c.client.Get(ctx, c.key(d.Name), &v1alpha1.DynamoGraphDeploymentRequest{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, client.IgnoreNotFound(err)
	})
	if err != nil {
		return WithHint(fmt.Errorf("DGDR %s is still there after %s: %w", d.Name, o.Timeout, err),
			"a finalizer may hold it: `kubectl get dgdr %s%s -o jsonpath='{.metadata.finalizers}'`", d.Name, nsFlag(d.Namespace))
	}
	return nil
}
