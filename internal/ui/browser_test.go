package ui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/go-logr/logr/testr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/dgdr-dev/dgdr/internal/calibstore"
	"github.com/dgdr-dev/dgdr/internal/cli"
	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/profiler"
	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/internal/ui"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// chromiumPath finds the browser: $DGDR_CHROMIUM, else Debian's chromium. Missing, the test fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("DGDR_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("headless Chromium is needed for the web UI's browser test and was not found: install it with " +
		"`apt-get install -y chromium` (`make test` does as root) or point DGDR_CHROMIUM at a Chrome or Chromium binary")
	return ""
}

// newBrowser starts headless Chromium with a throwaway profile; it lives as long as the test.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(1400, 2000),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); acancel() })
	require.NoError(t, chromedp.Do(ctx), "starting %s", chromiumPath(t)) // no timeout on the first run: it owns the browser
	return ctx
}

// run runs one action with a timeout.
func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	require.NoError(t, err)
	return v
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	run(t, ctx, chromedp.Steps(steps...))
}

func js[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	return run(t, ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// click clicks an element once the page's layout has settled: a click aimed before a layout shift (the
// details panel changing height moves everything below it) would land on whatever moved there.
func click(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	js[bool](t, ctx, `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`)
	do(t, ctx, chromedp.Click(chromedp.CSS(sel)))
}

// clickToPage clicks a link and waits for the page it opens to load.
func clickToPage(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	js[bool](t, ctx, `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`)
	run(t, ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel))))
}

// waitFor waits until the expression is truthy in the page.
func waitFor(t *testing.T, ctx context.Context, expr string, timeout time.Duration) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(tctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil {
		shot, _ := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		// Kept with `go test -artifacts`.
		path := filepath.Join(t.ArtifactDir(), "page.png")
		_ = os.WriteFile(path, shot, 0o600)
		t.Fatalf("waiting for %s: %v (screenshot: %s; keep it with go test -artifacts)", expr, err, path)
	}
}

