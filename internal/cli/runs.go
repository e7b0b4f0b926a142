package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// maxReasonLength bounds rerun --reason (it is stored in an annotation and in the run's record).
const maxReasonLength = 512

// RerunOptions starts a new profiling run of a DGDR with the same spec.
type RerunOptions struct {
	clusterOptions
	Name   string
	Reason string
}

// NewCmdRerun is `kubectl dgdr rerun NAME [--reason TEXT]`.
func NewCmdRerun(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &RerunOptions{clusterOptions: clusterOptions{IOStreams: streams}}
	cmd := &cobra.Command{
		Use:   "rerun NAME [--reason TEXT]",
		Short: "Start a new profiling run of a DGDR with the same spec",
		Long: `Start a new profiling run of a DynamoGraphDeploymentRequest without changing what it asks for:
spec.rerun is raised by one (the search ignores it), which makes a new generation, and the webhook
creates that run's profiling Job. A run still going is superseded. --reason is kept in the run's record
(kubectl dgdr history).`,
		Example: `  # Profile again after the cluster gained GPUs
  kubectl dgdr rerun qwen --reason "4 more H200 nodes"`,
		Args:              exactName,
		ValidArgsFunction: completeDGDRNames(getter, 1),
		RunE:              runCommand(getter, o),
	}
	cmd.Flags().StringVar(&o.Reason, "reason", "", "Why the run is started (kept in the run's record)")
	return cmd
}

// Complete takes the name and builds the client.
func (o *RerunOptions) Complete(getter genericclioptions.RESTClientGetter, _ *cobra.Command, args []string) error {
	o.Name = args[0]
	return o.complete(getter)
}

// Validate bounds the reason.
func (o *RerunOptions) Validate() error {
	if len(o.Reason) > maxReasonLength {
		return WithHint(fmt.Errorf("--reason is %d characters, expected at most %d", len(o.Reason), maxReasonLength), "shorten it")
	}
	return nil
}

// Run raises spec.rerun with an optimistic lock (a concurrent edit is a conflict to retry, not lost).
func (o *RerunOptions) Run(ctx context.Context) error {
	c := o.cluster
	d, err := c.getDGDR(ctx, o.Name)
	if err != nil {
		return err
	}
	patch := client.MergeFromWithOptions(d.DeepCopy(), client.MergeFromWithOptimisticLock{})
	d.Spec.Rerun++
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	d.Annotations[v1alpha1.AnnotationRerunReason] = strconv.FormatInt(d.Spec.Rerun, 10) + ":" + o.Reason
	if err := c.client.Patch(ctx, d, patch, client.FieldOwner(v1alpha1.FieldManager)); err != nil {
		if apierrors.IsConflict(err) {
			return WithHint(fmt.Errorf("DGDR %s changed while the run was being started: %w", o.Name, err), "run the command again")
		}
		return apiError(fmt.Errorf("starting a run of DGDR %s: %w", o.Name, err), "")
	}
	fmt.Fprintf(o.Out, "dynamographdeploymentrequest.nvidia.com/%s: run %d started (profiling Job %s)\n", d.Name, d.Generation, profilingJobName(d))
	return nil
}

// CancelOptions stops a DGDR's running profiling run, or one candidate of its thorough search.
type CancelOptions struct {
	clusterOptions
	Name      string
	Candidate int
}

// NewCmdCancel is `kubectl dgdr cancel NAME [--candidate N]`.
func NewCmdCancel(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &CancelOptions{clusterOptions: clusterOptions{IOStreams: streams}}
	cmd := &cobra.Command{
		Use:   "cancel NAME [--candidate N]",
		Short: "Stop a DGDR's running profiling run, or skip one thorough-search candidate",
		Long: `Stop the profiling run a DynamoGraphDeploymentRequest is in: its profiling Job is deleted (its
thorough-search candidates, owned by the Job, go with it) and the run is recorded Cancelled; the DGDR
becomes Failed with reason Cancelled until kubectl dgdr rerun (or a spec change) starts another run.
The DGD of an earlier run keeps serving.

--candidate N (thorough search) skips candidate N (the DGD <name>-c<N>) instead: the search reads the
request before it starts candidates, while a candidate starts, and before each of its loads, and
records it Skipped (it is deleted like any finished candidate).`,
		Example: `  # Stop a run
  kubectl dgdr cancel qwen

  # Skip a thorough-search candidate that does not come up
  kubectl dgdr cancel qwen --candidate 3`,
		Args:              exactName,
		ValidArgsFunction: completeDGDRNames(getter, 1),
		RunE:              runCommand(getter, o),
	}
	cmd.Flags().IntVar(&o.Candidate, "candidate", 0, "Skip this thorough-search candidate (k of <name>-c<k>) instead of stopping the run")
	return cmd
}

// Complete takes the name and builds the client.
func (o *CancelOptions) Complete(getter genericclioptions.RESTClientGetter, cmd *cobra.Command, args []string) error {
	o.Name = args[0]
	if cmd.Flags().Changed("candidate") && o.Candidate == 0 {
		o.Candidate = -1 // refused by Validate
	}
	return o.complete(getter)
}

