package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// KubeControllerManager is the kube-controller-manager binary in KUBEBUILDER_ASSETS, built beside
// kube-apiserver (`make envtest-assets`).
const KubeControllerManager = "kube-controller-manager"

// startGarbageCollector runs kube-controller-manager against the test API server with only its garbage
// collector, and waits until it collects: a ConfigMap owned by a UID that does not exist is deleted. Tests
// of owner references need it: envtest runs no controllers.
func startGarbageCollector(t testing.TB, e *Env) {
	t.Helper()
	bin := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), KubeControllerManager)
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no %s in KUBEBUILDER_ASSETS=%s: run `make envtest-assets` first", KubeControllerManager, os.Getenv("KUBEBUILDER_ASSETS"))
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := &SyncBuffer{}
	cmd := exec.CommandContext(ctx, bin,
		"--kubeconfig="+e.Kubeconfig,
		"--controllers=garbagecollector",
		"--leader-elect=false",
		"--secure-port=0",
		"--concurrent-gc-syncs=5",
		"--v=1",
	)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting %s: %v", bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("kube-controller-manager output (last 4000 bytes):\n%s", tail(out.String(), 4000))
		}
	})

	probe := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: "testenv-gc-probe", Namespace: "default",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "testenv-gc-absent", UID: "00000000-0000-0000-0000-000000000000"}},
	}}
	if err := e.Client.Create(t.Context(), probe); err != nil {
		t.Fatalf("creating the garbage-collector probe: %v", err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		err := e.Client.Get(t.Context(), types.NamespacedName{Namespace: "default", Name: probe.Name}, &corev1.ConfigMap{})
		if apierrors.IsNotFound(err) {
			return
		}
		select {
		case <-done:
			t.Fatalf("kube-controller-manager exited: %s", tail(out.String(), 4000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the garbage collector did not delete a ConfigMap with a dangling owner within 90s: %v\n%s", err, tail(out.String(), 4000))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("...%s", s[len(s)-n:])
}