// kubectlDGDR runs the plugin in-process and returns its stdout.
func kubectlDGDR(t *testing.T, env *testenv.Env, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	root := cli.NewRootCmd(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	root.SetArgs(append([]string{"--kubeconfig", env.Kubeconfig}, args...))
	require.NoError(t, root.ExecuteContext(t.Context()), "kubectl dgdr %s: %s", strings.Join(args, " "), errOut.String())
	return out.String()
}

// getJSON reads an API path into v through the page, with the browser's session.
func getJSON(t *testing.T, ctx context.Context, path string, v any) {
	t.Helper()
	raw := js[string](t, ctx, fmt.Sprintf(`fetch(%q).then(r => r.ok ? r.text() : Promise.reject(new Error(r.status + ' ' + r.url)))`, path))
	require.NoError(t, json.Unmarshal([]byte(raw), v))
}

// serveUI starts `kubectl dgdr ui ARGS` and returns the URL it printed.
func serveUI(t *testing.T, env *testenv.Env, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &testenv.SyncBuffer{}, &testenv.SyncBuffer{}
	root := cli.NewRootCmd(genericiooptions.IOStreams{In: strings.NewReader(""), Out: out, ErrOut: errOut})
	root.SetArgs(append([]string{"ui", "--kubeconfig", env.Kubeconfig, "--port", "0"}, args...))
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err, "kubectl dgdr ui ends cleanly when interrupted")
		case <-time.After(20 * time.Second):
			t.Error("kubectl dgdr ui did not stop when interrupted")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if line, _, ok := strings.Cut(out.String(), "\n"); ok {
			return line
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("kubectl dgdr ui printed no URL: %s", errOut.String())
	return ""
}

// TestBrowser drives the web UI end to end in real headless Chromium over the DevTools protocol: the
// page served by `kubectl dgdr ui` against a real control plane (internal/testenv) with a DGDR the real
// profiler works on while the page is open.
func TestBrowser(t *testing.T) {
	ctx := newBrowser(t)
	env := testenv.Start(t, testenv.Options{})
	const ns, name = "browser", "qwen"
	for _, n := range []string{ns, "exported"} {
		require.NoError(t, env.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}))
	}
	d := &v1alpha1.DynamoGraphDeploymentRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-32B", Backend: v1alpha1.BackendVLLM,
			Hardware: &v1alpha1.Hardware{GPUType: "h200_sxm", GPUsPerNode: ptr.To[int32](8), TotalGPUs: ptr.To[int32](8)}},
	}
	d.Default("nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.3.0")
	require.NoError(t, env.Client.Create(t.Context(), d))

	url := serveUI(t, env, name, "-n", ns)
	base, _, ok := strings.Cut(url, "login?token=")
	require.True(t, ok, "a sign-in URL: %s", url)
	home := base + "?dgdr=" + name

	// The page opens on a DGDR nobody has profiled yet and follows it live.
	do(t, ctx, chromedp.Navigate(url))
	assert.Equal(t, home, js[string](t, ctx, `location.href`), "signed in, the token gone from the address bar")
	assert.Empty(t, js[string](t, ctx, `document.cookie`), "the session cookie is HttpOnly")
	waitFor(t, ctx, `document.querySelector('#timeline li.current')?.dataset.phase === 'Pending'`, 20*time.Second)
	assert.True(t, js[bool](t, ctx, `document.querySelector('#deploy').disabled`), "nothing to deploy before profiling")
	assert.Equal(t, 0, js[int](t, ctx, `document.querySelectorAll('#chart .pt').length`))
	assert.True(t, js[bool](t, ctx, `document.querySelector('#calibration').hidden`), "no results: the calibration is not known yet")

	require.NoError(t, profiler.Run(t.Context(), profiler.Options{Namespace: ns, Name: name, Client: env.Client, Log: testr.New(t)}))
	waitFor(t, ctx, `document.querySelector('#timeline li.current')?.dataset.phase === 'Ready'`, 20*time.Second)
	waitFor(t, ctx, `document.querySelectorAll('#chart .pt.front').length > 0`, 5*time.Second)

	t.Run("the URL signs in one browser: another one opening it is refused", func(t *testing.T) {
		other := newBrowser(t)
		do(t, other, chromedp.Navigate(url))
		assert.Equal(t, url, js[string](t, other, `location.href`))
		assert.Contains(t, js[string](t, other, `document.body.textContent`), "already used")
		assert.Contains(t, js[string](t, other, `document.body.textContent`), "fresh URL")
		do(t, other, chromedp.Navigate(home))
		assert.Contains(t, js[string](t, other, `document.body.textContent`), "Not signed in")
		assert.Equal(t, http.StatusUnauthorized, js[int](t, other, `fetch('/api/dgdrs/`+name+`').then(r => r.status)`))

		// Without the browser's cookie the API answers nothing either.
		resp, err := http.Get(base + "api/dgdrs/" + name)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	})

	t.Run("a sign-in link followed from another site works", func(t *testing.T) {
		// The step a SameSite=Strict cookie needs after a cross-site navigation, in a real browser.
		url := serveUI(t, env, "-n", ns)
		base, _, _ := strings.Cut(url, "login?token=")
		site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<!doctype html><title>chat</title><a id="link" href="%s">the UI</a>`, url)
		}))
		defer site.Close()
		other := newBrowser(t)
		do(t, other, chromedp.Navigate(site.URL))
		clickToPage(t, other, "#link")
		// The sign-in answer moves on by itself: poll across that navigation, which ends one evaluation.
		want := `location.href === ` + strconv.Quote(base) + ` && document.querySelector('#list-table tbody tr')?.cells[0].textContent === ` + strconv.Quote(name)
		deadline := time.Now().Add(20 * time.Second)
		for {
			tctx, cancel := context.WithTimeout(other, 2*time.Second)
			ok, err := chromedp.Run(tctx, chromedp.Evaluate[bool](want))
			cancel()
			if err == nil && ok {
				break
			}
			require.True(t, time.Now().Before(deadline), "not signed in after following the link: %v, at %s", err, js[string](t, other, `location.href + ' ' + document.body.textContent`))
			time.Sleep(100 * time.Millisecond)
		}
	})

	// What the page was given, and what the cluster holds.
	var view ui.View
	getJSON(t, ctx, "/api/dgdrs/"+name, &view)
	report, err := lifecycle.GetResults(t.Context(), env.Client, d)
	require.NoError(t, err)
	require.NotNil(t, report)
	stored := getDGDR(t, env, ns, name).Status.ProfilingResults

	t.Run("the chart renders every Pareto point", func(t *testing.T) {
		assert.Equal(t, len(report.Pareto), js[int](t, ctx, `document.querySelectorAll('#chart .pt.front').length`))
		predicted := 0
		for _, c := range view.Candidates {
			if c.Predicted {
				predicted++
			}
		}
		assert.Equal(t, predicted, js[int](t, ctx, `document.querySelectorAll('#chart .pt').length`), "dominated and infeasible too")
		assert.Positive(t, js[int](t, ctx, `document.querySelectorAll('#chart .pt.infeasible').length`))
		assert.Equal(t, 1, js[int](t, ctx, `document.querySelectorAll('#chart .sel-ring').length`), "the selected point is marked")
		assert.Equal(t, 1, js[int](t, ctx, `document.querySelectorAll('#chart .limit').length`), "the SLA limit is drawn")
		// The rows with a # are the stored front, numbered as --pick numbers them.
		assert.Equal(t, len(stored.Pareto), js[int](t, ctx, `[...document.querySelectorAll('#cands tbody tr')].filter(r => /^\d+$/.test(r.cells[0].textContent)).length`))
		// Every front point carries its p10–p90 error bars, around the point, which the checkbox hides.
		assert.Equal(t, len(report.Pareto), js[int](t, ctx, `document.querySelectorAll('#chart .errbar').length`))
		assert.True(t, js[bool](t, ctx, `[...document.querySelectorAll('#chart .errbar')].every(b => {
			const p = document.querySelector('#chart .pt[data-i="' + b.dataset.i + '"]').getAttribute('transform').match(/translate\(([^,]+),([^)]+)\)/);
			const x = +p[1], y = +p[2], xb = b.querySelector('.xbar'), yb = b.querySelector('.ybar');
			const lo = (a, c) => Math.min(+a, +c) - 0.5, hi = (a, c) => Math.max(+a, +c) + 0.5;
			return xb && yb && lo(xb.getAttribute('x1'), xb.getAttribute('x2')) <= x && x <= hi(xb.getAttribute('x1'), xb.getAttribute('x2')) &&
				lo(yb.getAttribute('y1'), yb.getAttribute('y2')) <= y && y <= hi(yb.getAttribute('y1'), yb.getAttribute('y2')) &&
				Math.abs(+yb.getAttribute('y1') - +yb.getAttribute('y2')) > 1;
		})`), "each bar brackets its point and has a length")
		click(t, ctx, `#show-intervals`)
		assert.Equal(t, 0, js[int](t, ctx, `document.querySelectorAll('#chart .errbar').length`))
		click(t, ctx, `#show-intervals`)
		// The other view plots TTFT against its limit.
		click(t, ctx, `input[name="chart-view"][value="ttft"]`)
		assert.Equal(t, len(report.Pareto), js[int](t, ctx, `document.querySelectorAll('#chart .errbar .xbar').length`), "TTFT error bars too")
		assert.Contains(t, js[string](t, ctx, `document.querySelector('#chart .limit-label').textContent`), "TTFT")
		assert.Equal(t, len(report.Pareto), js[int](t, ctx, `document.querySelectorAll('#chart .pt.front').length`))
		click(t, ctx, `input[name="chart-view"][value="tput"]`)
	})

	t.Run("the shipped calibration, and the pick's probability of meeting the SLA", func(t *testing.T) {
		assert.Equal(t, "Calibration: shipped (make calibrate)", js[string](t, ctx, calibrationLine))
		assert.Equal(t, "TTFT ≤ 100 ms · ITL ≤ 15.0 ms", js[string](t, ctx, kvValue("#request", "SLA")), "no confidence said at the default")
		require.NotNil(t, report.SLAProbability)
		click(t, ctx, fmt.Sprintf(`#chart .pt[data-i="%d"]`, view.Selected))
		waitFor(t, ctx, fmt.Sprintf(`document.querySelector('#chosen-name')?.textContent === %q`, view.Candidates[view.Selected].Describe), 5*time.Second)
		assert.Equal(t, probabilityText(*report.SLAProbability), js[string](t, ctx, kvValue("#chosen-kv", "P(meets SLA)")))
		// Another point: the search gives the probability of its pick alone.
		other := -1
		for i, c := range view.Candidates {
			if c.Predicted && i != view.Selected {
				other = i
				break
			}
		}
		require.GreaterOrEqual(t, other, 0)
		click(t, ctx, fmt.Sprintf(`#chart .pt[data-i="%d"]`, other))
		waitFor(t, ctx, fmt.Sprintf(`document.querySelector('#chosen-name')?.textContent === %q`, view.Candidates[other].Describe), 5*time.Second)
		assert.Contains(t, js[string](t, ctx, `document.querySelector('#chosen-kv').textContent`), "TTFT", "the details are shown")
		assert.Empty(t, js[string](t, ctx, kvValue("#chosen-kv", "P(meets SLA)")))
	})

	// The point to export and deploy: a stored Pareto point other than the selected one.
	pick := 0
	if int(stored.SelectedConfig.Index) == pick {
		pick = 1
	}
	idx := -1
	for i, c := range view.Candidates {
		if c.Pick != nil && *c.Pick == pick {
			idx = i
		}
	}
	require.GreaterOrEqual(t, idx, 0)
	point := fmt.Sprintf(`#chart .pt[data-i="%d"]`, idx)

	t.Run("hovering a point explains it", func(t *testing.T) {
		infeasible := -1
		for i, c := range view.Candidates {
			if c.Predicted && !c.Config.MeetsSLA && !c.Front {
				infeasible = i
				break
			}
		}
		require.GreaterOrEqual(t, infeasible, 0)
		js[bool](t, ctx, fmt.Sprintf(`document.querySelector('#chart .pt[data-i="%d"]').dispatchEvent(new MouseEvent('mouseover', {bubbles: true}))`, infeasible))
		tip := js[string](t, ctx, `document.querySelector('#tooltip').hidden ? '' : document.querySelector('#tooltip').textContent`)
		assert.Contains(t, tip, view.Candidates[infeasible].Describe)
		assert.Contains(t, tip, "misses")
		assert.Contains(t, tip, view.Candidates[infeasible].Detail, "the reason it is out")
	})

	chosen := func(i int) string {
		return fmt.Sprintf(`document.querySelector('#chosen-name')?.textContent === %q`, view.Candidates[i].Describe)
	}

	t.Run("keyboard: Enter chooses a point, arrows move, Space chooses", func(t *testing.T) {
		do(t, ctx, chromedp.Focus(chromedp.CSS(point)), chromedp.KeyEvent(kb.Enter))
		waitFor(t, ctx, chosen(idx), 5*time.Second)
		assert.Equal(t, "true", js[string](t, ctx, `document.querySelector('`+point+`').getAttribute('aria-pressed')`))
		assert.Equal(t, "true", js[string](t, ctx, fmt.Sprintf(`document.querySelector('#cands tr[data-i="%d"]').getAttribute('aria-selected')`, idx)), "the table follows")
		assert.Contains(t, js[string](t, ctx, `document.querySelector('#cli').textContent`), fmt.Sprintf("kubectl dgdr export %s -n %s --pick %d", name, ns, pick))
		details := js[string](t, ctx, `document.querySelector('#chosen-kv').textContent`)
		c := view.Candidates[idx].Config
		for _, want := range []string{c.Backend, "Replicas" + strconv.Itoa(c.Replicas), fmt.Sprintf("GPUs%d", c.GPUs), "TTFT", "ITL", "tokens/s/GPU"} {
			assert.Contains(t, details, want)
		}
		assert.Equal(t, idx, js[int](t, ctx, `+document.activeElement.dataset.i`), "focus stays on the point")

		do(t, ctx, chromedp.KeyEvent(kb.ArrowRight))
		next := js[int](t, ctx, `+document.activeElement.dataset.i`)
		assert.NotEqual(t, idx, next, "ArrowRight moves to the next point")
		assert.Equal(t, "pt", js[string](t, ctx, `document.activeElement.classList[0]`))
		do(t, ctx, chromedp.KeyEvent(" "))
		waitFor(t, ctx, chosen(next), 5*time.Second)
	})

	t.Run("table: rows are chosen by click and keyboard, headers sort", func(t *testing.T) {
		row := fmt.Sprintf(`#cands tbody tr[data-i="%d"]`, idx)
		click(t, ctx, row)
		waitFor(t, ctx, chosen(idx), 5*time.Second)
		do(t, ctx, chromedp.Focus(chromedp.CSS(row)), chromedp.KeyEvent(kb.ArrowDown))
		next := js[int](t, ctx, `+document.activeElement.dataset.i`)
		assert.NotEqual(t, idx, next)
		do(t, ctx, chromedp.KeyEvent(kb.Enter))
		waitFor(t, ctx, chosen(next), 5*time.Second)

		sorted := func(dir string) string {
			return `document.querySelector('#cands th button[data-key="tpsGPU"]').parentElement.getAttribute('aria-sort') === '` + dir + `'`
		}
		column := `[...document.querySelectorAll('#cands tbody tr')].map(r => +r.cells[7].textContent.replace(/[^0-9.]/g, ''))`
		click(t, ctx, `#cands th button[data-key="tpsGPU"]`)
		waitFor(t, ctx, sorted("ascending"), 5*time.Second)
		assert.IsNonDecreasing(t, js[[]float64](t, ctx, column))
		// Sorting by keyboard: the header buttons are buttons.
		do(t, ctx, chromedp.Focus(chromedp.CSS(`#cands th button[data-key="tpsGPU"]`)), chromedp.KeyEvent(kb.Enter))
		waitFor(t, ctx, sorted("descending"), 5*time.Second)
		assert.IsNonIncreasing(t, js[[]float64](t, ctx, column))

		click(t, ctx, row)
		waitFor(t, ctx, chosen(idx), 5*time.Second)
	})

	t.Run("Export downloads what kubectl dgdr export prints, and the API server accepts it", func(t *testing.T) {
		dir := t.TempDir()
		_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: ptr.To(true)})
		require.NoError(t, err)
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		events := chromedp.BrowserEvents(tctx, browser.DownloadProgress) // subscribed before the click
		click(t, ctx, "#export")
		var file string
		for ev, err := range events {
			require.NoError(t, err, "waiting for the download")
			if ev.State == browser.DownloadProgressStateCompleted {
				file = filepath.Join(dir, ev.GUID)
				break
			}
			require.NotEqual(t, browser.DownloadProgressStateCanceled, ev.State)
		}
		got, err := os.ReadFile(file)
		require.NoError(t, err)
		want := kubectlDGDR(t, env, "export", name, "-n", ns, "--pick", strconv.Itoa(pick))
		assert.Equal(t, want, string(got), "byte for byte")

		obj := map[string]any{}
		require.NoError(t, yaml.Unmarshal(got, &obj))
		u := &unstructured.Unstructured{Object: obj}
		assert.Equal(t, "DynamoGraphDeployment", u.GetKind())
		u.SetNamespace("exported")
		require.NoError(t, env.Client.Create(t.Context(), u), "the real API server with the Dynamo CRD accepts the export")
	})

	// The DGD that deploying the point makes, as the page's preview names it.
	var preview ui.Preview
	getJSON(t, ctx, "/api/dgdrs/"+name+"/preview?pick="+strconv.Itoa(pick), &preview)
	require.NotEmpty(t, preview.DGDName)
	noDGD := func(t *testing.T) {
		t.Helper()
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(lifecycle.DGDGroupVersionKind)
		err := env.Client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: preview.DGDName}, u)
		require.True(t, apierrors.IsNotFound(err), "DGD %s must not exist yet: %v", preview.DGDName, err)
		assert.Equal(t, v1alpha1.PhaseReady, getDGDR(t, env, ns, name).Status.Phase)
	}

	t.Run("no request without the cookie or the token deploys, from another site or from the page", func(t *testing.T) {
		deploy := base + "api/dgdrs/" + name + "/deploy"
		attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<!doctype html><title>attacker</title><script>
const u = %q, body = '{"pick":%d}';
Promise.allSettled([
  fetch(u, {method: 'POST', mode: 'no-cors', headers: {'Content-Type': 'text/plain'}, body}),
  fetch(u, {method: 'POST', mode: 'no-cors', body: new URLSearchParams({pick: '%d'})}),
  fetch(u, {method: 'POST', headers: {'Content-Type': 'application/json', 'X-DGDR-Token': 'guess'}, body}),
]).then(rs => { document.title = 'done ' + rs.map(r => r.status).join(','); });
</script>`, deploy, pick, pick)
		}))
		defer attacker.Close()
		do(t, ctx, chromedp.Navigate(attacker.URL))
		waitFor(t, ctx, `document.title.startsWith('done')`, 20*time.Second)
		noDGD(t)

		do(t, ctx, chromedp.Navigate(url)) // signed in already: on to the page, nothing spent
		assert.Equal(t, home, js[string](t, ctx, `location.href`))
		waitFor(t, ctx, `document.querySelectorAll('#chart .pt.front').length > 0`, 20*time.Second)
		status := js[int](t, ctx, fmt.Sprintf(`fetch(%q, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{"pick":%d}'}).then(r => r.status)`, deploy, pick))
		assert.Equal(t, http.StatusForbidden, status, "the page's own origin still needs the token")
		noDGD(t)
	})

	t.Run("Deploy shows the DGD and its diff, then creates it on the control plane", func(t *testing.T) {
		click(t, ctx, point)
		waitFor(t, ctx, chosen(idx), 5*time.Second)
		click(t, ctx, "#deploy")
		waitFor(t, ctx, `document.querySelector('#deploy-dialog').open && !document.querySelector('#dlg-confirm').disabled`, 30*time.Second)
		dgd := js[string](t, ctx, `document.querySelector('#dlg-dgd').textContent`)
		assert.Contains(t, dgd, "kind: DynamoGraphDeployment")
		assert.Contains(t, dgd, "name: "+preview.DGDName)
		assert.Contains(t, js[string](t, ctx, `document.querySelector('#dlg-summary').textContent`), "creates DynamoGraphDeployment "+preview.DGDName)
		assert.True(t, strings.HasPrefix(js[string](t, ctx, `document.querySelector('#dlg-diff').textContent`), "--- /dev/null"))
		noDGD(t) // the dialog alone changes nothing

		click(t, ctx, "#dlg-confirm")
		waitFor(t, ctx, `!document.querySelector('#deploy-dialog').open`, 30*time.Second)
		assert.Contains(t, js[string](t, ctx, `document.querySelector('#toast').textContent`), "dynamographdeployment.nvidia.com/"+preview.DGDName+" created")
		waitFor(t, ctx, `document.querySelector('#timeline li.current')?.dataset.phase === 'Deploying'`, 20*time.Second)

		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(lifecycle.DGDGroupVersionKind)
		require.NoError(t, env.Client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: preview.DGDName}, live))
		assert.Equal(t, name, live.GetLabels()[v1alpha1.LabelDGDRName])
		after := getDGDR(t, env, ns, name)
		assert.Equal(t, v1alpha1.PhaseDeploying, after.Status.Phase)
		assert.Equal(t, preview.DGDName, after.Status.DGDName)
		// What promote would apply is now there.
		assert.Contains(t, kubectlDGDR(t, env, "promote", name, "-n", ns, "--pick", strconv.Itoa(pick), "--dry-run=server"), " unchanged")
	})

	t.Run("the list shows the namespace's DGDRs and links to each", func(t *testing.T) {
		clickToPage(t, ctx, `#crumbs a`)
		waitFor(t, ctx, `document.querySelector('#list-table tbody tr')?.cells[3].textContent === 'Deploying'`, 20*time.Second)
		assert.Equal(t, name, js[string](t, ctx, `document.querySelector('#list-table tbody tr').cells[0].textContent`))
		clickToPage(t, ctx, `#list-table tbody a`)
		waitFor(t, ctx, `document.querySelector('#timeline li.current')?.dataset.phase === 'Deploying'`, 20*time.Second)
	})

	t.Run("readable in light and dark schemes", func(t *testing.T) {
		for _, scheme := range []string{"light", "dark"} {
			_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
			require.NoError(t, err)
			var got struct {
				Text, Muted, Bg float64
				Marks           []float64
			}
			raw := js[string](t, ctx, contrastJS)
			require.NoError(t, json.Unmarshal([]byte(raw), &got))
			assert.GreaterOrEqual(t, got.Text, 7.0, "%s: body text", scheme)
			assert.GreaterOrEqual(t, got.Muted, 4.5, "%s: secondary text", scheme)
			require.Len(t, got.Marks, 4)
			for i, m := range got.Marks {
				assert.GreaterOrEqual(t, m, 3.0, "%s: TTFT colour t%d against the background", scheme, i+1)
			}
			if scheme == "dark" {
				assert.Less(t, got.Bg, 0.05, "a dark background")
			} else {
				assert.Greater(t, got.Bg, 0.9, "a light background")
			}
		}
	})
}

