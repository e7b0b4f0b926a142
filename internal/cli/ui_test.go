package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/profiler"
	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/internal/ui"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// profiledByProfiler creates a DGDR with explicit hardware and runs the real profiler on it: status, the
// results ConfigMap and the stored DGD are what a cluster would hold.
func (h *harness) profiledByProfiler(ns, name string) *v1alpha1.DynamoGraphDeploymentRequest {
	h.t.Helper()
	d := &v1alpha1.DynamoGraphDeploymentRequest{Spec: v1alpha1.DynamoGraphDeploymentRequestSpec{
		Model: "Qwen/Qwen3-32B", Backend: v1alpha1.BackendVLLM,
		Hardware: &v1alpha1.Hardware{GPUType: "h200_sxm", GPUsPerNode: ptr.To[int32](8), TotalGPUs: ptr.To[int32](8)},
	}}
	d.Default("nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.3.0")
	h.dgdr(ns, name, d.Spec, nil)
	testenv.Must(h.t, profiler.Run(h.t.Context(), profiler.Options{Namespace: ns, Name: name, Client: h.env.Client, Log: testr.New(h.t)}), "profiling %s/%s", ns, name)
	got := h.get(ns, name)
	require.Equal(h.t, v1alpha1.PhaseReady, got.Status.Phase)
	return got
}

// uiHandler is the UI's handler over the harness's cluster, as `kubectl dgdr ui -n NS` builds it, with
// every request sent by the browser its URL signed in.
func (h *harness) uiHandler(ns string) http.Handler {
	h.t.Helper()
	flags := genericclioptions.NewConfigFlags(true)
	flags.KubeConfig, flags.Namespace = ptr.To(h.env.Kubeconfig), ptr.To(ns)
	c, err := newCluster(flags, genericiooptions.NewTestIOStreamsDiscard())
	require.NoError(h.t, err)
	s, err := ui.New(ui.Options{Cluster: newUICluster(c), Namespace: ns, Token: "tok", Login: "login"}, uiHost)
	require.NoError(h.t, err)
	w := uiDo(s, http.MethodGet, ui.LoginPath+"?token=login", nil, "")
	require.Equal(h.t, http.StatusSeeOther, w.Code, w.Body.String())
	require.Len(h.t, w.Result().Cookies(), 1)
	return signedIn{s, w.Result().Cookies()[0]}
}

// signedIn sends its session cookie with every request.
type signedIn struct {
	http.Handler
	cookie *http.Cookie
}

func (s signedIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.AddCookie(s.cookie)
	s.Handler.ServeHTTP(w, r)
}

const uiHost = "127.0.0.1:8765"

