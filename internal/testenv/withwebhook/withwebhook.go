// Package withwebhook starts the test control plane with dgdr's admission webhook installed as
// manifests/base/webhooks.yaml declares it and served by the real handlers in the test process.
// (It is a package of its own because internal/webhook's tests use testenv: testenv cannot import it.)
package withwebhook

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/internal/webhook"
)

// ProfilerImage is the profiler image the tests' webhook puts in Jobs.
const ProfilerImage = "ghcr.io/dgdr-dev/dgdr:test"

// Options are testenv options with the webhook configurations and handlers.
func Options(t testing.TB) testenv.Options {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "manifests", "base", "webhooks.yaml"))
	if err != nil {
		t.Fatalf("reading the webhook configurations: %v", err)
	}
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	r := yaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for _, into := range []any{m, v} {
		doc, err := r.Read()
		if err != nil {
			t.Fatalf("reading manifests/base/webhooks.yaml: %v", err)
		}
		if err := sigsyaml.UnmarshalStrict(doc, into); err != nil {
			t.Fatalf("parsing manifests/base/webhooks.yaml: %v", err)
		}
	}
	return testenv.Options{
		MutatingWebhooks:   []*admissionregistrationv1.MutatingWebhookConfiguration{m},
		ValidatingWebhooks: []*admissionregistrationv1.ValidatingWebhookConfiguration{v},
		Register: func(s ctrlwebhook.Server, _ *rest.Config, c client.Client) {
			webhook.Register(s, &webhook.Handler{Client: c, DefaultImage: webhook.DefaultImage, ProfilerImage: ProfilerImage})
		},
	}
}

// Start is testenv.Start with the webhook.
func Start(t testing.TB) *testenv.Env {
	t.Helper()
	return testenv.Start(t, Options(t))
}