// TestBrowserCalibration: a DGDR profiled in a namespace with a refit (kubectl dgdr calibrate) and an
// SLA at 90% confidence shows the refit's name as text, the confidence and the pick's probabilities;
// without its search document the page claims neither.
func TestBrowserCalibration(t *testing.T) {
	ctx := newBrowser(t)
	env := testenv.Start(t, testenv.Options{})
	const ns, name = "browser-cal", "qwen"
	require.NoError(t, env.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	m, err := profile.LookupModel("Qwen/Qwen3-32B")
	require.NoError(t, err)
	// Markup in the name: the page must show it as text.
	fit := &calibstore.Fit{Method: ns + "/dgdr-calibration: 3 measured rows <img id=injected src=x>", Rows: 3, Corrections: []profile.Correction{
		{Arch: m.ArchKey(), GPU: "h200_sxm", Backend: "vllm", Mode: profile.ModeAgg, TTFT: 1.2, ITL: 1.1, Rows: 3}}}
	require.NoError(t, calibstore.SaveFit(t.Context(), env.Client, ns, fit))
	d := &v1alpha1.DynamoGraphDeploymentRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.DynamoGraphDeploymentRequestSpec{Model: "Qwen/Qwen3-32B", Backend: v1alpha1.BackendVLLM,
			SLA:      &v1alpha1.SLA{Confidence: ptr.To(0.9)},
			Hardware: &v1alpha1.Hardware{GPUType: "h200_sxm", GPUsPerNode: ptr.To[int32](8), TotalGPUs: ptr.To[int32](8)}},
	}
	d.Default("nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.3.0")
	require.NoError(t, env.Client.Create(t.Context(), d))
	require.NoError(t, profiler.Run(t.Context(), profiler.Options{Namespace: ns, Name: name, Client: env.Client, Log: testr.New(t)}))
	report, err := lifecycle.GetResults(t.Context(), env.Client, d)
	require.NoError(t, err)
	require.NotNil(t, report)
	require.Equal(t, fit.Method, report.Calibration)
	require.NotNil(t, report.SLAProbability)

	url := serveUI(t, env, name, "-n", ns)
	do(t, ctx, chromedp.Navigate(url))
	waitFor(t, ctx, `document.querySelectorAll('#chart .pt').length > 0 && document.querySelector('#chosen-name') !== null`, 20*time.Second)
	assert.Equal(t, "Calibration: "+fit.Method, js[string](t, ctx, calibrationLine))
	assert.Zero(t, js[int](t, ctx, `document.querySelector('#calibration').childElementCount + (document.getElementById('injected') ? 1 : 0)`), "text, not markup")
	assert.Equal(t, "TTFT ≤ 100 ms · ITL ≤ 15.0 ms at 90% confidence", js[string](t, ctx, kvValue("#request", "SLA")))
	assert.Equal(t, probabilityText(*report.SLAProbability), js[string](t, ctx, kvValue("#chosen-kv", "P(meets SLA)")))

	// Without the search document the page shows the stored front and claims no calibration or probability.
	require.NoError(t, env.Client.Delete(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: lifecycle.ResultsConfigMapName(name)}}))
	home, _, _ := strings.Cut(url, "login?token=")
	do(t, ctx, chromedp.Navigate(home+"?dgdr="+name))
	waitFor(t, ctx, `!document.querySelector('#note').hidden && document.querySelector('#chosen-name') !== null`, 20*time.Second)
	assert.Contains(t, js[string](t, ctx, `document.querySelector('#note').textContent`), "is missing")
	assert.True(t, js[bool](t, ctx, `document.querySelector('#calibration').hidden`))
	assert.Contains(t, js[string](t, ctx, `document.querySelector('#chosen-kv').textContent`), "Status", "the pick's details are shown")
	assert.Empty(t, js[string](t, ctx, kvValue("#chosen-kv", "P(meets SLA)")))
}

