package cli

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// offlineGetter is the RESTClientGetter of tests that must not reach a cluster. Its kubeconfig (namespace
// "offline") names a server that counts every request it gets; the discovery client and the REST mapper,
// which no command takes from the getter, fail the test when asked for.
type offlineGetter struct {
	t        *testing.T
	server   string
	requests atomic.Int32
}

var _ genericclioptions.RESTClientGetter = (*offlineGetter)(nil)

func newOfflineGetter(t *testing.T) *offlineGetter {
	t.Helper()
	g := &offlineGetter{t: t}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.requests.Add(1)
		http.Error(w, "this test runs without a cluster", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	g.server = srv.URL
	return g
}

func (g *offlineGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	cfg := clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"offline": {Server: g.server}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"offline": {}},
		Contexts:       map[string]*clientcmdapi.Context{"offline": {Cluster: "offline", AuthInfo: "offline", Namespace: "offline"}},
		CurrentContext: "offline",
	}
	return clientcmd.NewDefaultClientConfig(cfg, &clientcmd.ConfigOverrides{})
}

func (g *offlineGetter) ToRESTConfig() (*rest.Config, error) {
	return g.ToRawKubeConfigLoader().ClientConfig()
}

func (g *offlineGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	g.t.Error("a command asked the getter for a discovery client")
	return nil, errors.New("no discovery client offline")
}

func (g *offlineGetter) ToRESTMapper() (meta.RESTMapper, error) {
	g.t.Error("a command asked the getter for a REST mapper")
	return nil, errors.New("no REST mapper offline")
}

