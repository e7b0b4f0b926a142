package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// timeoutError is a transport timeout as net/http reports one (a TLS handshake that took too long).
type timeoutError struct{}

func (timeoutError) Error() string   { return "net/http: TLS handshake timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// TestAPIErrorHints checks that apiError picks the hint by the error's type, wherever it sits in the chain,
// and never by its text.
func TestAPIErrorHints(t *testing.T) {
	const (
		dgdHint         = "the DynamoGraphDeployment CRD is not installed"
		dgdrHint        = "the DGDR CRD is not installed in this cluster"
		rbacHint        = "your user lacks the RBAC permission"
		credentialsHint = "your credentials were refused"
		unreachableHint = "the cluster is unreachable"
		fallbackHint    = "the command's own hint"
	)
	get := func(err error) error {
		return &url.Error{Op: "Get", URL: "https://cluster.example:6443/apis", Err: err}
	}
	dial := func(err error) error { return get(&net.OpError{Op: "dial", Net: "tcp", Err: err}) }
	// realDial is the error of a real dial whose context has ended: net's own timeout or cancellation error.
	realDial := func(ctx context.Context) error {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", "127.0.0.1:1")
		if conn != nil {
			conn.Close()
		}
		require.Error(t, err)
		return get(err)
	}
	expired, cancelExpired := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancelExpired()
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	notFound := apierrors.NewNotFound(schema.GroupResource{}, "")
	dgdr := schema.GroupResource{Group: v1alpha1.GroupVersion.Group, Resource: v1alpha1.Resource}

	tests := []struct {
		name string
		err  error
		want string
	}{
		{"the DGD kind is not served", &meta.NoKindMatchError{GroupKind: lifecycle.DGDGroupVersionKind.GroupKind(), SearchedVersions: []string{"v1beta1"}}, dgdHint},
		{"the DGD's group/version is not served (aggregated discovery)", fmt.Errorf("applying DGD x: %w",
			&apiutil.ErrResourceDiscoveryFailed{lifecycle.DGDGroupVersionKind.GroupVersion(): notFound}), dgdHint},
		{"the DGDR kind is not served", &meta.NoKindMatchError{GroupKind: dgdrGVK.GroupKind(), SearchedVersions: []string{"v1alpha1"}}, dgdrHint},
		{"the DGDR's group/version is not served", fmt.Errorf("listing DGDRs: %w",
			&apiutil.ErrResourceDiscoveryFailed{dgdrGVK.GroupVersion(): notFound}), dgdrHint},
		{"a kind named like the DGD but in another group is not the DGD", &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "example.com", Kind: "DynamoGraphDeploymentX"}}, dgdrHint},
		{"forbidden", fmt.Errorf("reading: %w", apierrors.NewForbidden(dgdr, "qwen", errors.New("no"))), rbacHint},
		{"unauthorized", apierrors.NewUnauthorized("token expired"), credentialsHint},
		{"connection refused", dial(&os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}), unreachableHint},
		{"connection refused without the dial error around it", fmt.Errorf("watching: %w", syscall.ECONNREFUSED), unreachableHint},
		{"unknown host", dial(&net.DNSError{Err: "no such host", Name: "cluster.example", IsNotFound: true}), unreachableHint},
		{"a dial that timed out (it matches context.DeadlineExceeded too)", realDial(expired), unreachableHint},
		{"a TLS handshake that timed out", get(timeoutError{}), unreachableHint},
		{"an unknown certificate authority is not unreachability", get(x509.UnknownAuthorityError{}), fallbackHint},
		{"the command's own deadline", get(context.DeadlineExceeded), fallbackHint},
		{"an interrupt, even during a dial", realDial(cancelled), fallbackHint},
		{"text alone classifies nothing", errors.New("proxy: connection refused: no such host: i/o timeout: DynamoGraphDeployment no matches for kind"), fallbackHint},
		{"an error with a hint keeps it", WithHint(apierrors.NewUnauthorized("x"), "mine"), "mine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := apiError(tt.err, fallbackHint)
			require.ErrorIs(t, err, tt.err, "the cause stays in the chain")
			var h *HintError
			require.ErrorAs(t, err, &h)
			assert.Contains(t, h.Hint, tt.want)
		})
	}
	assert.NoError(t, apiError(nil, fallbackHint))
	plain := errors.New("plain")
	assert.Same(t, plain, apiError(plain, ""), "no hint applies and none was given")
}

// TestUnreachableCluster runs a command against an address where nothing listens: the dial's error, through
// client-go and controller-runtime, is one line with the unreachable hint.
func TestUnreachableCluster(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://%s"}}]
users: [{name: u, user: {}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`, addr), 0o600))

	h := &harness{t: t, env: &testenv.Env{Kubeconfig: kubeconfig}}
	for _, args := range [][]string{{"get"}, {"status", "qwen"}} {
		r := h.fail(args...)
		assert.Contains(t, r.errLine, "connection refused")
		assert.Contains(t, r.errLine, "(hint: the cluster is unreachable; check it with `kubectl cluster-info` and --kubeconfig/--context)")
	}
}

// TestDGDRCRDMissing runs commands on a control plane whose DGDR CRD was removed.
func TestDGDRCRDMissing(t *testing.T) {
	h := newHarness(t, testenv.Options{WithoutDynamoCRD: true})
	crd := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: dgdrGroupResource.String()}}
	require.NoError(t, h.env.Client.Delete(t.Context(), crd))
	dc, err := discovery.NewDiscoveryClientForConfig(h.env.Config)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := dc.ServerResourcesForGroupVersion(dgdrGVK.GroupVersion().String())
		return apierrors.IsNotFound(err)
	}, 30*time.Second, 100*time.Millisecond, "the API server stops serving %s", dgdrGVK.GroupVersion())

	for _, args := range [][]string{{"get"}, {"status", "qwen"}, {"promote", "qwen"}} {
		r := h.fail(args...)
		assert.Contains(t, r.errLine, "(hint: the DGDR CRD is not installed in this cluster: install dgdr first", "kubectl dgdr %v", args)
	}
}
