package webhook

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	certutil "k8s.io/client-go/util/cert"

	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/internal/version"
)

func TestOptionsFlags(t *testing.T) {
	tests := map[string]struct {
		args    []string
		want    func(*Options)
		wantErr string
	}{
		"defaults": {
			want: func(o *Options) {},
		},
		"every flag": {
			args: []string{"--port=10443", "--cert-dir=/certs", "--default-image=registry.local/vllm:1", "--profiler-image=registry.local/dgdr:1",
				"--metrics-bind-address=0", "--health-probe-bind-address=:9000", "--kube-api-qps=50", "--kube-api-burst=80", "--shutdown-delay=0s"},
			want: func(o *Options) {
				*o = Options{Port: 10443, QPS: 50, Burst: 80, CertDir: "/certs", DefaultImage: "registry.local/vllm:1", ProfilerImage: "registry.local/dgdr:1",
					MetricsBindAddress: "0", HealthProbeBindAddress: ":9000"}
			},
		},
		"port out of range":   {args: []string{"--port=70000"}, wantErr: "--port 70000: expected 1 to 65535"},
		"port not a number":   {args: []string{"--port=https"}, wantErr: `invalid value "https" for flag -port`},
		"empty default image": {args: []string{"--default-image="}, wantErr: "--default-image is empty"},
		"empty cert dir":      {args: []string{"--cert-dir="}, wantErr: "--cert-dir is empty"},
		"qps zero":            {args: []string{"--kube-api-qps=0"}, wantErr: "--kube-api-qps 0, --kube-api-burst 400: expected both above 0"},
		"qps not a number":    {args: []string{"--kube-api-qps=fast"}, wantErr: `invalid value "fast" for flag -kube-api-qps`},
		"unknown flag":        {args: []string{"--leader-elect"}, wantErr: "flag provided but not defined: -leader-elect"},
		"negative delay":      {args: []string{"--shutdown-delay=-1s"}, wantErr: "--shutdown-delay -1s: expected 0 or more"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := NewOptions()
			fs := flag.NewFlagSet("dgdr-webhook", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			o.BindFlags(fs)
			err := fs.Parse(tc.args)
			if err == nil {
				err = o.Validate()
			}
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			want := NewOptions()
			tc.want(&want)
			assert.Equal(t, want, o)
		})
	}
	assert.Equal(t, "ghcr.io/dgdr-dev/dgdr:"+version.Version, NewOptions().ProfilerImage, "the profiler image is this build's")
	assert.Equal(t, "nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.3.0", NewOptions().DefaultImage)
	assert.Equal(t, float32(ClientQPS), NewOptions().QPS, "not client-go's default of 5 per second")
}