// Validate checks the candidate number.
func (o *CancelOptions) Validate() error {
	if o.Candidate < 0 {
		return WithHint(fmt.Errorf("--candidate %d: expected a candidate number of 1 or more", o.Candidate),
			"`kubectl dgdr status NAME` lists the candidates (c1, c2, ...)")
	}
	return nil
}

// Run cancels the run, or marks the candidate skipped.
func (o *CancelOptions) Run(ctx context.Context) error {
	c := o.cluster
	d, err := c.getDGDR(ctx, o.Name)
	if err != nil {
		return err
	}
	gen := max(d.Generation, 1)
	profiling := d.Generation > d.Status.ObservedGeneration || d.Status.Phase == "" ||
		d.Status.Phase == v1alpha1.PhasePending || d.Status.Phase == v1alpha1.PhaseProfiling
	if !profiling {
		return WithHint(fmt.Errorf("DGDR %s is not profiling: run %d is %s", d.Name, gen, d.Status.Phase),
			"nothing to cancel; `kubectl dgdr history %s%s` lists its runs", d.Name, nsFlag(d.Namespace))
	}
	if o.Candidate > 0 {
		return o.skipCandidate(ctx, d)
	}
	job := &batchv1.Job{}
	name := profilingJobName(d)
	switch err := c.client.Get(ctx, client.ObjectKey{Namespace: d.Namespace, Name: name}, job); {
	case apierrors.IsNotFound(err):
		job = nil
	case err != nil:
		return apiError(fmt.Errorf("reading the profiling Job %s: %w", name, err), "")
	}
	if job != nil && v1alpha1.JobDGDRUID(job) == d.UID {
		err := c.client.Delete(ctx, job, client.Preconditions{UID: &job.UID}, client.PropagationPolicy(metav1.DeletePropagationBackground))
		if err != nil && !apierrors.IsNotFound(err) {
			return apiError(fmt.Errorf("deleting the profiling Job %s: %w", name, err), "")
		}
		fmt.Fprintf(o.Out, "job.batch/%s deleted\n", name)
	}
	ref := lifecycle.Ref{NamespacedName: client.ObjectKeyFromObject(d), UID: d.UID, Generation: gen}
	if lifecycle.IsNewRun(d, gen) {
		// The run's profiler never recorded it: record it started, then cancelled.
		if _, err := lifecycle.StartRun(ctx, c.client, ref, lifecycle.RunStart{JobName: name, Strategy: d.Spec.SearchStrategy, Now: metav1.Now()}); err != nil && !lifecycle.IsTransitionError(err) {
			return apiError(err, "")
		}
	}
	msg := fmt.Sprintf("run %d cancelled by kubectl dgdr cancel; kubectl dgdr rerun %s starts another", gen, d.Name)
	if _, err := lifecycle.MarkCancelled(ctx, c.client, ref, msg); err != nil {
		if lifecycle.IsTransitionError(err) {
			return WithHint(fmt.Errorf("run %d of DGDR %s ended before it could be cancelled: %w", gen, d.Name, err), "`kubectl dgdr status %s%s` shows how", d.Name, nsFlag(d.Namespace))
		}
		return apiError(err, "")
	}
	fmt.Fprintf(o.Out, "dynamographdeploymentrequest.nvidia.com/%s: run %d cancelled\n", d.Name, gen)
	return nil
}

// skipCandidate adds the candidate to the annotation the thorough search reads between its steps.
func (o *CancelOptions) skipCandidate(ctx context.Context, d *v1alpha1.DynamoGraphDeploymentRequest) error {
	if d.Spec.SearchStrategy != v1alpha1.SearchThorough {
		return WithHint(fmt.Errorf("DGDR %s runs a %s search, which deploys no candidates", d.Name, d.Spec.SearchStrategy),
			"drop --candidate to stop the run")
	}
	skip, err := v1alpha1.ParseSkipCandidates(d.Annotations[v1alpha1.AnnotationSkipCandidates])
	if err != nil {
		skip = nil // the webhook refuses a bad value; one set around it is replaced
	}
	patch := client.MergeFromWithOptions(d.DeepCopy(), client.MergeFromWithOptimisticLock{})
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	d.Annotations[v1alpha1.AnnotationSkipCandidates] = v1alpha1.FormatSkipCandidates(append(skip, o.Candidate))
	if err := o.cluster.client.Patch(ctx, d, patch); err != nil {
		return apiError(fmt.Errorf("marking candidate c%d of DGDR %s to be skipped: %w", o.Candidate, d.Name, err), "run the command again")
	}
	fmt.Fprintf(o.Out, "dynamographdeploymentrequest.nvidia.com/%s: candidate c%d of run %d is skipped at the search's next step\n", d.Name, o.Candidate, d.Generation)
	return nil
}

// HistoryOptions lists a DGDR's runs.
type HistoryOptions struct {
	clusterOptions
	Name   string
	Output string
	// Diff, when set, is the run whose DGD diff is printed instead of the table.
	Diff int64
}

