// Command pause is make e2e's pod sandbox image (containerd's sandbox_image): the node cannot pull
// registry.k8s.io/pause, so test/e2e builds this into an image of its own. It holds the pod's namespaces
// by doing nothing until SIGINT or SIGTERM, then exits 0. Test support only; never shipped.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}
