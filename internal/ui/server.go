package ui

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"html/template"
	"io"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

//go:embed assets
var assets embed.FS

// TokenHeader carries the per-run page token on state-changing requests.
const TokenHeader = "X-DGDR-Token"

// LoginPath is where the printed URL signs the browser in: LoginPath?token=T.
const LoginPath = "/login"

// maxBody bounds a POST body: {"pick": N} is all a deploy sends.
const maxBody = 1 << 10

// Cluster is what the page reads and does in a cluster, through the user's kubeconfig. Export and Deploy
// must be exactly `kubectl dgdr export NAME --pick N` and `kubectl dgdr promote NAME --pick N`; pick −1 is
// the selected configuration (the commands without --pick).
type Cluster interface {
	// List returns the namespace's DGDRs.
	List(ctx context.Context) ([]Summary, error)
	// View reads one DGDR and its results.
	View(ctx context.Context, name string) (*View, error)
	// Export returns what `kubectl dgdr export NAME --pick N` prints.
	Export(ctx context.Context, name string, pick int) ([]byte, error)
	// Preview says what Deploy would do, changing nothing: the DGD and its diff against the live one.
	Preview(ctx context.Context, name string, pick int) (*Preview, error)
	// Deploy does what `kubectl dgdr promote NAME --pick N` does.
	Deploy(ctx context.Context, name string, pick int) (*Deployed, error)
}

// Summary is one row of the DGDR list.
type Summary struct {
	Name    string `json:"name"`
	Model   string `json:"model"`
	Backend string `json:"backend"`
	Phase   string `json:"phase"`
	DGDName string `json:"dgdName,omitempty"`
	Created string `json:"created,omitempty"`
}

// Preview is what the Deploy dialog shows before asking for confirmation.
type Preview struct {
	DGDName string `json:"dgdName"`
	// Action is what applying does: created, configured or unchanged.
	Action string `json:"action"`
	// DGD is the DynamoGraphDeployment that would be applied, as YAML.
	DGD string `json:"dgd"`
	// Diff is a unified diff against the DGD in the cluster ("" when there is none or nothing changes).
	Diff string `json:"diff,omitempty"`
	// Command is the equivalent command line.
	Command string `json:"command"`
}

// Deployed is the outcome of Deploy.
type Deployed struct {
	DGDName string `json:"dgdName"`
	// Message is what promote printed ("dynamographdeployment.nvidia.com/NAME created").
	Message string `json:"message"`
	Command string `json:"command"`
}

