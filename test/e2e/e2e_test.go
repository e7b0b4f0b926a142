// Package e2e runs dgdr on a real single-node Kubernetes built on this machine (`make e2e`): etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler on the host, and containerd, kube-proxy and
// the kubelet in a network namespace of their own; the project's images written here as OCI archives
// (no container engine, nothing pulled); the project installed the way the README says; and a test-only
// stand-in for the Dynamo operator. Each scenario asserts what a user would see.
//
// It needs root and the node's binaries and packages (hack/install-node.sh, which make e2e runs); without
// -e2e the test skips, so `go test ./...` does not start a cluster.
package e2e

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dgdr-dev/dgdr/internal/testenv"
)

var e2eFlag = flag.Bool("e2e", false, "run the end-to-end suite on a single-node cluster (make e2e; needs root)")

func assetsDir(t *testing.T) string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	must(t, err, "finding the envtest assets")
	return filepath.Join(home, ".cache", "envtest-assets")
}

func TestE2E(t *testing.T) {
	if !*e2eFlag {
		t.Skip("the end-to-end suite starts a cluster as root: run `make e2e`")
	}
	assets := assetsDir(t)
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl"} {
		if _, err := os.Stat(filepath.Join(assets, b)); err != nil {
			t.Fatalf("no %s in %s: run `make e2e` (hack/install-node.sh builds it)", b, assets)
		}
	}
	root := testenv.RepoRoot(t)
	began := time.Now()
	bin := buildAll(t, root, t.TempDir())
	t.Logf("built the binaries and images in %s", time.Since(began).Round(time.Second))

	c := startCluster(t, assets)
	for _, tm := range c.timings {
		t.Logf("%-28s %s", tm.what, tm.d.Round(time.Millisecond))
	}
	_ = bin
}
