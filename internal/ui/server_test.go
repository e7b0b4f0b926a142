package ui

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dgdr-dev/dgdr/pkg/hw"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// planSearch runs the real rapid search over an embedded model.
func planSearch(t *testing.T) (profile.SearchRequest, profile.SearchResult) {
	t.Helper()
	m, err := profile.LookupModel("Qwen/Qwen3-32B")
	require.NoError(t, err)
	g, err := hw.Lookup("h200_sxm")
	require.NoError(t, err)
	req := profile.SearchRequest{Model: m, GPU: g, Workload: profile.Workload{ISL: 512, OSL: 128},
		SLA: profile.SLA{TTFTMs: 100, ITLMs: 15}, TotalGPUs: 8}
	res, err := profile.Search(t.Context(), req)
	require.NoError(t, err)
	return req, res
}

func planServer(t *testing.T, addr string) *Server {
	t.Helper()
	req, res := planSearch(t)
	s, err := New(Options{Plan: PlanView(req, res), Token: "t0k3n"}, addr)
	require.NoError(t, err)
	return s
}

// do sends one request to the handler with the given Host header.
func do(s http.Handler, method, target, host string, hdr map[string]string, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.Host = host
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

func TestHostHeader(t *testing.T) {
	tests := []struct {
		listen, host string
		ok           bool
	}{
		{"127.0.0.1:8765", "127.0.0.1:8765", true},
		{"127.0.0.1:8765", "localhost:8765", true},
		{"127.0.0.1:8765", "LOCALHOST:8765", true},
		{"127.0.0.1:8765", "attacker.example:8765", false}, // DNS rebinding: the attacker's name, our address
		{"127.0.0.1:8765", "127.0.0.1:9999", false},
		{"127.0.0.1:8765", "127.0.0.1", false},
		{"127.0.0.1:8765", "", false},
		{"[::1]:8765", "[::1]:8765", true},
		{"[::1]:8765", "localhost:8765", true},
		{"10.0.0.5:8765", "10.0.0.5:8765", true},
		{"10.0.0.5:8765", "localhost:8765", false}, // not listening on loopback
		{"0.0.0.0:8765", "192.168.1.20:8765", true},
		{"0.0.0.0:8765", "[fe80::1]:8765", true},
		{"0.0.0.0:8765", "localhost:8765", true},
		{"0.0.0.0:8765", "my-laptop.lan:8765", false},
		{"0.0.0.0:8765", "192.168.1.20:80", false},
	}
	for _, tt := range tests {
		t.Run(tt.listen+" "+tt.host, func(t *testing.T) {
			s := planServer(t, tt.listen)
			for _, path := range []string{"/", "/api/plan", "/assets/app.js"} {
				w := do(s, http.MethodGet, path, tt.host, nil, "")
				if tt.ok {
					assert.Equal(t, http.StatusOK, w.Code, path)
				} else {
					assert.Equal(t, http.StatusMisdirectedRequest, w.Code, path)
					assert.NotContains(t, w.Body.String(), "t0k3n")
				}
			}
		})
	}
}

func TestDeployRefusals(t *testing.T) {
	const host = "127.0.0.1:8765"
	s := planServer(t, host)
	good := map[string]string{"Content-Type": "application/json", TokenHeader: "t0k3n"}
	with := func(k, v string) map[string]string {
		h := map[string]string{}
		for a, b := range good {
			h[a] = b
		}
		if v == "" {
			delete(h, k)
		} else {
			h[k] = v
		}
		return h
	}
	tests := []struct {
		name   string
		method string
		hdr    map[string]string
		status int
	}{
		{"GET", http.MethodGet, good, http.StatusMethodNotAllowed},
		{"PUT", http.MethodPut, good, http.StatusMethodNotAllowed},
		{"no content type", http.MethodPost, with("Content-Type", ""), http.StatusUnsupportedMediaType},
		{"form post", http.MethodPost, with("Content-Type", "application/x-www-form-urlencoded"), http.StatusUnsupportedMediaType},
		{"text/plain (a no-cors fetch)", http.MethodPost, with("Content-Type", "text/plain"), http.StatusUnsupportedMediaType},
		{"no token", http.MethodPost, with(TokenHeader, ""), http.StatusForbidden},
		{"wrong token", http.MethodPost, with(TokenHeader, "t0k3m"), http.StatusForbidden},
		{"token prefix", http.MethodPost, with(TokenHeader, "t0k"), http.StatusForbidden},
		{"other origin", http.MethodPost, with("Origin", "http://attacker.example"), http.StatusForbidden},
		{"cross-site fetch", http.MethodPost, with("Sec-Fetch-Site", "cross-site"), http.StatusForbidden},
		// Every check passed: an offline plan has nothing to deploy.
		{"plan mode", http.MethodPost, with("Origin", "http://"+host), http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(s, tt.method, "/api/dgdrs/qwen/deploy", host, tt.hdr, `{"pick":0}`)
			assert.Equal(t, tt.status, w.Code, w.Body.String())
			if tt.status != http.StatusMethodNotAllowed {
				var body map[string]string
				require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
				assert.NotEmpty(t, body["error"])
			}
		})
	}
}

