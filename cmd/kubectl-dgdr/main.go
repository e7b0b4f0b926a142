// Command kubectl-dgdr is the kubectl plugin for DynamoGraphDeploymentRequests.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	// Auth providers named in kubeconfigs, as kubectl registers them: oidc works; gcp and azure say how to
	// move to their exec plugins. exec credential plugins need no import (client-go runs them).
	_ "k8s.io/client-go/plugin/pkg/client/auth"

	"github.com/dgdr-dev/dgdr/internal/cli"
)

func main() {
	// The first SIGINT or SIGTERM cancels the commands' context (wait stops, bench prints what it has, ui
	// shuts down); stop then restores the default, so a second one kills at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	err := cli.NewRootCmd(streams).ExecuteContext(ctx)
	stop()
	if err != nil {
		cli.PrintError(os.Stderr, err)
		os.Exit(1)
	}
}
