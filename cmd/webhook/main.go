// Command dgdr-webhook serves the DynamoGraphDeploymentRequest admission webhook (see internal/webhook).
package main

import (
	"flag"
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/dgdr-dev/dgdr/internal/webhook"
)

func main() {
	// SetupSignalHandler cancels on SIGTERM/SIGINT; the manager then drains in-flight requests.
	if err := webhook.Main(ctrl.SetupSignalHandler(), flag.CommandLine, os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "dgdr-webhook: %v\n", err)
		os.Exit(1)
	}
}