func TestPage(t *testing.T) {
	const host = "127.0.0.1:8765"
	s := planServer(t, host)
	w := do(s, http.MethodGet, "/", host, nil, "")
	require.Equal(t, http.StatusOK, w.Code)
	assert.Contains(t, w.Body.String(), `<meta name="dgdr-token" content="t0k3n">`)
	assert.Contains(t, w.Body.String(), `<meta name="dgdr-mode" content="plan">`)
	csp := w.Header().Get("Content-Security-Policy")
	assert.Contains(t, csp, "script-src 'self'")
	assert.Contains(t, csp, "frame-ancestors 'none'")
	assert.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"))

	for path, ctype := range map[string]string{"/assets/app.js": "javascript", "/assets/app.css": "text/css"} {
		w := do(s, http.MethodGet, path, host, nil, "")
		require.Equal(t, http.StatusOK, w.Code, path)
		assert.Contains(t, w.Header().Get("Content-Type"), ctype, path)
	}
	assert.Equal(t, http.StatusNotFound, do(s, http.MethodGet, "/nothing", host, nil, "").Code)
	assert.Equal(t, http.StatusNotFound, do(s, http.MethodGet, "/api/dgdrs", host, nil, "").Code, "an offline plan lists no DGDRs")
	assert.Equal(t, http.StatusNotFound, do(s, http.MethodGet, "/api/dgdrs/qwen/export", host, nil, "").Code)
}

// The page must work without internet: nothing it loads or links to is outside the server.
func TestAssetsSelfContained(t *testing.T) {
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	n := 0
	err := fs.WalkDir(assets, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		data, err := fs.ReadFile(assets, path)
		if err != nil {
			return err
		}
		text := strings.ReplaceAll(string(data), "http://www.w3.org/2000/svg", "") // a namespace name, not fetched
		assert.Empty(t, external.FindAllString(text, -1), path)
		assert.NotContains(t, text, "@import", path)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 3, n, "index.html, app.css and app.js")
}

func TestPlanEndpoint(t *testing.T) {
	const host = "127.0.0.1:8765"
	req, res := planSearch(t)
	s, err := New(Options{Plan: PlanView(req, res)}, host)
	require.NoError(t, err)
	assert.Len(t, s.Token(), 64, "32 random bytes, hex")
	other, err := New(Options{Plan: PlanView(req, res)}, host)
	require.NoError(t, err)
	assert.NotEqual(t, s.Token(), other.Token(), "a token per run")

	w := do(s, http.MethodGet, "/api/plan", host, nil, "")
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
	var v View
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &v))
	assert.Equal(t, ModePlan, v.Mode)
	assert.False(t, v.CanAct)
	assert.Zero(t, v.RefreshMs)
	assert.Equal(t, "Qwen/Qwen3-32B", v.Request.Model)
	assert.Equal(t, "h200_sxm", v.Request.GPU)
	assert.Equal(t, 8, v.Request.TotalGPUs)

	front := 0
	for _, c := range v.Candidates {
		if c.Front {
			front++
		}
		assert.Nil(t, c.Pick, "nothing to pick without a DGDR")
	}
	assert.Equal(t, len(res.Front), front)
	sel, ok := res.SelectedConfig()
	require.True(t, ok)
	require.GreaterOrEqual(t, v.Selected, 0)
	assert.Equal(t, sel, v.Candidates[v.Selected].Config)
	assert.Equal(t, res.Explanation, v.Explanation)
	predicted := 0
	for _, c := range v.Candidates {
		if c.Predicted {
			predicted++
		}
	}
	assert.Equal(t, res.Predicted, predicted, "every costed candidate is on the page")
	body, err := io.ReadAll(do(s, http.MethodGet, "/api/plan", host, nil, "").Body)
	require.NoError(t, err)
	assert.JSONEq(t, w.Body.String(), string(body), "an offline plan does not change")
}