// TestFlagErrorsOffline runs every command with bad flags or arguments through the command tree with a
// getter whose cluster only counts requests: each must fail with one line and a hint, print nothing on
// stdout, and send no request.
func TestFlagErrorsOffline(t *testing.T) {
	file := func(name string) string { return filepath.Join("testdata", "create", name) }
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown command argument", []string{"version", "extra"}, []string{`unknown command "extra" for "kubectl dgdr version"`, "hint: see `kubectl dgdr version --help`"}},
		{"version output", []string{"version", "-o", "yaml"}, []string{`unsupported output format "yaml" (hint: use -o json or leave -o out)`}},
		{"unknown flag", []string{"status", "qwen", "--frobnicate"}, []string{"unknown flag: --frobnicate (hint: see `kubectl dgdr status --help`)"}},
		{"flag value that does not parse", []string{"promote", "qwen", "--pick", "first"}, []string{`invalid argument "first" for "--pick"`, "hint: see `kubectl dgdr promote --help`"}},

		{"create nothing", []string{"create"}, []string{"no DGDR to create (hint: pass -f FILE, or a NAME with --model MODEL)"}},
		{"create two names", []string{"create", "a", "b"}, []string{"accepts at most 1 arg(s), received 2", "hint: see `kubectl dgdr create --help`"}},
		{"create without model", []string{"create", "x"}, []string{"--model is required (hint: pass a Hugging Face id"}},
		{"create file and name", []string{"create", "x", "-f", file("qwen.yaml")}, []string{"both -f and a NAME were given (hint: name the DGDR in the file's metadata.name, or drop -f)"}},
		{"create file and spec flags", []string{"create", "-f", file("qwen.yaml"), "--isl", "10"}, []string{"--isl cannot be combined with -f (hint: set those fields in the file, or drop -f)"}},
		{"create bad dry-run", []string{"create", "x", "--model", "a/b", "--dry-run=maybe"}, []string{`invalid --dry-run "maybe" (hint: use --dry-run=none, client or server)`}},
		{"create wait with dry-run", []string{"create", "x", "--model", "a/b", "--dry-run=server", "--wait"}, []string{"--wait cannot be combined with --dry-run (hint: drop one of them)"}},
		{"create bad output", []string{"create", "x", "--model", "a/b", "-o", "bogus"}, []string{`unsupported output format "bogus" (hint: use -o yaml, json or name)`}},
		{"create bad name", []string{"create", "My_Model", "--model", "a/b"}, []string{`invalid name "My_Model"`, "hint: use lowercase letters"}},
		{"create bad spec", []string{"create", "x", "--model", "a/b", "--strategy", "fast"}, []string{`spec.searchStrategy: Unsupported value: "fast"`, "hint: fix the spec"}},

		{"get bad output", []string{"get", "-o", "bogus"}, []string{`unsupported output format "bogus"`, "hint: use -o wide, json, yaml, name"}},
		{"get name and all namespaces", []string{"get", "qwen", "-A"}, []string{"a name cannot be combined with -A (hint: drop -A and pick the namespace with -n)"}},
		{"get two names", []string{"get", "a", "b"}, []string{"accepts at most 1 arg(s), received 2", "hint: see `kubectl dgdr get --help`"}},

		{"status without name", []string{"status"}, []string{"expected one DGDR name, got 0 arguments (hint: run `kubectl dgdr status NAME`"}},
		{"results without name", []string{"results"}, []string{"expected one DGDR name, got 0 arguments"}},
		{"results bad output", []string{"results", "qwen", "-o", "wide"}, []string{`unsupported output format "wide" (hint: use -o table, json, yaml or csv)`}},
		{"logs two names", []string{"logs", "a", "b"}, []string{"expected one DGDR name, got 2 arguments"}},
		{"delete without name", []string{"delete"}, []string{"expected one DGDR name, got 0 arguments (hint: run `kubectl dgdr delete NAME`"}},

		{"promote without name", []string{"promote"}, []string{"expected one DGDR name, got 0 arguments"}},
		{"promote negative pick", []string{"promote", "qwen", "--pick", "-2"}, []string{"invalid --pick -2 (hint: use a row number of `kubectl dgdr results qwen`)"}},
		{"promote bad dry-run", []string{"promote", "qwen", "--dry-run", "maybe"}, []string{`invalid --dry-run "maybe" (hint: use --dry-run=none, client or server)`}},
		{"promote wait with dry-run", []string{"promote", "qwen", "--wait", "--dry-run=client"}, []string{"--wait cannot be combined with --dry-run (hint: drop one of them)"}},
		{"promote bad output", []string{"promote", "qwen", "-o", "bogus"}, []string{`unsupported output format "bogus" (hint: use -o yaml, json or name)`}},
		{"export bad api version", []string{"export", "qwen", "--api-version", "nvidia.com/v2"}, []string{`unsupported --api-version "nvidia.com/v2" (hint: use nvidia.com/v1beta1 or nvidia.com/v1alpha1)`}},
		{"export negative pick", []string{"export", "qwen", "--pick", "-5"}, []string{"invalid --pick -5 (hint: use a row number of `kubectl dgdr results qwen`)"}},

		{"ui bad port", []string{"ui", "qwen", "--port", "70000"}, []string{"--port", "70000", "hint:"}},
		{"ui two names", []string{"ui", "a", "b"}, []string{"accepts at most 1 arg(s), received 2"}},
		{"completion unknown shell", []string{"completion", "tcsh"}, []string{`invalid argument "tcsh" for "kubectl dgdr completion"`, "hint: see `kubectl dgdr completion --help`"}},

		{"plan without model", []string{"plan"}, []string{"no model: --model is required (hint: pass --model ORG/NAME"}},
		{"plan bad output", []string{"plan", "--model", "Qwen/Qwen3-8B", "-o", "csv"}, []string{`unsupported output format "csv" (hint: use -o table, -o json or -o yaml)`}},
		{"plan no GPUs", []string{"plan", "--model", "Qwen/Qwen3-8B", "--total-gpus", "0"}, []string{"--total-gpus must be at least 1, got 0 (hint: pass the GPUs the deployment may use)"}},
		{"estimate without input", []string{"estimate"}, []string{"no input: --from-csv is required (hint: pass --from-csv FILE"}},
		{"bench without url", []string{"bench"}, []string{"url is required (hint: see kubectl dgdr bench --help for the flags)"}},
		{"bench bad output", []string{"bench", "--url", "http://127.0.0.1:1", "-o", "xml"}, []string{`unsupported output format "xml" (hint: use -o table, wide, json or yaml)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newOfflineGetter(t)
			var out, errOut bytes.Buffer
			root := newRootCmd(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, g)
			root.SetArgs(tt.args)
			err := root.ExecuteContext(t.Context())
			require.Error(t, err, "kubectl dgdr %s", strings.Join(tt.args, " "))
			var line bytes.Buffer
			PrintError(&line, err)
			assert.Equal(t, 1, strings.Count(line.String(), "\n"), "errors are one line: %q", line.String())
			assert.Contains(t, line.String(), " (hint: ", "every error says what to do")
			for _, w := range tt.want {
				assert.Contains(t, line.String(), w)
			}
			assert.Empty(t, out.String(), "nothing on stdout")
			assert.Zero(t, g.requests.Load(), "no request reached the cluster")
		})
	}
}
