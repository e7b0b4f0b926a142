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
	s, err := New(Options{Plan: PlanView(req, res), Token: "t0k3n", Login: "l0g1n"}, addr)
	require.NoError(t, err)
	return s
}

// signIn exchanges the server's one-time token through host and returns the session cookie, as a
// "Cookie" header for do.
func signIn(t *testing.T, s *Server, host string) map[string]string {
	t.Helper()
	w := do(s, http.MethodGet, LoginPath+"?token="+s.login, host, nil, "")
	require.Equal(t, http.StatusSeeOther, w.Code, w.Body.String())
	cs := w.Result().Cookies()
	require.Len(t, cs, 1)
	return map[string]string{"Cookie": cs[0].Name + "=" + cs[0].Value}
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
			cookie := signIn(t, s, tt.listen)
			for _, path := range []string{"/", "/api/plan", "/assets/app.js", LoginPath + "?token=l0g1n"} {
				w := do(s, http.MethodGet, path, tt.host, cookie, "")
				if path == LoginPath+"?token=l0g1n" && tt.ok {
					assert.Equal(t, http.StatusSeeOther, w.Code, "signed in already")
					continue
				}
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
	good := signIn(t, s, host)
	good["Content-Type"], good[TokenHeader] = "application/json", "t0k3n"
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
		{"no cookie", http.MethodPost, with("Cookie", ""), http.StatusUnauthorized},
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
	cookie := signIn(t, s, host)
	w := do(s, http.MethodGet, "/", host, cookie, "")
	require.Equal(t, http.StatusOK, w.Code)
	assert.Contains(t, w.Body.String(), `<meta name="dgdr-token" content="t0k3n">`)
	assert.Contains(t, w.Body.String(), `<meta name="dgdr-mode" content="plan">`)
	csp := w.Header().Get("Content-Security-Policy")
	assert.Contains(t, csp, "script-src 'self'")
	assert.Contains(t, csp, "frame-ancestors 'none'")
	assert.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"))

	for path, ctype := range map[string]string{"/assets/app.js": "javascript", "/assets/app.css": "text/css"} {
		w := do(s, http.MethodGet, path, host, cookie, "")
		require.Equal(t, http.StatusOK, w.Code, path)
		assert.Contains(t, w.Header().Get("Content-Type"), ctype, path)
	}
	assert.Equal(t, http.StatusNotFound, do(s, http.MethodGet, "/nothing", host, cookie, "").Code)
	assert.Equal(t, http.StatusNotFound, do(s, http.MethodGet, "/api/dgdrs", host, cookie, "").Code, "an offline plan lists no DGDRs")
	assert.Equal(t, http.StatusNotFound, do(s, http.MethodGet, "/api/dgdrs/qwen/export", host, cookie, "").Code)
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
	cookie := signIn(t, s, host)

	w := do(s, http.MethodGet, "/api/plan", host, cookie, "")
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
	assert.Equal(t, ShippedCalibration, v.Calibration)
	assert.Equal(t, res.SLAProbability, v.SLAProbability)
	predicted := 0
	for _, c := range v.Candidates {
		if c.Predicted {
			predicted++
		}
	}
	assert.Equal(t, res.Predicted, predicted, "every costed candidate is on the page")
	body, err := io.ReadAll(do(s, http.MethodGet, "/api/plan", host, cookie, "").Body)
	require.NoError(t, err)
	assert.JSONEq(t, w.Body.String(), string(body), "an offline plan does not change")
}

func TestSignInRequired(t *testing.T) {
	const host = "127.0.0.1:8765"
	s := planServer(t, host)
	other := planServer(t, host) // another run: its cookie has this one's name but not its secret
	routes := []struct{ method, path string }{
		{http.MethodGet, "/"},
		{http.MethodGet, "/?dgdr=qwen"},
		{http.MethodGet, "/assets/app.js"},
		{http.MethodGet, "/assets/app.css"},
		{http.MethodGet, "/assets/index.html"},
		{http.MethodGet, "/nothing"},
		{http.MethodGet, "/api/plan"},
		{http.MethodGet, "/api/dgdrs"},
		{http.MethodGet, "/api/dgdrs/qwen"},
		{http.MethodGet, "/api/dgdrs/qwen/export?pick=0"},
		{http.MethodGet, "/api/dgdrs/qwen/preview?pick=0"},
		{http.MethodPost, "/api/dgdrs/qwen/deploy"},
	}
	cookies := map[string]map[string]string{
		"no cookie":          nil,
		"another run's":      signIn(t, other, host),
		"the token as value": {"Cookie": s.cookie + "=l0g1n"},
		"empty":              {"Cookie": s.cookie + "="},
		"another port's":     {"Cookie": sessionCookie + "9999=" + s.session},
	}
	for _, rt := range routes {
		for name, c := range cookies {
			t.Run(rt.method+" "+rt.path+" "+name, func(t *testing.T) {
				hdr := map[string]string{"Content-Type": "application/json", TokenHeader: "t0k3n"}
				for k, v := range c {
					hdr[k] = v
				}
				w := do(s, rt.method, rt.path, host, hdr, `{"pick":0}`)
				require.Equal(t, http.StatusUnauthorized, w.Code, w.Body.String())
				assert.NotContains(t, w.Body.String(), "t0k3n", "the page token is only in the page")
				assert.Empty(t, w.Result().Cookies())
				if strings.HasPrefix(rt.path, "/api/") {
					var body map[string]string
					require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
					assert.Contains(t, body["error"], "not signed in")
				} else {
					assert.Contains(t, w.Header().Get("Content-Type"), "text/html")
					assert.Contains(t, w.Body.String(), "fresh URL")
				}
			})
		}
	}
}

func TestSignIn(t *testing.T) {
	const host = "127.0.0.1:8765"
	s := planServer(t, host)
	assert.Equal(t, "http://"+host+"/login?token=l0g1n", s.URL())

	for name, target := range map[string]string{
		"no token":     LoginPath,
		"wrong token":  LoginPath + "?token=l0g1m",
		"token prefix": LoginPath + "?token=l0g",
	} {
		w := do(s, http.MethodGet, target, host, nil, "")
		assert.Equal(t, http.StatusUnauthorized, w.Code, name)
		assert.Empty(t, w.Result().Cookies(), name)
	}

	w := do(s, http.MethodGet, LoginPath+"?token=l0g1n", host, nil, "")
	require.Equal(t, http.StatusSeeOther, w.Code)
	assert.Equal(t, "/", w.Header().Get("Location"), "on to the page, without the token")
	cs := w.Result().Cookies()
	require.Len(t, cs, 1)
	c := cs[0]
	assert.Equal(t, "dgdr-session-8765", c.Name, "a cookie per port")
	assert.True(t, c.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, c.SameSite)
	assert.Equal(t, "/", c.Path)
	assert.False(t, c.Secure, "plain HTTP: a Secure cookie would not come back")
	assert.Regexp(t, `^[0-9a-f]{64}$`, c.Value, "32 random bytes")
	assert.NotContains(t, []string{"l0g1n", "t0k3n"}, c.Value, "a secret of its own")
	assert.Contains(t, w.Header().Get("Set-Cookie"), "SameSite=Strict")
	assert.Contains(t, w.Header().Get("Set-Cookie"), "HttpOnly")
	cookie := map[string]string{"Cookie": c.Name + "=" + c.Value}

	t.Run("the cookie opens the page and every API", func(t *testing.T) {
		w := do(s, http.MethodGet, "/", host, cookie, "")
		require.Equal(t, http.StatusOK, w.Code)
		assert.Contains(t, w.Body.String(), `<meta name="dgdr-token" content="t0k3n">`)
		assert.Equal(t, http.StatusOK, do(s, http.MethodGet, "/api/plan", host, cookie, "").Code)
		assert.Equal(t, http.StatusOK, do(s, http.MethodGet, "/assets/app.js", host, cookie, "").Code)
	})

	t.Run("the token works once", func(t *testing.T) {
		w := do(s, http.MethodGet, LoginPath+"?token=l0g1n", host, nil, "")
		assert.Equal(t, http.StatusUnauthorized, w.Code)
		assert.Empty(t, w.Result().Cookies())
		assert.Contains(t, w.Header().Get("Content-Type"), "text/html")
		assert.Contains(t, w.Body.String(), "already used")
		assert.Contains(t, w.Body.String(), "re-run")
		assert.NotContains(t, w.Body.String(), c.Value)
	})

	t.Run("the signed-in browser opening the URL again is sent on", func(t *testing.T) {
		w := do(s, http.MethodGet, LoginPath+"?token=l0g1n", host, cookie, "")
		assert.Equal(t, http.StatusSeeOther, w.Code)
		assert.Empty(t, w.Result().Cookies(), "nothing new issued")
	})

	t.Run("a foreign Origin is refused even with the cookie", func(t *testing.T) {
		hdr := map[string]string{"Origin": "http://attacker.example", "Cookie": cookie["Cookie"]}
		assert.Equal(t, http.StatusForbidden, do(s, http.MethodGet, "/api/plan", host, hdr, "").Code)
		hdr["Origin"] = "http://" + host
		assert.Equal(t, http.StatusOK, do(s, http.MethodGet, "/api/plan", host, hdr, "").Code)
	})

	t.Run("a link followed from another site signs in through a same-origin step", func(t *testing.T) {
		s := planServer(t, host)
		w := do(s, http.MethodGet, LoginPath+"?token=l0g1n", host, map[string]string{"Sec-Fetch-Site": "cross-site"}, "")
		require.Equal(t, http.StatusOK, w.Code)
		assert.Len(t, w.Result().Cookies(), 1)
		assert.Contains(t, w.Body.String(), `<meta http-equiv="refresh" content="0;url=/">`)
	})
}

// Many browsers racing with one URL: exactly one is signed in.
func TestSignInOnce(t *testing.T) {
	const host = "127.0.0.1:8765"
	s := planServer(t, host)
	codes := make(chan int, 32)
	for range cap(codes) {
		go func() { codes <- do(s, http.MethodGet, LoginPath+"?token=l0g1n", host, nil, "").Code }()
	}
	n := map[int]int{}
	for range cap(codes) {
		n[<-codes]++
	}
	assert.Equal(t, map[int]int{http.StatusSeeOther: 1, http.StatusUnauthorized: cap(codes) - 1}, n)
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "127.0.0.2": true, "::1": true, "localhost": true, "LocalHost": true,
		"0.0.0.0": false, "::": false, "": false, "10.0.0.5": false, "192.168.1.20": false,
		"my-laptop.lan": false, "localhost.attacker.example": false,
	} {
		assert.Equal(t, want, Loopback(addr), addr)
	}
}

func TestServeRefusesRemote(t *testing.T) {
	req, res := planSearch(t)
	err := Serve(t.Context(), Options{Plan: PlanView(req, res), Address: "0.0.0.0"}, func(string) { t.Error("served") })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not loopback")
}
