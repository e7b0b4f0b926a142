package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/spf13/cobra"

	"github.com/dgdr-dev/dgdr/internal/deploy"
	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// maxEvents bounds the events status shows (the most recent ones).
const maxEvents = 10

// StatusOptions shows where a DGDR is in its lifecycle and what to do next.
type StatusOptions struct {
	clusterOptions

	Name string

	now func() time.Time
}

// NewCmdStatus is `kubectl dgdr status NAME`.
func NewCmdStatus(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &StatusOptions{clusterOptions: clusterOptions{IOStreams: streams}, now: time.Now}
	cmd := &cobra.Command{
		Use:   "status NAME",
		Short: "Show a DGDR's phase, conditions, profiling Job, events and the next step",
		Long: `Show where a DynamoGraphDeploymentRequest is in its lifecycle (Pending, Profiling, Ready, Deploying,
Deployed, Failed): its conditions, the profiling Job, the generated DGD, recent events, and the next
step to take.

status is also the client-side half of the lifecycle: when the DGDR is Deploying and its DGD is ready,
it records the DGDR as Deployed; for a deployed DGDR it refreshes status.deploymentInfo.`,
		Example: `  # Where is my request?
  kubectl dgdr status qwen`,
		Args:              exactName,
		ValidArgsFunction: completeDGDRNames(getter, 1),
		RunE:              runCommand(getter, o),
	}
	return cmd
}

// Complete takes the name and builds the client.
func (o *StatusOptions) Complete(getter genericclioptions.RESTClientGetter, _ *cobra.Command, args []string) error {
	o.Name = args[0]
	return o.complete(getter)
}

// Validate has nothing to check: status takes NAME only, which cobra checks.
func (o *StatusOptions) Validate() error { return nil }

// exactName requires one NAME argument, with a hint instead of cobra's generic message.
func exactName(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return WithHint(fmt.Errorf("expected one DGDR name, got %d arguments", len(args)),
			"run `%s NAME`; `kubectl dgdr get` lists the names", cmd.CommandPath())
	}
	return nil
}

// Run prints the report, recording Deployed first when the DGD has become ready.
func (o *StatusOptions) Run(ctx context.Context) error {
	d, err := o.cluster.getDGDR(ctx, o.Name)
	if err != nil {
		return err
	}
	d, dgd, warn, err := o.cluster.observeDeployment(ctx, d)
	if err != nil {
		return err
	}
	if warn != "" {
		fmt.Fprintf(o.ErrOut, "Warning: %s\n", warn)
	}
	job, err := o.cluster.profilingJob(ctx, d)
	if err != nil {
		return err
	}
	if d, _, err = o.cluster.observeJob(ctx, d, job, o.now()); err != nil {
		fmt.Fprintf(o.ErrOut, "Warning: %v\n", err)
	}
	events, err := o.cluster.events(ctx, d, job)
	if err != nil {
		// Events are a help, not the report: say so and go on.
		fmt.Fprintf(o.ErrOut, "Warning: listing events: %v\n", err)
	}
	return writeStatus(o.Out, d, job, dgd, events, o.now())
}

// observeDeployment is the client-side half of the lifecycle: lifecycle.RecordDGDState (the profiler's
// step too) records a Deploying DGDR whose DGD is ready as Deployed, and keeps the DeploymentReady
// condition and deploymentInfo with the DGD. A refused write (a read-only user) is returned as a
// warning, not an error.
func (c *cluster) observeDeployment(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest) (*v1alpha1.DynamoGraphDeploymentRequest, *lifecycle.DGDState, string, error) {
	if d.Status.DGDName == "" || (d.Status.Phase != v1alpha1.PhaseDeploying && d.Status.Phase != v1alpha1.PhaseDeployed) {
		return d, nil, "", nil
	}
	st, err := lifecycle.GetDGDState(ctx, c.client, d.Namespace, d.Status.DGDName)
	if err != nil {
		return nil, nil, "", apiError(err, "")
	}
	updated, wrote, err := lifecycle.RecordDGDState(ctx, c.client, d, st)
	if err != nil {
		if apierrors.IsForbidden(err) {
			return d, &st, fmt.Sprintf("could not record the deployment state in the DGDR's status (%v)", err), nil
		}
		return nil, nil, "", apiError(err, "")
	}
	if wrote {
		updated.SetGroupVersionKind(dgdrGVK)
	}
	return updated, &st, "", nil
}