func uiDo(s http.Handler, method, target string, hdr map[string]string, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.Host = uiHost
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

func TestUIHandlers(t *testing.T) {
	h := newHarness(t, testenv.Options{})
	ns := h.namespace("ui")
	d := h.profiledByProfiler(ns, "qwen")
	h.dgdr(ns, "waiting", v1alpha1.DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-8B"}, nil)
	pareto := d.Status.ProfilingResults.Pareto
	require.Greater(t, len(pareto), 2)
	s := h.uiHandler(ns)

	t.Run("list", func(t *testing.T) {
		w := uiDo(s, http.MethodGet, "/api/dgdrs", nil, "")
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		var got struct {
			Namespace string       `json:"namespace"`
			Items     []ui.Summary `json:"items"`
		}
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
		assert.Equal(t, ns, got.Namespace)
		require.Len(t, got.Items, 2)
		assert.Equal(t, ui.Summary{Name: "qwen", Model: "Qwen/Qwen3-32B", Backend: "vllm", Phase: "Ready", DGDName: d.Status.DGDName, Created: got.Items[0].Created}, got.Items[0])
		assert.Equal(t, "Pending", got.Items[1].Phase)
	})

	t.Run("view", func(t *testing.T) {
		w := uiDo(s, http.MethodGet, "/api/dgdrs/qwen", nil, "")
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		var v ui.View
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &v))
		assert.Empty(t, v.Note, "the results ConfigMap was read")
		assert.True(t, v.CanAct)
		assert.Equal(t, "Ready", v.Phase)
		assert.Equal(t, "h200_sxm", v.Request.GPU)
		assert.Greater(t, v.Predicted, len(pareto))
		picks := 0
		for _, c := range v.Candidates {
			if c.Pick != nil && *c.Pick >= 0 {
				picks++
			}
		}
		assert.Equal(t, len(pareto), picks, "every stored Pareto point can be picked")
		assert.Equal(t, int(d.Status.ProfilingResults.SelectedConfig.Index), *v.Candidates[v.Selected].Pick)

		w = uiDo(s, http.MethodGet, "/api/dgdrs/nope", nil, "")
		assert.Equal(t, http.StatusNotFound, w.Code)
		assert.Contains(t, w.Body.String(), `\"nope\" not found`)
	})

	t.Run("export is kubectl dgdr export byte for byte", func(t *testing.T) {
		for _, pick := range []int{-1, 0, len(pareto) - 1} {
			target, args := "/api/dgdrs/qwen/export", []string{"export", "qwen", "-n", ns}
			if pick >= 0 {
				target += "?pick=" + strconv.Itoa(pick)
				args = append(args, "--pick", strconv.Itoa(pick))
			}
			w := uiDo(s, http.MethodGet, target, nil, "")
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			assert.Contains(t, w.Header().Get("Content-Disposition"), "attachment")
			cli := h.with(t).ok(args...).out
			require.NotEmpty(t, cli)
			assert.Equal(t, cli, w.Body.String(), "pick %d", pick)
		}
		w := uiDo(s, http.MethodGet, "/api/dgdrs/qwen/export?pick="+strconv.Itoa(len(pareto)), nil, "")
		assert.Equal(t, http.StatusConflict, w.Code)
		assert.Contains(t, w.Body.String(), "out of range")
		assert.Contains(t, w.Body.String(), "hint:")
		assert.Equal(t, http.StatusBadRequest, uiDo(s, http.MethodGet, "/api/dgdrs/qwen/export?pick=x", nil, "").Code)
		assert.Equal(t, http.StatusConflict, uiDo(s, http.MethodGet, "/api/dgdrs/waiting/export", nil, "").Code, "no results yet")
	})

	dgdName := func(pick int) string {
		w := uiDo(s, http.MethodGet, "/api/dgdrs/qwen/preview?pick="+strconv.Itoa(pick), nil, "")
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		var p ui.Preview
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
		return p.DGDName
	}
	pick := 1

	t.Run("preview changes nothing", func(t *testing.T) {
		w := uiDo(s, http.MethodGet, "/api/dgdrs/qwen/preview?pick=1", nil, "")
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		var p ui.Preview
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
		assert.Equal(t, "created", p.Action)
		assert.Contains(t, p.DGD, "kind: DynamoGraphDeployment")
		assert.Contains(t, p.DGD, "name: "+p.DGDName)
		assert.True(t, strings.HasPrefix(p.Diff, "--- /dev/null\n+++ dgdr/"+p.DGDName), p.Diff)
		assert.Equal(t, "kubectl dgdr promote qwen --pick 1 -n ui", p.Command)
		assertNoDGD(t, h, ns, p.DGDName)
	})

	t.Run("deploy refused without the token", func(t *testing.T) {
		for name, hdr := range map[string]map[string]string{
			"no token":   {"Content-Type": "application/json"},
			"form":       {"Content-Type": "application/x-www-form-urlencoded", ui.TokenHeader: "tok"},
			"wrong":      {"Content-Type": "application/json", ui.TokenHeader: "guess"},
			"cross-site": {"Content-Type": "application/json", ui.TokenHeader: "tok", "Origin": "http://attacker.example"},
		} {
			w := uiDo(s, http.MethodPost, "/api/dgdrs/qwen/deploy", hdr, `{"pick":1}`)
			assert.Contains(t, []int{http.StatusForbidden, http.StatusUnsupportedMediaType}, w.Code, name)
		}
		assert.Equal(t, http.StatusMethodNotAllowed, uiDo(s, http.MethodGet, "/api/dgdrs/qwen/deploy?pick=1", nil, "").Code)
		assertNoDGD(t, h, ns, dgdName(pick))
		assert.Equal(t, v1alpha1.PhaseReady, h.get(ns, "qwen").Status.Phase)
	})

	t.Run("deploy is kubectl dgdr promote", func(t *testing.T) {
		name := dgdName(pick)
		w := uiDo(s, http.MethodPost, "/api/dgdrs/qwen/deploy", map[string]string{"Content-Type": "application/json", ui.TokenHeader: "tok"}, `{"pick":1}`)
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		var got ui.Deployed
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
		assert.Equal(t, "dynamographdeployment.nvidia.com/"+name+" created", got.Message)
		assert.Equal(t, name, got.DGDName)
		live := h.liveDGD(ns, name)
		assert.Equal(t, "qwen", live.GetLabels()[v1alpha1.LabelDGDRName])
		after := h.get(ns, "qwen")
		assert.Equal(t, v1alpha1.PhaseDeploying, after.Status.Phase)
		assert.Equal(t, name, after.Status.DGDName)
		// The command line now finds nothing to change: the page applied what promote applies.
		r := h.with(t).ok("promote", "qwen", "--pick", "1", "-n", ns, "--dry-run=server")
		assert.Equal(t, "dynamographdeployment.nvidia.com/"+name+" unchanged (server dry run)\n", r.out)

		w = uiDo(s, http.MethodGet, "/api/dgdrs/qwen/preview?pick=1", nil, "")
		require.Equal(t, http.StatusOK, w.Code)
		var p ui.Preview
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
		assert.Equal(t, "unchanged", p.Action)
		assert.Empty(t, p.Diff)
	})
}