// Error is an error with the HTTP status the page should get (500 for any other error).
type Error struct {
	Status int
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Options configure a server: exactly one of Plan and Cluster.
type Options struct {
	// Address and Port to listen on; Port 0 picks a free one.
	Address string
	Port    int
	// Plan is the offline search shown by `plan --ui`.
	Plan *View
	// Cluster serves `kubectl dgdr ui`; Namespace is shown, Name is the DGDR the printed URL opens (empty:
	// the list).
	Cluster   Cluster
	Namespace string
	Name      string
	// Token is the per-run page token a deploy sends back in TokenHeader (empty: a random one).
	Token string
	// Login is the one-time sign-in token of the printed URL (empty: a random one).
	Login string
	// AllowRemote lets Serve listen on an address other machines can reach (see Loopback).
	AllowRemote bool
}

// Server is the UI's HTTP handler bound to one address.
type Server struct {
	opts  Options
	token string
	// login is the one-time sign-in token; loginUsed is set by the one exchange it allows.
	login     string
	loginUsed atomic.Bool
	// session is the secret of the one session cookie, named cookie (see sessionCookie).
	session, cookie string
	// hosts are the Host header values accepted; anyHostIP also accepts IP literals with this port
	// (a server on 0.0.0.0 or :: is reached by any of the machine's addresses).
	hosts     []string
	anyHostIP bool
	port      string
	page      *template.Template
	mux       *http.ServeMux
}

// New makes the handler for a server reachable at addr (host:port as listened on).
func New(opts Options, addr string) (*Server, error) {
	if (opts.Plan == nil) == (opts.Cluster == nil) {
		return nil, errors.New("ui: exactly one of a plan and a cluster is needed")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("ui: address %q: %w", addr, err)
	}
	s := &Server{opts: opts, token: opts.Token, login: opts.Login, session: secret(),
		cookie: sessionCookie + port, port: port, hosts: []string{net.JoinHostPort(host, port)}}
	if s.token == "" {
		s.token = secret()
	}
	if s.login == "" {
		s.login = secret()
	}
	ip := net.ParseIP(host)
	switch {
	case ip != nil && ip.IsUnspecified():
		s.anyHostIP = true
		s.hosts = append(s.hosts, net.JoinHostPort("localhost", port))
	case ip != nil && ip.IsLoopback():
		// localhost always names this machine; a rebinding attack needs a name the attacker controls.
		s.hosts = append(s.hosts, net.JoinHostPort("localhost", port))
	}
	s.page, err = template.ParseFS(assets, "assets/index.html")
	if err != nil {
		return nil, fmt.Errorf("ui: parsing the page: %w", err)
	}
	s.routes()
	return s, nil
}

// secret is 32 random bytes, hex (crypto/rand does not fail: it aborts the program if it cannot read).
func secret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Token is the per-run token the page sends back on POST.
func (s *Server) Token() string { return s.token }

func (s *Server) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	m.HandleFunc("GET /{$}", s.index)
	m.HandleFunc("GET "+LoginPath, s.signIn)
	m.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(static)))
	m.HandleFunc("GET /api/plan", s.plan)
	m.HandleFunc("GET /api/dgdrs", s.list)
	m.HandleFunc("GET /api/dgdrs/{name}", s.view)
	m.HandleFunc("GET /api/dgdrs/{name}/export", s.export)
	m.HandleFunc("GET /api/dgdrs/{name}/preview", s.preview)
	m.HandleFunc("POST /api/dgdrs/{name}/deploy", s.deploy)
	s.mux = m
}

// ServeHTTP checks the Host and Origin headers and the session, sets the security headers and routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Only this server's own files run; the page may not be framed (clickjacking the Deploy button).
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	if !s.hostAllowed(r.Host) {
		httpError(w, http.StatusMisdirectedRequest, fmt.Errorf("host %q is not the address this server serves (%s)", r.Host, s.hosts[0]))
		return
	}
	// Browsers send Origin on every cross-origin fetch and every POST; a same-origin GET has none.
	if o := r.Header.Get("Origin"); o != "" {
		if u, err := url.Parse(o); err != nil || u.Scheme != "http" || !strings.EqualFold(u.Host, r.Host) {
			httpError(w, http.StatusForbidden, fmt.Errorf("origin %q is not this server", o))
			return
		}
	}
	if r.URL.Path != LoginPath && !s.signedIn(r) {
		denied(w, r, "not signed in: open the URL the command printed, in this browser")
		return
	}
	s.mux.ServeHTTP(w, r)
}

// sessionCookie prefixes the session cookie's name, which ends with the port: cookies are not kept apart
// by port, and two servers on one machine must not overwrite each other's session. For the same reason
// any other server on this host name receives the cookie too; on loopback that is the user's own.
const sessionCookie = "dgdr-session-"

func (s *Server) signedIn(r *http.Request) bool {
	c, err := r.Cookie(s.cookie)
	return err == nil && subtle.ConstantTimeCompare([]byte(c.Value), []byte(s.session)) == 1
}

// signIn exchanges the one-time token of the printed URL for the session cookie and moves on to the page,
// so the token stays neither in the address bar nor in the history. A browser already signed in is sent
// on without spending anything.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	home := "/"
	if s.opts.Cluster != nil && s.opts.Name != "" {
		home += "?dgdr=" + url.QueryEscape(s.opts.Name)
	}
	if !s.signedIn(r) {
		tok := r.URL.Query().Get("token")
		if tok == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(s.login)) != 1 {
			denied(w, r, "this sign-in URL is not this server's")
			return
		}
		if !s.loginUsed.CompareAndSwap(false, true) {
			denied(w, r, "this sign-in URL was already used; it works once")
			return
		}
		http.SetCookie(w, &http.Cookie{Name: s.cookie, Value: s.session, Path: "/", HttpOnly: true,
			SameSite: http.SameSiteStrictMode,
			// The server speaks plain HTTP (on loopback, unless --allow-remote): a Secure cookie would
			// never come back. Over TLS it would be Secure.
			Secure: r.TLS != nil})
	}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		// A link followed from another site: the browser would not send a SameSite=Strict cookie on a
		// redirect continuing that navigation, so the page moves on by itself (a same-origin navigation).
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		e := html.EscapeString(home)
		fmt.Fprintf(w, `<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=%s"><title>dgdr</title><p>Signed in: <a href="%s">open the dgdr UI</a>.</p>`+"\n", e, e)
		return
	}
	http.Redirect(w, r, home, http.StatusSeeOther)
}

