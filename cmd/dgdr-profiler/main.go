// Command dgdr-profiler is the profiling Job's entrypoint: it walks one DGDR through its lifecycle.
// `dgdr-profiler drift` is the adaptation CronJob's: one drift evaluation (drift.go).
// It runs in-cluster, or anywhere with KUBECONFIG set.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/profiler"
	"github.com/dgdr-dev/dgdr/internal/version"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "drift" {
		os.Exit(drift(os.Args[2:]))
	}
	var (
		namespace  = flag.String("namespace", "", "namespace of the DGDR (required)")
		name       = flag.String("name", "", "name of the DGDR (required)")
		deployWait = flag.Duration("deploy-wait", 10*time.Minute, "how long to wait for an auto-applied DGD to become ready (0: do not wait)")
		poll       = flag.Duration("poll-interval", 5*time.Second, "how often to check readiness while waiting")
		deadline   = flag.Duration("deadline", 0, "thorough search: stop measuring this long after the start (0: the profiling Job's activeDeadlineSeconds less 3 minutes, read from the Job)")
		dgdrWait   = flag.Duration("dgdr-wait", 2*time.Minute, "how long to wait for the DGDR to be stored before giving up (the Job is created during its admission)")
		uid        = flag.String("uid", "", "UID of the DGDR create the Job was made for (the webhook passes it): the Job is claimed only for the stored DGDR of that UID, and deleted when none appears within --dgdr-wait")
		generation = flag.Int64("generation", 0, "the DGDR generation (run) the Job profiles (the webhook passes it): the run stops, recorded Superseded, when a newer one is stored (0: the stored one)")
		job        = flag.String("job", os.Getenv("DGDR_PROFILING_JOB"), "the profiling Job this runs in (default $DGDR_PROFILING_JOB, else the name the webhook gives the Job of --uid)")
	)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	log := zap.New(zap.UseFlagOptions(&zapOpts)).WithName("dgdr-profiler")
	if *namespace == "" || *name == "" {
		fmt.Fprintln(os.Stderr, "error: --namespace and --name are required (hint: the profiling Job passes them; run dgdr-profiler --namespace NS --name DGDR)")
		os.Exit(2)
	}
	log.Info("starting", "version", version.String(), "dgdr", *namespace+"/"+*name)

	c, err := connect()
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := profiler.Options{
		Namespace: *namespace, Name: *name, Client: c, DeployWait: *deployWait, PollInterval: *poll,
		ModelPath: os.Getenv("DGDR_MODEL_PATH"), Log: log, DGDRWait: *dgdrWait, JobName: *job, UID: types.UID(*uid),
		Generation: *generation,
	}
	if *deadline > 0 {
		opts.Thorough.Deadline = time.Now().Add(*deadline)
	}
	err = profiler.Run(ctx, opts)
	if errors.Is(err, profiler.ErrNotAdmitted) {
		fmt.Fprintf(os.Stderr, "error: %v (hint: nothing to profile; create the DGDR again if it was refused)\n", err)
		os.Exit(1)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v (hint: the Job retries; kubectl dgdr status %s -n %s shows what was recorded)\n", err, *name, *namespace)
		os.Exit(1)
	}
}

// connect is the client both modes use.
func connect() (client.Client, error) {
	cfg, err := ctrlconfig.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("no cluster configuration: %w (hint: run in-cluster or set KUBECONFIG)", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: lifecycle.Scheme()})
	if err != nil {
		return nil, fmt.Errorf("connecting to the API server: %w", err)
	}
	return c, nil
}