// observeJob is the plugin's half of "every death is reported": a profiling Job that died (or cannot
// run) while the DGDR was profiling fails the DGDR with the cause (lifecycle.ObserveJob). The cause
// comes back even when the user may not write the DGDR's status.
func (c *cluster) observeJob(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest, job *batchv1.Job, now time.Time) (*v1alpha1.DynamoGraphDeploymentRequest, *lifecycle.JobDeath, error) {
	updated, death, err := lifecycle.ObserveJob(ctx, c.client, d, job, now)
	if updated != nil {
		updated.SetGroupVersionKind(dgdrGVK)
	} else {
		updated = d
	}
	if err != nil {
		return updated, death, fmt.Errorf("could not record the profiling Job's failure in the DGDR's status: %w", err)
	}
	return updated, death, nil
}

// profilingJob finds the DGDR's profiling Job by name (profilingJobName). nil when there is none (yet).
func (c *cluster) profilingJob(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest) (*batchv1.Job, error) {
	name := profilingJobName(d)
	job := &batchv1.Job{}
	err := c.client.Get(ctx, client.ObjectKey{Namespace: d.Namespace, Name: name}, job)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, apiError(fmt.Errorf("reading the profiling Job %s: %w", name, err), "")
	}
	return job, nil
}

// jobPods lists the pods of a Job through its selector.
func (c *cluster) jobPods(ctx context.Context, job *batchv1.Job) ([]corev1.Pod, error) {
	pods, err := lifecycle.JobPods(ctx, c.client, job)
	if err != nil {
		return nil, apiError(err, "")
	}
	return pods, nil
}

