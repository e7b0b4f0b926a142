// Package testenv starts a real control plane (etcd + kube-apiserver built from source by
// hack/install-assets.sh) for the tests: the project's DGDR CRD, the real Dynamo DGD CRD,
// and optionally the project's admission webhooks served from the test process.
//
// The binaries come from KUBEBUILDER_ASSETS, defaulting to $HOME/.cache/envtest-assets (where
// `make envtest-assets` puts them). A missing control plane fails the test: nothing is skipped.
package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/yaml"

	"github.com/dgdr-dev/dgdr/internal/repo"
	"github.com/dgdr-dev/dgdr/internal/scheme"
)

// Options shape the control plane.
type Options struct {
	// WithoutDynamoCRD leaves the DGD CRD out (to test what happens on a cluster without Dynamo).
	WithoutDynamoCRD bool
	// MutatingWebhooks and ValidatingWebhooks are installed with their clientConfig rewritten by envtest
	// to the in-process server; Register adds the handlers to that server. All three go together.
	// Register gets the admin config too, so a test can give the handlers a client with the webhook's own
	// identity (rest.ImpersonationConfig) and so exercise its RBAC.
	MutatingWebhooks   []*admissionregistrationv1.MutatingWebhookConfiguration
	ValidatingWebhooks []*admissionregistrationv1.ValidatingWebhookConfiguration
	Register           func(s webhook.Server, cfg *rest.Config, c client.Client)
	// GarbageCollector starts kube-controller-manager with only its garbage collector (envtest runs no
	// controllers), for tests of what owner references clean up.
	GarbageCollector bool
	// WithoutOwnerReferencesPermissionEnforcement leaves out the admission plugin that is on by default
	// here (as on OpenShift): setting blockOwnerDeletion needs update on the owner's finalizers.
	WithoutOwnerReferencesPermissionEnforcement bool
}

// Env is a running control plane.
type Env struct {
	Config *rest.Config
	Client client.Client
	Scheme *runtime.Scheme
	// Kubeconfig is a file with a system:masters user, for kubectl and the plugin.
	Kubeconfig string
	// WebhookServer is the in-process server when webhooks were requested.
	WebhookServer webhook.Server
	// Env is the underlying envtest environment.
	Env *envtest.Environment
	// Cancel stops the webhook server (to test what happens when it is unreachable).
	Cancel context.CancelFunc
}

// Scheme is the scheme the tests' clients use (the same as the binaries').
func Scheme() *runtime.Scheme { return scheme.New() }

// Start runs a control plane for the duration of the test.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatalf("finding the envtest assets: %v", err)
		}
		t.Setenv("KUBEBUILDER_ASSETS", filepath.Join(home, ".cache", "envtest-assets"))
	}
	if _, err := os.Stat(filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kube-apiserver")); err != nil {
		t.Fatalf("no kube-apiserver in KUBEBUILDER_ASSETS=%s: run `make envtest-assets` first", os.Getenv("KUBEBUILDER_ASSETS"))
	}

	root := RepoRoot(t)
	crds := []*apiextensionsv1.CustomResourceDefinition{
		LoadCRD(t, filepath.Join(root, "manifests", "crd", "nvidia.com_dynamographdeploymentrequests.yaml")),
	}
	if !opts.WithoutDynamoCRD {
		crds = append(crds, DynamoCRD(t))
	}
	scheme := Scheme()
	env := &envtest.Environment{
		Scheme:                scheme,
		CRDInstallOptions:     envtest.CRDInstallOptions{CRDs: crds, Scheme: scheme},
		ErrorIfCRDPathMissing: true,
		WebhookInstallOptions: envtest.WebhookInstallOptions{
			MutatingWebhooks:   opts.MutatingWebhooks,
			ValidatingWebhooks: opts.ValidatingWebhooks,
		},
	}
	if !opts.WithoutOwnerReferencesPermissionEnforcement {
		env.ControlPlane.GetAPIServer().Configure().Append("enable-admission-plugins", "OwnerReferencesPermissionEnforcement")
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting the control plane: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		if err := env.Stop(); err != nil {
			t.Logf("stopping the control plane: %v", err)
		}
	})

	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatalf("making a client: %v", err)
	}
	e := &Env{Config: cfg, Client: c, Scheme: scheme, Env: env, Cancel: cancel}

	user, err := env.AddUser(envtest.User{Name: "dgdr-test-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatalf("adding a kubeconfig user: %v", err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatalf("writing a kubeconfig: %v", err)
	}
	e.Kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(e.Kubeconfig, kc, 0o600); err != nil {
		t.Fatalf("writing a kubeconfig: %v", err)
	}

	if opts.GarbageCollector {
		startGarbageCollector(t, e)
	}

	if opts.Register != nil {
		wio := &env.WebhookInstallOptions
		srv := webhook.NewServer(webhook.Options{Host: wio.LocalServingHost, Port: wio.LocalServingPort, CertDir: wio.LocalServingCertDir})
		opts.Register(srv, cfg, c)
		go func() {
			if err := srv.Start(ctx); err != nil {
				t.Logf("webhook server stopped: %v", err)
			}
		}()
		deadline := time.Now().Add(20 * time.Second)
		for srv.StartedChecker()(nil) != nil {
			if time.Now().After(deadline) {
				t.Fatalf("webhook server did not start within 20s")
			}
			time.Sleep(50 * time.Millisecond)
		}
		e.WebhookServer = srv
	}
	return e
}

// RepoRoot finds the module root by walking up to go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// Kubectl is the kubectl built by the envtest script (the image's /usr/bin/kubectl is too old).
func Kubectl(t testing.TB) string {
	t.Helper()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		home, _ := os.UserHomeDir()
		assets = filepath.Join(home, ".cache", "envtest-assets")
	}
	p := filepath.Join(assets, "kubectl")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no kubectl in %s: run `make envtest-assets`", assets)
	}
	return p
}

// LoadCRD reads one CustomResourceDefinition from a YAML file.
func LoadCRD(t testing.TB, path string) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading CRD: %v", err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal(data, crd); err != nil {
		t.Fatalf("parsing CRD %s: %v", path, err)
	}
	return crd
}

// DynamoCRD is the real Dynamo DGD CRD with its conversion webhook removed: no Dynamo operator runs in
// tests, so the API server converts between v1alpha1 and v1beta1 by rewriting apiVersion only
// (strategy None). Objects are validated against the schema of the version they are sent as.
func DynamoCRD(t testing.TB) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	crd := LoadCRD(t, repo.TestPath(t, "dynamo", "crds", "nvidia.com_dynamographdeployments.yaml"))
	crd.Spec.Conversion = &apiextensionsv1.CustomResourceConversion{Strategy: apiextensionsv1.NoneConverter}
	return crd
}

// Must fails the test on err with what was being done.
func Must(t testing.TB, err error, what string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(what, args...), err)
	}
}