// denied answers 401: JSON for the API, a short page for a browser.
func denied(w http.ResponseWriter, r *http.Request, why string) {
	const fresh = "re-run `kubectl dgdr ui` (or `kubectl dgdr plan --ui`) for a fresh URL"
	if strings.HasPrefix(r.URL.Path, "/api/") {
		httpError(w, http.StatusUnauthorized, fmt.Errorf("%s: %s", why, fresh))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	fmt.Fprintf(w, "<!doctype html><meta charset=\"utf-8\"><title>dgdr: not signed in</title><h1>Not signed in</h1><p>%s.</p><p>The URL kubectl dgdr prints signs in one browser, once: %s.</p>\n",
		html.EscapeString(strings.ToUpper(why[:1])+why[1:]), html.EscapeString(fresh))
}

func (s *Server) hostAllowed(host string) bool {
	for _, h := range s.hosts {
		if strings.EqualFold(host, h) {
			return true
		}
	}
	if !s.anyHostIP {
		return false
	}
	hh, port, err := net.SplitHostPort(host)
	return err == nil && port == s.port && net.ParseIP(hh) != nil
}

// page is what index.html is rendered with.
type page struct {
	Token, Mode, Namespace, Name string
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	p := page{Token: s.token, Mode: string(ModePlan)}
	if s.opts.Cluster != nil {
		// "/" is the list; "/?dgdr=NAME" one DGDR (the URL printed for `ui NAME`).
		p.Mode, p.Namespace, p.Name = string(ModeCluster), s.opts.Namespace, r.URL.Query().Get("dgdr")
	}
	var buf bytes.Buffer
	if err := s.page.Execute(&buf, p); err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) plan(w http.ResponseWriter, _ *http.Request) {
	if s.opts.Plan == nil {
		httpError(w, http.StatusNotFound, errors.New("this server shows DGDRs, not an offline plan"))
		return
	}
	writeJSON(w, s.opts.Plan)
}

// cluster answers 404 in plan mode.
func (s *Server) cluster(w http.ResponseWriter) bool {
	if s.opts.Cluster == nil {
		httpError(w, http.StatusNotFound, errors.New("an offline plan has no cluster: run `kubectl dgdr ui` to see DGDRs"))
		return false
	}
	return true
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	if !s.cluster(w) {
		return
	}
	items, err := s.opts.Cluster.List(r.Context())
	if err != nil {
		sourceError(w, err)
		return
	}
	if items == nil {
		items = []Summary{}
	}
	writeJSON(w, map[string]any{"namespace": s.opts.Namespace, "items": items})
}

func (s *Server) view(w http.ResponseWriter, r *http.Request) {
	if !s.cluster(w) {
		return
	}
	v, err := s.opts.Cluster.View(r.Context(), r.PathValue("name"))
	if err != nil {
		sourceError(w, err)
		return
	}
	writeJSON(w, v)
}

// pick reads ?pick=N (absent: −1, the selected configuration).
func pick(r *http.Request) (int, error) {
	p := r.URL.Query().Get("pick")
	if p == "" {
		return -1, nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < -1 {
		return 0, fmt.Errorf("pick %q: expected a Pareto row number, or -1 for the selected configuration", p)
	}
	return n, nil
}

func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	if !s.cluster(w) {
		return
	}
	n, err := pick(r)
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	name := r.PathValue("name")
	data, err := s.opts.Cluster.Export(r.Context(), name, n)
	if err != nil {
		sourceError(w, err)
		return
	}
	file := name + "-dgd.yaml"
	if n >= 0 {
		file = fmt.Sprintf("%s-pick%d-dgd.yaml", name, n)
	}
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": file}))
	_, _ = w.Write(data)
}

func (s *Server) preview(w http.ResponseWriter, r *http.Request) {
	if !s.cluster(w) {
		return
	}
	n, err := pick(r)
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	p, err := s.opts.Cluster.Preview(r.Context(), r.PathValue("name"), n)
	if err != nil {
		sourceError(w, err)
		return
	}
	writeJSON(w, p)
}

// deployRequest is the body of POST /api/dgdrs/{name}/deploy.
type deployRequest struct {
	Pick *int `json:"pick"`
}

func (s *Server) deploy(w http.ResponseWriter, r *http.Request) {
	if err := s.checkPost(r); err != nil {
		httpError(w, err.Status, err.Err)
		return
	}
	if !s.cluster(w) {
		return
	}
	var body deployRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Pick == nil || *body.Pick < -1 {
		httpError(w, http.StatusBadRequest, errors.New(`expected a body {"pick": N}, N a Pareto row number or -1 for the selected configuration`))
		return
	}
	res, err := s.opts.Cluster.Deploy(r.Context(), r.PathValue("name"), *body.Pick)
	if err != nil {
		sourceError(w, err)
		return
	}
	writeJSON(w, res)
}

// checkPost refuses a state-changing request that did not come from this server's page: it must carry
// the token and a JSON body, and not be cross-site (ServeHTTP already refused a foreign Origin).
func (s *Server) checkPost(r *http.Request) *Error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return &Error{http.StatusUnsupportedMediaType, errors.New("expected Content-Type: application/json")}
	}
	got := r.Header.Get(TokenHeader)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) != 1 {
		return &Error{http.StatusForbidden, fmt.Errorf("missing or wrong %s header: reload the page served by kubectl dgdr", TokenHeader)}
	}
	if sf := r.Header.Get("Sec-Fetch-Site"); sf != "" && sf != "same-origin" {
		return &Error{http.StatusForbidden, fmt.Errorf("cross-site request (Sec-Fetch-Site %s) refused", sf)}
	}
	return nil
}