// calibrationLine is the page's calibration line, empty while hidden.
const calibrationLine = `document.querySelector('#calibration').hidden ? '' : document.querySelector('#calibration').textContent`

// kvValue is the text of the value of key in the definition list sel (empty when there is none).
func kvValue(sel, key string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('%s dt')].find(dt => dt.textContent === %q)?.nextElementSibling.textContent ?? ''`, sel, key)
}

// probabilityText is how the details panel writes the pick's probabilities: whole percentages, half away
// from zero as Intl rounds.
func probabilityText(p profile.SLAProbability) string {
	return fmt.Sprintf("TTFT %.0f%% · ITL %.0f%% (from the p10–p90 intervals)", math.Round(100*p.TTFT), math.Round(100*p.ITL))
}

// contrastJS measures WCAG contrast ratios of the page's colours against its background.
const contrastJS = `(() => {
  const lin = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
  const lum = (css) => { const [r, g, b] = css.match(/[\d.]+/g).map(Number); return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b); };
  const ratio = (a, b) => (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  const root = getComputedStyle(document.documentElement), body = getComputedStyle(document.body);
  const probe = (v) => { const d = document.createElement('div'); d.style.color = 'var(' + v + ')'; document.body.append(d); const c = getComputedStyle(d).color; d.remove(); return c; };
  const bg = lum(body.backgroundColor);
  return JSON.stringify({
    Text: ratio(lum(body.color), bg),
    Muted: ratio(lum(probe('--muted')), bg),
    Bg: bg,
    Marks: ['--t1', '--t2', '--t3', '--t4'].map((v) => ratio(lum(probe(v)), bg)),
  });
})()`

func getDGDR(t *testing.T, env *testenv.Env, ns, name string) *v1alpha1.DynamoGraphDeploymentRequest {
	t.Helper()
	d := &v1alpha1.DynamoGraphDeploymentRequest{}
	require.NoError(t, env.Client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, d))
	return d
}
