package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/dgdr-dev/dgdr/internal/deploy"
	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/ui"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
)

// ServeFlags are the web UI's listening flags, shared by `ui` and `plan --ui`.
type ServeFlags struct {
	Address     string
	Port        int
	Open        bool
	AllowRemote bool
}

// AddFlags registers --address, --port, --open and --allow-remote.
func (s *ServeFlags) AddFlags(f *pflag.FlagSet) {
	f.StringVar(&s.Address, "address", "127.0.0.1", "Address the web UI listens on (loopback: only this machine can reach it)")
	f.IntVar(&s.Port, "port", 0, "Port the web UI listens on (0: a free one)")
	f.BoolVar(&s.Open, "open", false, "Open the web UI in the default browser")
	f.BoolVar(&s.AllowRemote, "allow-remote", false, "Allow an --address other machines can reach: whoever reaches it with the printed URL can use the UI, and deploy")
}

// Validate checks the port, and that a non-loopback address was asked for explicitly.
func (s *ServeFlags) Validate() error {
	if !s.AllowRemote && !ui.Loopback(s.Address) {
		return WithHint(fmt.Errorf("--address %q is reachable from other machines", s.Address), "pass --allow-remote to serve there anyway, or use --address 127.0.0.1")
	}
	if s.Port < 0 || s.Port > 65535 {
		return WithHint(fmt.Errorf("--port %d is out of range", s.Port), "use a port from 1 to 65535, or 0 for a free one")
	}
	return nil
}

// Serve runs the web UI until ctx is cancelled (the root's context: when the process is interrupted),
// printing its URL on stdout.
func (s *ServeFlags) Serve(ctx context.Context, streams genericiooptions.IOStreams, opts ui.Options) error {
	opts.Address, opts.Port, opts.AllowRemote = s.Address, s.Port, s.AllowRemote
	err := ui.Serve(ctx, opts, func(url string) {
		if !ui.Loopback(s.Address) {
			can := "see this plan"
			if opts.Cluster != nil {
				can = "deploy with your credentials"
			}
			fmt.Fprintf(streams.ErrOut, "Warning: the web UI listens on %q over plain HTTP: anyone who can reach that address and holds the URL can %s.\n", s.Address, can)
		}
		fmt.Fprintln(streams.Out, url)
		fmt.Fprintln(streams.ErrOut, "Serving the dgdr web UI; press Ctrl-C to stop.")
		if s.Open {
			if err := ui.OpenBrowser(url); err != nil {
				fmt.Fprintf(streams.ErrOut, "Warning: %v; open the URL yourself\n", err)
			}
		}
	})
	if err != nil {
		return WithHint(err, "pick another --port, or --address 127.0.0.1")
	}
	return nil
}

// UIOptions serves the web UI over the cluster.
type UIOptions struct {
	genericiooptions.IOStreams

	Name  string
	Serve ServeFlags

	cluster *cluster
}

// NewCmdUI is `kubectl dgdr ui [NAME]`.
func NewCmdUI(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &UIOptions{IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "ui [NAME]",
		Short: "Explore profiling results in the browser, export and deploy from there",
		Long: `Serve a web page from this plugin that shows a DGDR's request, its phase timeline and conditions
(refreshed live while it profiles), the Pareto front as an interactive chart with the dominated and
infeasible candidates and why, a sortable table of candidates and the details of the one you choose.
"Export DGD" downloads exactly what ` + "`kubectl dgdr export NAME --pick N`" + ` prints; "Deploy" does what
` + "`kubectl dgdr promote NAME --pick N`" + ` does, after showing the DGD and its diff against the live one.
Without NAME the page lists the namespace's DGDRs.

The page reads the cluster through your kubeconfig; nothing is installed in the cluster, and whoever
uses the page acts with your credentials. The command prints a one-time sign-in URL (.../login?token=...):
the first browser to open it gets a session cookie (HttpOnly, SameSite=Strict) and is the only one the
page answers; the URL does not work a second time. It listens on 127.0.0.1; an --address other machines
can reach needs --allow-remote, and then anyone who reaches it with the URL first can deploy (plain
HTTP: prefer an SSH tunnel to a loopback port). Requests for any other host name are refused, and a
deploy also needs a token only the page knows. It serves until interrupted.`,
		Example: `  # Explore one DGDR's results
  kubectl dgdr ui qwen --open

  # All DGDRs of a namespace, on a fixed port
  kubectl dgdr ui -n team-a --port 8765

  # From another machine: forward the port over SSH rather than listening on the network
  ssh -L 8765:127.0.0.1:8765 gpu-box kubectl dgdr ui qwen --port 8765`,
		Args:              withUsageHint(cobra.MaximumNArgs(1)),
		ValidArgsFunction: completeDGDRNames(getter, 1),
		RunE:              runCommand(getter, o),
	}
	o.Serve.AddFlags(cmd.Flags())
	return cmd
}