// NewCmdHistory is `kubectl dgdr history NAME`.
func NewCmdHistory(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &HistoryOptions{clusterOptions: clusterOptions{IOStreams: streams}}
	cmd := &cobra.Command{
		Use:   "history NAME",
		Short: "List a DGDR's profiling runs with their picks and the change in throughput",
		Long: `List the profiling runs of a DynamoGraphDeploymentRequest, newest first (the last 10): the run
(its generation), when it started, how it ended, the configuration it picked with its predicted (rapid)
or measured (thorough) throughput, and the change from the previous run with a pick. --diff RUN prints
how that run's apply (autoApply or promote) changed the DGD: a unified diff from the previous DGD.`,
		Example: `  kubectl dgdr history qwen
  kubectl dgdr history qwen --diff 3
  kubectl dgdr history qwen -o json`,
		Args:              exactName,
		ValidArgsFunction: completeDGDRNames(getter, 1),
		RunE:              runCommand(getter, o),
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", "table", "Output format: table, json or yaml")
	cmd.Flags().Int64Var(&o.Diff, "diff", 0, "Print the DGD diff recorded when this run's DGD was applied")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Complete takes the name and builds the client.
func (o *HistoryOptions) Complete(getter genericclioptions.RESTClientGetter, _ *cobra.Command, args []string) error {
	o.Name = args[0]
	return o.complete(getter)
}

// Validate checks the output format.
func (o *HistoryOptions) Validate() error {
	if !slices.Contains([]string{"table", "json", "yaml"}, o.Output) {
		return WithHint(fmt.Errorf("unsupported output format %q", o.Output), "use -o table, json or yaml")
	}
	return nil
}

// Run prints the runs.
func (o *HistoryOptions) Run(ctx context.Context) error {
	d, err := o.cluster.getDGDR(ctx, o.Name)
	if err != nil {
		return err
	}
	if o.Diff != 0 {
		return writeRunDiff(o.Out, d, o.Diff)
	}
	runs := d.Status.Runs
	if runs == nil {
		runs = []v1alpha1.RunRecord{}
	}
	if o.Output == "json" || o.Output == "yaml" {
		return printObject(o.Out, o.Output, runs)
	}
	if len(runs) == 0 {
		fmt.Fprintf(o.ErrOut, "DGDR %s has no recorded runs yet (run %d's profiler has not started)\n", d.Name, d.Generation)
		return nil
	}
	return writeHistory(o.Out, runs, time.Now())
}

// writeRunDiff prints the diff recorded by run gen's apply of the DGD.
func writeRunDiff(w io.Writer, d *v1alpha1.DynamoGraphDeploymentRequest, gen int64) error {
	r := d.Status.Run(gen)
	if r == nil {
		return WithHint(fmt.Errorf("DGDR %s has no record of run %d", d.Name, gen),
			"`kubectl dgdr history %s%s` lists the runs", d.Name, nsFlag(d.Namespace))
	}
	a := r.Applied
	if a == nil {
		return WithHint(fmt.Errorf("run %d of DGDR %s has not applied a DGD", gen, d.Name),
			"without autoApply, `kubectl dgdr promote %s%s` applies it", d.Name, nsFlag(d.Namespace))
	}
	when := ""
	if a.Time != nil {
		when = " at " + a.Time.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "# run %d: DGD %s applied by %s%s\n", gen, a.DGDName, a.By, when)
	switch {
	case a.Diff == "":
		_, err := fmt.Fprintln(w, "# no change from the previous DGD")
		return err
	case a.DiffTruncated:
		fmt.Fprintf(w, "# cut at %d bytes; kubectl dgdr export %s shows the whole DGD\n", v1alpha1.MaxDGDDiff, d.Name)
	}
	_, err := io.WriteString(w, a.Diff)
	return err
}

// writeHistory is the table of runs (newest first), each pick's throughput compared with the next older
// run that picked something.
func writeHistory(w interface{ Write([]byte) (int, error) }, runs []v1alpha1.RunRecord, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSTARTED\tOUTCOME\tPICK\tTOKENS/S\tCHANGE\tMESSAGE")
	for i, r := range runs {
		started := "<unknown>"
		if r.StartTime != nil {
			started = age(*r.StartTime, now) + " ago"
		}
		outcome := string(r.Outcome)
		if r.Outcome == v1alpha1.RunRunning {
			outcome = "Running"
		}
		pick, tput, change := "<none>", "<none>", ""
		if p := r.Pick; p != nil {
			pick = p.Summary
			kind := "predicted"
			if p.Measured {
				kind = "measured"
			}
			tput = fmt.Sprintf("%.0f %s", p.Throughput, kind)
			for _, older := range runs[i+1:] {
				if older.Pick != nil && older.Pick.Throughput > 0 {
					change = fmt.Sprintf("%+.1f%% vs run %d", 100*(p.Throughput-older.Pick.Throughput)/older.Pick.Throughput, older.Generation)
					break
				}
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Generation, started, outcome, pick, tput, change, r.Message)
	}
	return tw.Flush()
}
