// Package promtest runs a real Prometheus (Debian's package) on loopback and a fake Dynamo frontend
// for it to scrape, for the adaptation tests of pkg/adapt and the plugin's drift command.
package promtest

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dgdr-dev/dgdr/pkg/adapt"
)

// prometheusBinary finds the prometheus binary: $DGDR_PROMETHEUS or PATH. Missing, the test fails as
// root (make test installs it) and skips, saying what to install, otherwise.
func prometheusBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("DGDR_PROMETHEUS"); p != "" {
		return p
	}
	p, err := exec.LookPath("prometheus")
	if err == nil {
		return p
	}
	if os.Geteuid() == 0 {
		t.Fatal("prometheus is not installed: run `make prometheus` (apt-get install prometheus)")
	}
	t.Skip("prometheus is not installed and this is not root: run `sudo make prometheus` (or set DGDR_PROMETHEUS) to run the adaptation tests")
	return ""
}

// freePort is a loopback port nothing listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start runs Debian's Prometheus on loopback, scraping targets (host:port) every scrapeInterval, and
// returns its base URL once it is ready; it is stopped when the test ends.
func Start(t testing.TB, scrapeInterval time.Duration, targets ...string) string {
	t.Helper()
	bin := prometheusBinary(t)
	dir := t.TempDir()
	var quoted []string
	for _, tg := range targets {
		quoted = append(quoted, fmt.Sprintf("%q", tg))
	}
	cfg := fmt.Sprintf("global:\n  scrape_interval: %s\n  evaluation_interval: %s\nscrape_configs:\n- job_name: frontend\n  static_configs:\n  - targets: [%s]\n",
		scrapeInterval, scrapeInterval, strings.Join(quoted, ", "))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600))
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	log, err := os.Create(filepath.Join(dir, "prometheus.log"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("prometheus log:\n%s", b)
		}
	})
	base := "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 100*time.Millisecond, "prometheus did not become ready")
	return base
}

// Traffic is one model's requests per scrape: histograms of input and output lengths (bucket upper
// bounds and per-bucket counts) and constant TTFT and ITL.
type Traffic struct {
	Model           string
	Bounds          []float64
	ISL, OSL        []float64
	TTFTSec, ITLSec float64
}

// Frontend is a fake Dynamo frontend: every scrape of /metrics adds one more round of each model's
// traffic, so that rates and increases over any window have the traffic's shape.
func Frontend(t testing.TB, models ...Traffic) *httptest.Server {
	t.Helper()
	var scrapes atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		k := float64(scrapes.Add(1))
		var b strings.Builder
		hist := func(name, model string, bounds, counts []float64) {
			fmt.Fprintf(&b, "# TYPE %s histogram\n", name)
			cum, sum := 0.0, 0.0
			for i, c := range counts {
				cum += c * k
				sum += c * k * bounds[i]
				fmt.Fprintf(&b, "%s_bucket{model=%q,le=%q} %g\n", name, model, fmt.Sprint(bounds[i]), cum)
			}
			fmt.Fprintf(&b, "%s_bucket{model=%q,le=\"+Inf\"} %g\n%s_sum{model=%q} %g\n%s_count{model=%q} %g\n",
				name, model, cum, name, model, sum, name, model, cum)
		}
		for _, m := range models {
			n := 0.0
			for _, c := range m.ISL {
				n += c
			}
			hist(adapt.MetricInputTokens, m.Model, m.Bounds, m.ISL)
			hist(adapt.MetricOutputTokens, m.Model, m.Bounds, m.OSL)
			hist(adapt.MetricTTFT, m.Model, []float64{m.TTFTSec}, []float64{n})
			hist(adapt.MetricITL, m.Model, []float64{m.ITLSec}, []float64{n})
			fmt.Fprintf(&b, "# TYPE %s counter\n%s{model=%q} %g\n", adapt.MetricRequests, adapt.MetricRequests, m.Model, n*k)
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte(b.String()))
	}))
	t.Cleanup(srv.Close)
	return srv
}