// Complete takes the name, if any, and builds the client.
func (o *UIOptions) Complete(getter genericclioptions.RESTClientGetter, _ *cobra.Command, args []string) error {
	if len(args) == 1 {
		o.Name = args[0]
	}
	c, err := newCluster(getter, o.IOStreams)
	if err != nil {
		return err
	}
	o.cluster = c
	return nil
}

// Validate checks the listening flags.
func (o *UIOptions) Validate() error { return o.Serve.Validate() }

// Run checks that the DGDR exists (or that DGDRs can be listed) and serves until interrupted.
func (o *UIOptions) Run(ctx context.Context) error {
	if o.Name != "" {
		if _, err := o.cluster.getDGDR(ctx, o.Name); err != nil {
			return err
		}
	} else if _, err := o.cluster.listDGDRs(ctx, o.cluster.namespace); err != nil {
		return err
	}
	return o.Serve.Serve(ctx, o.IOStreams, ui.Options{Cluster: newUICluster(o.cluster), Namespace: o.cluster.namespace, Name: o.Name})
}

// uiCluster is the page's view of the cluster. Export, Preview and Deploy use the deploy service, as
// the export and promote commands do, with the same hints on errors.
type uiCluster struct {
	cluster *cluster
	deploy  *deploy.Service
}

func newUICluster(c *cluster) *uiCluster { return &uiCluster{cluster: c, deploy: deploy.New(c.client)} }

var _ ui.Cluster = (*uiCluster)(nil)

func (u *uiCluster) List(ctx context.Context) ([]ui.Summary, error) {
	items, err := u.cluster.listDGDRs(ctx, u.cluster.namespace)
	if err != nil {
		return nil, uiErr(err)
	}
	out := make([]ui.Summary, 0, len(items))
	for _, it := range items {
		str := func(path ...string) string { v, _, _ := unstructured.NestedString(it.Object, path...); return v }
		s := ui.Summary{Name: it.GetName(), Model: str("spec", "model"), Backend: str("spec", "backend"),
			Phase: str("status", "phase"), DGDName: str("status", "dgdName")}
		if s.Phase == "" {
			s.Phase = string(v1alpha1.PhasePending)
		}
		if t := it.GetCreationTimestamp(); !t.IsZero() {
			s.Created = t.UTC().Format("2006-01-02T15:04:05Z")
		}
		out = append(out, s)
	}
	return out, nil
}

func (u *uiCluster) View(ctx context.Context, name string) (*ui.View, error) {
	d := &v1alpha1.DynamoGraphDeploymentRequest{}
	if err := u.cluster.client.Get(ctx, u.cluster.key(name), d); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &ui.Error{Status: http.StatusNotFound, Err: fmt.Errorf("dynamographdeploymentrequest %q not found in namespace %q", name, u.cluster.namespace)}
		}
		return nil, uiErr(dgdrError(err, name, u.cluster.namespace))
	}
	note := ""
	rep, err := lifecycle.GetResults(ctx, u.cluster.client, d)
	switch {
	case err != nil:
		note = fmt.Sprintf("showing the stored Pareto front only: %v", err)
	case rep == nil && d.Status.ProfilingResults != nil && d.Status.ProfilingResults.SelectedConfig != nil:
		note = fmt.Sprintf("showing the stored Pareto front only: ConfigMap %s is missing", lifecycle.ResultsConfigMapName(name))
	}
	return ui.DGDRView(d, rep, note), nil
}