func assertNoDGD(t *testing.T, h *harness, ns, name string) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(lifecycle.DGDGroupVersionKind)
	err := h.env.Client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, u)
	assert.True(t, apierrors.IsNotFound(err), "DGD %s/%s must not exist: %v", ns, name, err)
}

// serve runs a serving command (ui, plan --ui) until the test ends and returns the URL it printed, a
// function that stops it, and its stderr.
func serve(t *testing.T, args ...string) (string, func() error, *testenv.SyncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	out, errOut := &testenv.SyncBuffer{}, &testenv.SyncBuffer{}
	root := NewRootCmd(genericiooptions.IOStreams{In: strings.NewReader(""), Out: out, ErrOut: errOut})
	root.SetArgs(args)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	stop := func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			return context.DeadlineExceeded
		}
	}
	t.Cleanup(func() { _ = stop() })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if line, _, ok := strings.Cut(out.String(), "\n"); ok {
			return line, stop, errOut
		}
		select {
		case err := <-done:
			t.Fatalf("kubectl dgdr %s exited before serving: %v; stderr: %s", strings.Join(args, " "), err, errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("kubectl dgdr %s printed no URL; stderr: %s", strings.Join(args, " "), errOut.String())
	return "", nil, nil
}

// signIn opens the printed sign-in URL in a fresh browser (a client with its own cookies) and returns
// it and the server's base URL.
func signIn(t *testing.T, url string) (*http.Client, string) {
	t.Helper()
	base, _, ok := strings.Cut(url, strings.TrimPrefix(ui.LoginPath, "/")+"?token=")
	require.True(t, ok, "a sign-in URL: %s", url)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar}
	code, body := httpGet(t, c, url)
	require.Equal(t, http.StatusOK, code, body)
	return c, base
}

func httpGet(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestUICommand(t *testing.T) {
	h := newHarness(t, testenv.Options{})
	ns := h.namespace("ui-cmd")
	h.dgdr(ns, "qwen", v1alpha1.DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-32B"}, nil)

	t.Run("serves one DGDR on loopback until cancelled", func(t *testing.T) {
		url, stop, _ := serve(t, "ui", "qwen", "-n", ns, "--kubeconfig", h.env.Kubeconfig)
		require.True(t, strings.HasPrefix(url, "http://127.0.0.1:"), url)
		assert.Regexp(t, `/login\?token=[0-9a-f]{64}$`, url)
		base, _, _ := strings.Cut(url, "login?")
		code, _ := httpGet(t, http.DefaultClient, base+"api/dgdrs/qwen")
		assert.Equal(t, http.StatusUnauthorized, code, "nothing without signing in")

		browser, _ := signIn(t, url)
		resp, err := browser.Get(url)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, base+"?dgdr=qwen", resp.Request.URL.String(), "the sign-in URL opens the DGDR's page")
		code, page := httpGet(t, browser, base+"?dgdr=qwen")
		assert.Equal(t, http.StatusOK, code)
		assert.Contains(t, page, `<meta name="dgdr-name" content="qwen">`)
		assert.Contains(t, page, `<meta name="dgdr-namespace" content="ui-cmd">`)
		code, body := httpGet(t, browser, base+"api/dgdrs/qwen")
		assert.Equal(t, http.StatusOK, code)
		assert.Contains(t, body, `"phase":"Pending"`)

		jar, err := cookiejar.New(nil)
		require.NoError(t, err)
		code, body = httpGet(t, &http.Client{Jar: jar}, url)
		assert.Equal(t, http.StatusUnauthorized, code, "another browser with the same URL")
		assert.Contains(t, body, "already used")

		// A page on another name for this address (DNS rebinding) gets nothing.
		req, err := http.NewRequest(http.MethodGet, base+"api/dgdrs/qwen", nil)
		require.NoError(t, err)
		req.Host = "rebound.attacker.example" + strings.TrimPrefix(strings.TrimSuffix(base, "/"), "http://127.0.0.1")
		resp, err = browser.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusMisdirectedRequest, resp.StatusCode)

		require.NoError(t, stop(), "a cancelled context (Ctrl-C) ends the command cleanly")
		_, err = http.Get(base)
		assert.Error(t, err, "nothing listens after it stopped")
	})

	t.Run("without a name the page lists the namespace", func(t *testing.T) {
		url, _, _ := serve(t, "ui", "-n", ns, "--kubeconfig", h.env.Kubeconfig, "--port", "0")
		browser, base := signIn(t, url)
		code, body := httpGet(t, browser, base+"api/dgdrs")
		assert.Equal(t, http.StatusOK, code)
		assert.Contains(t, body, `"name":"qwen"`)
	})

	t.Run("a missing DGDR is an error before serving", func(t *testing.T) {
		r := h.with(t).fail("ui", "nope", "-n", ns)
		assert.Contains(t, r.errLine, `"nope" not found`)
		assert.Empty(t, r.out)
	})

	t.Run("a bad port", func(t *testing.T) {
		r := h.with(t).fail("ui", "qwen", "-n", ns, "--port", "70000")
		assert.Contains(t, r.errLine, "out of range")
	})
}

