package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/internal/testenv"
)

// kubectl runs the kubectl of the envtest assets with the admin kubeconfig.
func (c *cluster) kubectl(t *testing.T, assets string, args ...string) string {
	t.Helper()
	out, err := c.kubectlErr(assets, args...)
	must(t, err, "kubectl %s", strings.Join(args, " "))
	return out
}

func (c *cluster) kubectlErr(assets string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(assets, "kubectl"), append([]string{"--kubeconfig", c.kubeconfig}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// copyTree copies the manifests to dst, so the certificates the install needs are not written into the
// checkout.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
}

// install does what the README's Install section tells a user without cert-manager: a CA and the
// webhook's certificate in manifests/overlays/manual-tls, `kubectl apply -k` of that overlay, and the
// profiler's kit in each namespace that creates DGDRs. It also installs Dynamo's DGD CRD (the stand-in
// operator serves it) and labels the node the way GPU feature discovery would.
func (c *cluster) install(t *testing.T, root, assets string) {
	began := time.Now()
	man := filepath.Join(t.TempDir(), "manifests")
	must(t, copyTree(filepath.Join(root, "manifests"), man), "copying manifests/")
	webhookCA, err := newCA("dgdr-webhook-ca")
	must(t, err, "making the webhook's CA")
	overlay := filepath.Join(man, "overlays", "manual-tls")
	_, _, err = webhookCA.writeIssued(overlay, "tls", "dgdr-webhook.dgdr-system.svc", nil,
		[]string{"dgdr-webhook.dgdr-system.svc", "dgdr-webhook.dgdr-system.svc.cluster.local"})
	must(t, err, "issuing the webhook's certificate")
	must(t, os.WriteFile(filepath.Join(overlay, "ca.crt"), webhookCA.certPEM, 0o644), "writing ca.crt")
	out := c.kubectl(t, assets, "apply", "-k", overlay)
	t.Logf("kubectl apply -k manifests/overlays/manual-tls:\n%s", strings.TrimSpace(out))

	crd := testenv.DynamoCRD(t)
	if err := c.client.Create(t.Context(), crd); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("installing the DGD CRD: %v", err)
	}

	c.waitFor(t, "the webhook's Deployment available with 2 ready replicas", 3*time.Minute, func() (bool, error) {
		d := &appsv1.Deployment{}
		if err := c.client.Get(t.Context(), types.NamespacedName{Namespace: "dgdr-system", Name: "dgdr-webhook"}, d); err != nil {
			return false, err
		}
		if d.Status.ReadyReplicas == 2 && d.Status.UpdatedReplicas == 2 {
			return true, nil
		}
		return false, fmt.Errorf("ready %d/2: %s", d.Status.ReadyReplicas, c.podTrouble(t.Context(), "dgdr-system"))
	}, "kubelet", "containerd")
	c.timed("install: webhook ready", began)
}

// profilerNamespace makes namespace ns with Pod Security's restricted level enforced and, unless without,
// applies manifests/profiler-namespace there as the README says.
func (c *cluster) profilerNamespace(t *testing.T, root, assets, ns string, without bool) {
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/warn": "restricted",
	}}}
	must(t, c.client.Create(t.Context(), nsObj), "creating namespace %s", ns)
	if without {
		return
	}
	kit := filepath.Join(t.TempDir(), "profiler-namespace")
	must(t, copyTree(filepath.Join(root, "manifests", "profiler-namespace"), kit), "copying manifests/profiler-namespace")
	// The README: set namespace: in its kustomization.yaml.
	k, err := os.ReadFile(filepath.Join(kit, "kustomization.yaml"))
	must(t, err, "reading the kit")
	k2 := strings.Replace(string(k), "\nnamespace: default\n", "\nnamespace: "+ns+"\n", 1)
	if k2 == string(k) {
		t.Fatalf("manifests/profiler-namespace/kustomization.yaml: expected a line 'namespace: default' to set")
	}
	must(t, os.WriteFile(filepath.Join(kit, "kustomization.yaml"), []byte(k2), 0o644), "writing the kit")
	c.kubectl(t, assets, "apply", "-k", kit)
}

// podTrouble says why the pods of ns are not ready: each pod's phase, waiting reasons and last events.
func (c *cluster) podTrouble(ctx context.Context, ns string) string {
	pods, err := c.clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "\n  pod %s: %s", p.Name, p.Status.Phase)
		for _, cs := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
			if w := cs.State.Waiting; w != nil {
				fmt.Fprintf(&b, " [%s waiting: %s %s]", cs.Name, w.Reason, w.Message)
			}
			if term := cs.LastTerminationState.Terminated; term != nil {
				fmt.Fprintf(&b, " [%s last exit %d %s: %s]", cs.Name, term.ExitCode, term.Reason, strings.TrimSpace(term.Message))
			}
			if !cs.Ready {
				fmt.Fprintf(&b, " [%s not ready, restarts %d]", cs.Name, cs.RestartCount)
			}
		}
	}
	evs, err := c.clientset.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err == nil {
		items := evs.Items
		if len(items) > 8 {
			items = items[len(items)-8:]
		}
		for _, e := range items {
			if e.Type != corev1.EventTypeNormal {
				fmt.Fprintf(&b, "\n  event %s/%s: %s %s", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
			}
		}
	}
	return b.String()
}

// labelGPUNode labels the node as GPU feature discovery labels an 8×H200 node: the webhook and the
// profiler read the cluster's GPUs from these labels. No pod here asks for a GPU: the stand-in operator
// runs the simulated engine, which needs none.
func (c *cluster) labelGPUNode(t *testing.T) {
	patch := []byte(`{"metadata":{"labels":{"nvidia.com/gpu.product":"NVIDIA-H200","nvidia.com/gpu.count":"8","nvidia.com/gpu.present":"true"}}}`)
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}
	must(t, c.client.Patch(t.Context(), n, client.RawPatch(types.MergePatchType, patch)), "labelling the node")
}