// pickArgs are the command-line arguments selecting a point (none: the selected configuration).
func pickArgs(name string, pick int) []string {
	if pick < 0 {
		return []string{name}
	}
	return []string{name, "--pick", strconv.Itoa(pick)}
}

func (u *uiCluster) Export(ctx context.Context, name string, pick int) ([]byte, error) {
	d, err := u.cluster.getDGDR(ctx, name)
	if err != nil {
		return nil, uiErr(err)
	}
	ex, err := u.deploy.Export(ctx, d, deploy.Pick{Index: pick}, expand.DGDAPIVersionV1Beta1)
	if err != nil {
		return nil, uiErr(deployError(err, ""))
	}
	return ex.Data, nil
}

// resolve reads the DGDR and resolves the DGD promote would apply.
func (u *uiCluster) resolve(ctx context.Context, name string, pick int) (*deploy.Resolved, error) {
	d, err := u.cluster.getDGDR(ctx, name)
	if err != nil {
		return nil, uiErr(err)
	}
	r, err := u.deploy.Resolve(ctx, d, deploy.Pick{Index: pick})
	if err != nil {
		return nil, uiErr(deployError(err, ""))
	}
	return r, nil
}

func (u *uiCluster) command(verb, name string, pick int) string {
	return "kubectl dgdr " + verb + " " + strings.Join(pickArgs(name, pick), " ") + nsFlag(u.cluster.namespace)
}

// Preview asks the API server what promote would do (its dry run: the diff is exact) and shows the DGD
// promote would apply, as `promote --dry-run=client -o yaml` prints it.
func (u *uiCluster) Preview(ctx context.Context, name string, pick int) (*ui.Preview, error) {
	r, err := u.resolve(ctx, name, pick)
	if err != nil {
		return nil, err
	}
	ch, err := u.deploy.Preview(ctx, r, deploy.Options{})
	if err != nil {
		return nil, uiErr(deployError(err, r.DGD.GetName()))
	}
	var dgd bytes.Buffer
	if err := (&printers.YAMLPrinter{}).PrintObj(r.DGD, &dgd); err != nil {
		return nil, uiErr(fmt.Errorf("printing DGD %s: %w", r.DGD.GetName(), err))
	}
	return &ui.Preview{DGDName: ch.Name, Action: string(ch.Action), DGD: dgd.String(), Diff: ch.Diff, Command: u.command("promote", name, pick)}, nil
}

func (u *uiCluster) Deploy(ctx context.Context, name string, pick int) (*ui.Deployed, error) {
	r, err := u.resolve(ctx, name, pick)
	if err != nil {
		return nil, err
	}
	ch, err := u.deploy.Deploy(ctx, r, deploy.Options{})
	if err != nil {
		return nil, uiErr(deployError(err, r.DGD.GetName()))
	}
	return &ui.Deployed{DGDName: ch.Name, Message: ch.Summary(), Command: u.command("promote", name, pick)}, nil
}

// uiErr turns an error into the page's: the one line PrintError writes, with the hint.
func uiErr(err error) error {
	var b bytes.Buffer
	PrintError(&b, err)
	msg := strings.TrimPrefix(strings.TrimSpace(b.String()), "error: ")
	status := http.StatusInternalServerError
	var h *HintError
	if errors.As(err, &h) {
		// A refusal with a remedy (no results yet, owned by someone else, out of range) is the request's fault.
		status = http.StatusConflict
	}
	return &ui.Error{Status: status, Err: errors.New(msg)}
}