func writeJSON(w http.ResponseWriter, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(data)
}

// httpError answers {"error": "..."}.
func httpError(w http.ResponseWriter, status int, err error) {
	data, _ := json.Marshal(map[string]string{"error": err.Error()})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

func sourceError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	var e *Error
	if errors.As(err, &e) && e.Status != 0 {
		status = e.Status
	}
	httpError(w, status, err)
}

// Loopback says whether address (a host name or IP to listen on) is reachable from this machine only.
// Other names may resolve to loopback too; they count as remote.
func Loopback(address string) bool {
	if strings.EqualFold(address, "localhost") {
		return true
	}
	ip := net.ParseIP(address)
	return ip != nil && ip.IsLoopback()
}

// Serve listens, reports the sign-in URL through ready, and serves until ctx is done. It refuses an
// address other machines can reach unless opts.AllowRemote.
func Serve(ctx context.Context, opts Options, ready func(url string)) error {
	if !opts.AllowRemote && !Loopback(opts.Address) {
		return fmt.Errorf("ui: address %q is not loopback and remote access was not allowed", opts.Address)
	}
	addr := net.JoinHostPort(opts.Address, strconv.Itoa(opts.Port))
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	s, err := New(opts, lis.Addr().String())
	if err != nil {
		_ = lis.Close()
		return err
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	if ready != nil {
		ready(s.URL())
	}
	select {
	case err := <-done:
		return fmt.Errorf("serving the UI: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("stopping the UI: %w", err)
	}
	return nil
}

// URL is the sign-in address to print: it signs one browser in, once, and opens the page (the DGDR's
// page when a name was given).
func (s *Server) URL() string {
	host := s.hosts[0]
	if s.anyHostIP {
		// A server on every address is reached on this machine through loopback.
		host = net.JoinHostPort("127.0.0.1", s.port)
	}
	return "http://" + host + LoginPath + "?token=" + url.QueryEscape(s.login)
}
