package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/dgdr-dev/dgdr/internal/adaptrun"
	"github.com/dgdr-dev/dgdr/internal/version"
)

// drift is `dgdr-profiler drift --namespace NS --name NAME [--uid UID]`, the adaptation CronJob's command:
// one evaluation (adaptrun.Scheduled). It exits 0 when there was nothing to do, 1 on an error the next
// scheduled run may not repeat, 2 on bad flags.
func drift(args []string) int {
	fs := flag.NewFlagSet("drift", flag.ContinueOnError)
	namespace := fs.String("namespace", "", "namespace of the DGDR (required)")
	name := fs.String("name", "", "name of the DGDR (required)")
	uid := fs.String("uid", "", "UID of the DGDR create the CronJob was made for: another DGDR of the name is left alone")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *namespace == "" || *name == "" {
		fmt.Fprintln(os.Stderr, "error: --namespace and --name are required (hint: the adaptation CronJob passes them; run dgdr-profiler drift --namespace NS --name DGDR)")
		return 2
	}
	log := zap.New(zap.UseFlagOptions(&zapOpts)).WithName("dgdr-profiler-drift").WithValues("dgdr", *namespace+"/"+*name)
	log.Info("starting", "version", version.String())
	c, err := connect()
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := adaptrun.Scheduled(ctx, c, types.NamespacedName{Namespace: *namespace, Name: *name}, types.UID(*uid), log); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v (hint: the next scheduled run tries again; kubectl dgdr drift %s -n %s shows the evaluation)\n", err, *name, *namespace)
		return 1
	}
	return 0
}