// TestMainServes runs the binary's entry point against a real API server (found through $KUBECONFIG) with a
// certificate directory, and checks what a cluster sees: readiness, an admission round trip over TLS 1.2+
// without HTTP/2, Prometheus metrics, a reloaded certificate, and a clean stop.
func TestMainServes(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	t.Setenv("KUBECONFIG", env.Kubeconfig)
	certDir := t.TempDir()
	writeCert(t, certDir, "first.dgdr.test")
	port, metrics, health := freePort(t), freePort(t), freePort(t)

	fs := flag.NewFlagSet("dgdr-webhook", flag.ContinueOnError)
	ctx, cancel := testContext(t)
	done := make(chan error, 1)
	go func() {
		done <- Main(ctx, fs, []string{
			"--port", fmt.Sprint(port), "--cert-dir", certDir,
			"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", metrics),
			"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", health),
			"--profiler-image", "registry.local/dgdr:test", "--zap-log-level", "error", "--shutdown-delay", "2s",
		})
	}()

	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", health)
	require.Eventually(t, func() bool {
		resp, err := http.Get(readyz)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "readyz turns 200 once the TLS listener answers")
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", health))
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	addr := fmt.Sprintf("127.0.0.1:%d", port)
	insecure := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}} //nolint:gosec // a test certificate

	// A dry-run CREATE through the mutating path: defaults come back as a JSON patch, and no Job is made
	// (the API server this binary talks to would have it otherwise).
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: types.UID("0001"), Operation: admissionv1.Create, Namespace: "default", Name: "served", DryRun: ptrTrue(),
			Kind:   metav1.GroupVersionKind{Group: "nvidia.com", Version: "v1alpha1", Kind: "DynamoGraphDeploymentRequest"},
			Object: rawJSON(`{"apiVersion":"nvidia.com/v1alpha1","kind":"DynamoGraphDeploymentRequest","metadata":{"name":"served","namespace":"default"},"spec":{"model":"Qwen/Qwen3-0.6B"}}`),
		},
	}
	servedBefore := mutateRequests(t, metrics)
	body, err := json.Marshal(review)
	require.NoError(t, err)
	tr := &http.Transport{TLSClientConfig: insecure, ForceAttemptHTTP2: true}
	hc := &http.Client{Transport: tr}
	resp, err = hc.Post("https://"+addr+MutatePath, "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	assert.Equal(t, "HTTP/1.1", resp.Proto, "HTTP/2 is off even when the client offers it")
	var got admissionv1.AdmissionReview
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	require.NotNil(t, got.Response)
	assert.Equal(t, types.UID("0001"), got.Response.UID)
	assert.True(t, got.Response.Allowed)
	assert.Contains(t, string(got.Response.Patch), `"path":"/spec/image","value":"nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.3.0"`)
	assert.NotContains(t, string(got.Response.Patch), "/metadata", "defaulting touches only spec")

	// TLS older than 1.2 is refused.
	_, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}) //nolint:gosec // the point of the test
	require.Error(t, err)

	// Prometheus metrics include the webhook's request counter (other tests of this process may have
	// counted requests on the same path before: the registry is global).
	assert.Equal(t, servedBefore+1, mutateRequests(t, metrics))

	// A new certificate in the directory is served without a restart.
	assert.Equal(t, "first.dgdr.test", servedCN(t, addr))
	writeCert(t, certDir, "second.dgdr.test")
	require.Eventually(t, func() bool { return servedCN(t, addr) == "second.dgdr.test" }, 30*time.Second, 100*time.Millisecond,
		"the rotated certificate is picked up")

	cancel()
	stopped := time.Now()
	// SIGTERM: it keeps serving for --shutdown-delay (the API server may still send requests here).
	assert.Equal(t, "second.dgdr.test", servedCN(t, addr), "still serving right after the stop")
	select {
	case err := <-done:
		require.NoError(t, err, "Main returns cleanly when its context ends")
		assert.GreaterOrEqual(t, time.Since(stopped), 2*time.Second, "not before --shutdown-delay")
	case <-time.After(60 * time.Second):
		t.Fatal("Main did not stop after its context ended")
	}
}

// TestMainRefusesBadFlags: flag errors come back before anything starts.
func TestMainRefusesBadFlags(t *testing.T) {
	fs := flag.NewFlagSet("dgdr-webhook", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	err := Main(t.Context(), fs, []string{"--port=0"})
	require.ErrorContains(t, err, "--port 0: expected 1 to 65535")

	fs = flag.NewFlagSet("dgdr-webhook", flag.ContinueOnError)
	err = Main(t.Context(), fs, []string{"serve"})
	require.ErrorContains(t, err, `unexpected arguments ["serve"]`)
}

func writeCert(t *testing.T, dir, cn string) {
	t.Helper()
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey(cn, []net.IP{net.ParseIP("127.0.0.1")}, nil)
	require.NoError(t, err)
	// Write both, then rename, so the watcher never sees a certificate without its key.
	for name, data := range map[string][]byte{"tls.key": keyPEM, "tls.crt": certPEM} {
		tmp := filepath.Join(dir, "."+name)
		require.NoError(t, os.WriteFile(tmp, data, 0o600))
		require.NoError(t, os.Rename(tmp, filepath.Join(dir, name)))
	}
	block, _ := pem.Decode(certPEM)
	c, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	require.Equal(t, cn, c.Subject.CommonName[:len(cn)])
}

// servedCN is the common name of the certificate the server presents ("" when the handshake fails).
func servedCN(t *testing.T, addr string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reading the served certificate
	if err != nil {
		return ""
	}
	defer func() { _ = conn.Close() }()
	cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	// client-go names self-signed certificates "<host>@<timestamp>".
	return strings.SplitN(cn, "@", 2)[0]
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// mutateRequests reads controller_runtime_webhook_requests_total for the mutating path with code 200.
func mutateRequests(t *testing.T, metricsPort int) int {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	text, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	prefix := `controller_runtime_webhook_requests_total{code="200",webhook="` + MutatePath + `"} `
	for _, line := range strings.Split(string(text), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			n, err := strconv.Atoi(v)
			require.NoError(t, err)
			return n
		}
	}
	return 0
}