func TestPlanUI(t *testing.T) {
	url, stop, _ := serve(t, "plan", "--model", "Qwen/Qwen3-32B", "--ui", "--port", "0")
	browser, base := signIn(t, url)
	code, body := httpGet(t, browser, base+"api/plan")
	require.Equal(t, http.StatusOK, code, body)
	var v ui.View
	require.NoError(t, json.Unmarshal([]byte(body), &v))
	assert.Equal(t, ui.ModePlan, v.Mode)
	assert.False(t, v.CanAct, "nothing to export or deploy offline")

	// The same search as `plan -o json`.
	js, _, err := runPlan(t, "--model", "Qwen/Qwen3-32B", "-o", "json")
	require.NoError(t, err)
	var doc profile.Report
	require.NoError(t, json.NewDecoder(bufio.NewReader(strings.NewReader(js))).Decode(&doc))
	front := 0
	for _, c := range v.Candidates {
		if c.Front {
			front++
		}
	}
	assert.Equal(t, len(doc.Pareto), front)
	assert.Equal(t, doc.Explanation, v.Explanation)
	code, _ = httpGet(t, browser, base+"api/dgdrs")
	assert.Equal(t, http.StatusNotFound, code)
	require.NoError(t, stop())
}

// A non-loopback --address needs --allow-remote, checked before anything else (no cluster needed).
func TestUIAddressFlag(t *testing.T) {
	tests := []struct {
		address string
		allow   bool
		err     string
	}{
		{"127.0.0.1", false, ""},
		{"::1", false, ""},
		{"localhost", false, ""},
		{"0.0.0.0", false, `--address "0.0.0.0" is reachable from other machines (hint: pass --allow-remote`},
		{"::", false, "--allow-remote"},
		{"", false, "--allow-remote"},
		{"10.0.0.5", false, "--allow-remote"},
		{"my-laptop.lan", false, "--allow-remote"},
		{"0.0.0.0", true, ""},
		{"10.0.0.5", true, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q allow=%v", tt.address, tt.allow), func(t *testing.T) {
			err := (&ServeFlags{Address: tt.address, AllowRemote: tt.allow}).Validate()
			if tt.err == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			var b strings.Builder
			PrintError(&b, err)
			assert.Contains(t, b.String(), tt.err)
			assert.Equal(t, 1, strings.Count(b.String(), "\n"), "one line")
		})
	}

	t.Run("plan --ui refuses 0.0.0.0 without the flag", func(t *testing.T) {
		out, _, err := runPlan(t, "--model", "Qwen/Qwen3-32B", "--ui", "--address", "0.0.0.0")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "reachable from other machines")
		assert.Empty(t, out, "nothing served")
	})

	t.Run("with --allow-remote it serves and warns", func(t *testing.T) {
		url, stop, errOut := serve(t, "plan", "--model", "Qwen/Qwen3-32B", "--ui", "--port", "0", "--address", "0.0.0.0", "--allow-remote")
		assert.Contains(t, errOut.String(), `Warning: the web UI listens on "0.0.0.0" over plain HTTP: anyone who can reach that address and holds the URL can see this plan.`)
		browser, base := signIn(t, url)
		code, _ := httpGet(t, browser, base+"api/plan")
		assert.Equal(t, http.StatusOK, code)
		require.NoError(t, stop())
	})
}
