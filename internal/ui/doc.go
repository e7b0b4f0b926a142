// Package ui serves the dgdr web UI from the plugin itself: one page (embedded HTML, CSS and vanilla
// JS, nothing fetched from the internet) that shows a DGDR's request, phase timeline, Pareto front and
// candidates, and exports or deploys a chosen configuration through the same code as
// `kubectl dgdr export` and `kubectl dgdr promote`. It reaches the cluster only through the Cluster it
// is given (the user's kubeconfig); nothing runs in the cluster.
//
// Whoever can use the page can deploy with the user's credentials, so it answers only the browser
// that opened the printed URL. That URL carries a one-time sign-in token (/login?token=...), exchanged
// once for an HttpOnly, SameSite=Strict session cookie holding a separate secret that every other
// request needs. The server listens on loopback unless explicitly allowed otherwise, refuses requests
// whose Host is not the address served (DNS rebinding) or whose Origin is another site, and the one
// state-changing request (POST deploy) must also carry the page's per-run token in the X-DGDR-Token
// header with a JSON body (which a cross-site form or fetch cannot send without a preflight this
// server never answers).
package ui