// events are the most recent events about the DGDR, its Job and the Job's pods, oldest first.
func (c *cluster) events(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest, job *batchv1.Job) ([]corev1.Event, error) {
	type ref struct{ kind, name string }
	refs := []ref{{v1alpha1.Kind, d.Name}}
	if job != nil {
		refs = append(refs, ref{"Job", job.Name})
		pods, err := c.jobPods(ctx, job)
		if err != nil {
			return nil, err
		}
		for _, p := range pods {
			refs = append(refs, ref{"Pod", p.Name})
		}
	}
	var out []corev1.Event
	for _, r := range refs {
		list := &corev1.EventList{}
		if err := c.client.List(ctx, list, client.InNamespace(d.Namespace),
			client.MatchingFields{"involvedObject.kind": r.kind, "involvedObject.name": r.name}); err != nil {
			return nil, err
		}
		out = append(out, list.Items...)
	}
	slices.SortStableFunc(out, func(a, b corev1.Event) int { return eventTime(a).Compare(eventTime(b)) })
	if len(out) > maxEvents {
		out = out[len(out)-maxEvents:]
	}
	return out, nil
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

// writeStatus renders the report.
func writeStatus(out io.Writer, d *v1alpha1.DynamoGraphDeploymentRequest, job *batchv1.Job, dgd *lifecycle.DGDState, events []corev1.Event, now time.Time) error {
	w := printers.GetNewTabWriter(out)
	s := &d.Spec
	phase := phaseOf(d)
	fmt.Fprintf(w, "Name:\t%s\n", d.Name)
	fmt.Fprintf(w, "Namespace:\t%s\n", d.Namespace)
	fmt.Fprintf(w, "Model:\t%s\n", s.Model)
	fmt.Fprintf(w, "Backend:\t%s\n", cmp.Or(string(s.Backend), "<none>"))
	fmt.Fprintf(w, "Strategy:\t%s\n", cmp.Or(string(s.SearchStrategy), "<none>"))
	fmt.Fprintf(w, "Workload:\tISL %d, OSL %d\n", s.ISL(), s.OSL())
	fmt.Fprintf(w, "SLA:\tTTFT %s, ITL %s\n", ms(s.TTFT()), ms(s.ITL()))
	fmt.Fprintf(w, "Auto-apply:\t%t\n", s.AutoApply)
	fmt.Fprintf(w, "Phase:\t%s\n", phase)

	if pr := d.Status.ProfilingResults; pr != nil {
		if pr.StartTime != nil && pr.CompletionTime != nil {
			fmt.Fprintf(w, "Profiling took:\t%s\n", pr.CompletionTime.Sub(pr.StartTime.Time).Round(time.Second))
		}
		if b := pr.Budget; b != nil {
			fmt.Fprintf(w, "Budget:\t%s\n", budgetLine(b))
		}
		if sel := pr.SelectedConfig; sel != nil {
			fmt.Fprintf(w, "Selected:\t%s, %d GPUs, TTFT %.1fms, ITL %.2fms, %.0f tokens/s\n",
				deploy.PointLabel(sel.ParetoPoint), sel.GPUs, sel.TTFT, sel.ITL, sel.Throughput)
			if p := sel.Predicted; sel.Measured && p != nil {
				fmt.Fprintf(w, "  Predicted:\tTTFT %.1fms, ITL %.2fms, %.0f tokens/s/GPU (the figures above are measured)\n", p.TTFT, p.ITL, p.TokensPerSecondPerGPU)
			}
			if sel.Reason != "" {
				fmt.Fprintf(w, "  Why:\t%s\n", oneLine(sel.Reason))
			}
		}
		fmt.Fprintf(w, "Pareto points:\t%d\n", len(pr.Pareto))
	}

	switch {
	case job != nil:
		fmt.Fprintf(w, "Profiling Job:\t%s (%s)\n", job.Name, jobState(job))
	default:
		fmt.Fprintf(w, "Profiling Job:\t%s (not found)\n", profilingJobName(d))
	}

	if d.Status.DGDName != "" {
		state := "not deployed"
		if dgd != nil {
			switch {
			case !dgd.Found:
				state = "not found"
			case dgd.Ready:
				state = "ready"
			default:
				state = "not ready: " + dgd.Message
			}
		}
		fmt.Fprintf(w, "DGD:\t%s (%s)\n", d.Status.DGDName, oneLine(state))
	}
	if info := d.Status.DeploymentInfo; info != nil {
		fmt.Fprintf(w, "Replicas:\t%d/%d available\n", info.AvailableReplicas, info.Replicas)
	}
	if err := w.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(out, "Conditions:")
	if len(d.Status.Conditions) == 0 {
		fmt.Fprintln(out, "  <none>")
	} else {
		w = printers.GetNewTabWriter(out)
		fmt.Fprintln(w, "  TYPE\tSTATUS\tREASON\tAGE\tMESSAGE")
		for _, c := range d.Status.Conditions {
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, age(c.LastTransitionTime, now), oneLine(c.Message))
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}

	fmt.Fprintln(out, "Events:")
	if len(events) == 0 {
		fmt.Fprintln(out, "  <none>")
	} else {
		w = printers.GetNewTabWriter(out)
		fmt.Fprintln(w, "  LAST SEEN\tTYPE\tREASON\tOBJECT\tMESSAGE")
		for _, e := range events {
			obj := strings.ToLower(e.InvolvedObject.Kind) + "/" + e.InvolvedObject.Name
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", age(metav1.NewTime(eventTime(e)), now), e.Type, e.Reason, obj, oneLine(e.Message))
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(out, "Next: %s\n", nextStep(d, job, dgd))
	return err
}

// budgetLine summarises a thorough search's budget: the estimate made before anything was deployed,
// what was used, and the candidates' outcomes.
func budgetLine(b *v1alpha1.ProfilingBudget) string {
	deadline := ""
	if b.Deadline != nil {
		deadline = ", deadline " + b.Deadline.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("expected %.2f GPU-hours and %s on up to %d GPUs%s; used %.2f GPU-hours; %d candidates: %d measured, %d failed, %d pruned",
		b.EstimatedGPUHours, b.EstimatedWallTime.Round(time.Second), b.GPUs, deadline, b.UsedGPUHours, b.Candidates, b.Measured, b.Failed, b.Pruned)
}

// jobState summarises a Job: its terminal condition, else its pod counts.
func jobState(job *batchv1.Job) string {
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return "succeeded"
		case batchv1.JobFailed:
			msg := "failed"
			if c.Reason != "" {
				msg += ": " + c.Reason
			}
			if c.Message != "" {
				msg += ": " + c.Message
			}
			return oneLine(msg)
		}
	}
	switch {
	case job.Status.Active > 0:
		return fmt.Sprintf("active: %d running, %d failed", job.Status.Active, job.Status.Failed)
	case job.Status.Succeeded > 0:
		return "succeeded"
	case job.Status.Failed > 0:
		return fmt.Sprintf("%d failed pods", job.Status.Failed)
	}
	return "waiting for a pod"
}

// nextStep is the one thing to do next, by phase.
func nextStep(d *v1alpha1.DynamoGraphDeploymentRequest, job *batchv1.Job, dgd *lifecycle.DGDState) string {
	name, ns := d.Name, nsFlag(d.Namespace)
	switch d.Status.Phase {
	case "", v1alpha1.PhasePending:
		if job == nil {
			return fmt.Sprintf("its profiling Job %s does not exist: the dgdr webhook creates it at admission; check it is installed "+
				"(`kubectl get validatingwebhookconfigurations dgdr-webhook`), then delete and recreate the DGDR", profilingJobName(d))
		}
		return fmt.Sprintf("wait for the profiling Job to start; follow it with `kubectl dgdr logs %s%s -f`", name, ns)
	case v1alpha1.PhaseProfiling:
		return fmt.Sprintf("profiling is running; follow it with `kubectl dgdr logs %s%s -f`", name, ns)
	case v1alpha1.PhaseReady:
		return fmt.Sprintf("run `kubectl dgdr results %s%s`, then `kubectl dgdr promote %s%s` (or `kubectl dgdr export %s%s` to keep the DGD in git)", name, ns, name, ns, name, ns)
	case v1alpha1.PhaseDeploying:
		if dgd != nil && !dgd.Found {
			return fmt.Sprintf("the DGD %s does not exist: deploy it again with `kubectl dgdr promote %s%s`", d.Status.DGDName, name, ns)
		}
		return fmt.Sprintf("wait for the DGD to become ready: `kubectl get dynamographdeployment %s%s`; run `kubectl dgdr status %s%s` again to record it", d.Status.DGDName, ns, name, ns)
	case v1alpha1.PhaseDeployed:
		if dgd != nil && !dgd.Found {
			return fmt.Sprintf("the DGD %s was deleted: deploy it again with `kubectl dgdr promote %s%s`, or delete this DGDR", d.Status.DGDName, name, ns)
		}
		return fmt.Sprintf("the DGD %s serves the model; keep it in git with `kubectl dgdr export %s%s > %s.yaml` and edit the DGD from now on", d.Status.DGDName, name, ns, d.Status.DGDName)
	case v1alpha1.PhaseFailed:
		return fmt.Sprintf("read the failed condition above and `kubectl dgdr logs %s%s`; fix the spec, then `kubectl dgdr delete %s%s` and create it again", name, ns, name, ns)
	}
	return fmt.Sprintf("unknown phase %q: check the conditions above", d.Status.Phase)
}

// nsFlag repeats the namespace in suggested commands unless it is "default".
func nsFlag(ns string) string {
	if ns == "" || ns == "default" {
		return ""
	}
	return " -n " + ns
}

// oneLine folds whitespace so that a message fits one table cell.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// failureMessage is the message of the newest False condition, or "" when none.
func failureMessage(d *v1alpha1.DynamoGraphDeploymentRequest) string {
	var best *metav1.Condition
	for i := range d.Status.Conditions {
		c := &d.Status.Conditions[i]
		if c.Status == metav1.ConditionFalse && (best == nil || c.LastTransitionTime.After(best.LastTransitionTime.Time)) {
			best = c
		}
	}
	if best == nil {
		return ""
	}
	return oneLine(best.Reason + ": " + best.Message)
}

// latestMessage is the message of the most recently changed condition (what a progress line shows).
func latestMessage(d *v1alpha1.DynamoGraphDeploymentRequest) string {
	var best *metav1.Condition
	for i := range d.Status.Conditions {
		c := &d.Status.Conditions[i]
		if best == nil || !c.LastTransitionTime.Before(&best.LastTransitionTime) {
			best = c
		}
	}
	if best == nil {
		return ""
	}
	return oneLine(best.Message)
}
