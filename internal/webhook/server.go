package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/version"
)

// DefaultImage is the runtime image a DGDR gets when spec.image is empty (--default-image).
const DefaultImage = "nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.3.0"

// ProfilerImageRepository holds dgdr-webhook and dgdr-profiler; the tag is this build's version.
const ProfilerImageRepository = "ghcr.io/dgdr-dev/dgdr"

// The webhook's own client may send this many requests per second to the API server, with bursts of
// ClientBurst (--kube-api-qps, --kube-api-burst). Each admission makes several calls (SubjectAccessReview,
// Job dry run, GETs, the Job create), and it is the API server that calls the webhook, so client-go's
// default of 5 per second (burst 10) would queue a burst of creates until the API server's webhook timeout;
// the API server protects itself with its max-in-flight limits and priority and fairness.
const (
	ClientQPS   = 200
	ClientBurst = 400
)

// Options are the webhook server's settings, one flag each.
type Options struct {
	Port                   int
	QPS                    float32
	Burst                  int
	CertDir                string
	DefaultImage           string
	ProfilerImage          string
	MetricsBindAddress     string
	HealthProbeBindAddress string
	ShutdownDelay          time.Duration
}

// DefaultShutdownDelay is how long the webhook keeps serving after SIGTERM (--shutdown-delay). A deleted
// pod still gets requests until the API server sees its endpoint go, and controller-runtime's server
// gives every request the manager's context: cancelled at once, the requests in flight would fail their
// Job creates with "context canceled" (make e2e saw 2 of 24 creates refused when a webhook pod was
// deleted during a burst). Well under the pod's 30 s termination grace.
const DefaultShutdownDelay = 5 * time.Second

// NewOptions returns the defaults.
func NewOptions() Options {
	return Options{
		Port:                   webhook.DefaultPort,
		QPS:                    ClientQPS,
		Burst:                  ClientBurst,
		CertDir:                "/tmp/k8s-webhook-server/serving-certs",
		DefaultImage:           DefaultImage,
		ProfilerImage:          ProfilerImageRepository + ":" + version.Version,
		MetricsBindAddress:     ":8080",
		HealthProbeBindAddress: ":8081",
		ShutdownDelay:          DefaultShutdownDelay,
	}
}

// BindFlags registers the flags on fs.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.IntVar(&o.Port, "port", o.Port, "port the webhook serves HTTPS on")
	fs.StringVar(&o.CertDir, "cert-dir", o.CertDir, "directory holding tls.crt and tls.key; reloaded when they change")
	fs.Func("kube-api-qps", fmt.Sprintf("requests per second the webhook's client may send to the API server [%d]", ClientQPS), func(v string) error {
		q, err := strconv.ParseFloat(v, 32)
		o.QPS = float32(q)
		return err
	})
	fs.IntVar(&o.Burst, "kube-api-burst", o.Burst, "requests the webhook's client may send at once above --kube-api-qps")
	fs.StringVar(&o.DefaultImage, "default-image", o.DefaultImage, "image a DGDR gets when spec.image is empty")
	fs.StringVar(&o.ProfilerImage, "profiler-image", o.ProfilerImage, "image that runs dgdr-profiler in the profiling Job")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, `address of the Prometheus metrics endpoint ("0" turns it off)`)
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress, "address of /healthz and /readyz")
	fs.DurationVar(&o.ShutdownDelay, "shutdown-delay", o.ShutdownDelay, "how long to keep serving after SIGTERM, while the API server stops sending requests here")
}

// Validate checks the settings.
func (o Options) Validate() error {
	var errs []error
	if o.Port < 1 || o.Port > 65535 {
		errs = append(errs, fmt.Errorf("--port %d: expected 1 to 65535", o.Port))
	}
	if o.QPS <= 0 || o.Burst < 1 {
		errs = append(errs, fmt.Errorf("--kube-api-qps %g, --kube-api-burst %d: expected both above 0", o.QPS, o.Burst))
	}
	if o.CertDir == "" {
		errs = append(errs, fmt.Errorf("--cert-dir is empty: expected the directory of tls.crt and tls.key"))
	}
	if o.DefaultImage == "" {
		errs = append(errs, fmt.Errorf("--default-image is empty: expected an image reference"))
	}
	if o.ProfilerImage == "" {
		errs = append(errs, fmt.Errorf("--profiler-image is empty: expected an image reference"))
	}
	if o.ShutdownDelay < 0 {
		errs = append(errs, fmt.Errorf("--shutdown-delay %s: expected 0 or more", o.ShutdownDelay))
	}
	return errors.Join(errs...)
}

// TLSOptions harden the serving TLS: TLS 1.2 or newer, and HTTP/1.1 only (HTTP/2 is off because of the
// HTTP/2 rapid-reset and stream-cancellation advisories GHSA-qppj-fm5r-hxr3 and GHSA-4374-p667-p6c8).
func TLSOptions(c *tls.Config) {
	c.MinVersion = tls.VersionTLS12
	c.NextProtos = []string{"http/1.1"}
}

// Run serves the webhook, metrics and health probes until ctx is done.
func Run(ctx context.Context, cfg *rest.Config, o Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	log := ctrl.Log.WithName("dgdr-webhook")
	scheme := lifecycle.Scheme()
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = o.QPS, o.Burst
	mgr, err := manager.New(cfg, manager.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: o.MetricsBindAddress},
		HealthProbeBindAddress: o.HealthProbeBindAddress,
		WebhookServer:          webhook.NewServer(webhook.Options{Port: o.Port, CertDir: o.CertDir, TLSOpts: []func(*tls.Config){TLSOptions}}),
		// Serving admission needs no leader: every replica answers.
		LeaderElection: false,
	})
	if err != nil {
		return fmt.Errorf("setting up the webhook server: %w", err)
	}
	// GetWebhookServer also adds the server to what the manager starts.
	srv := mgr.GetWebhookServer()
	// An uncached client: the webhook gets single objects and creates Jobs; a cache would need list and
	// watch on every kind it reads, cluster-wide.
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("making a Kubernetes client: %w", err)
	}
	Register(srv, &Handler{Client: c, DefaultImage: o.DefaultImage, ProfilerImage: o.ProfilerImage, Background: ctx})
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("adding the health check: %w", err)
	}
	// Ready only once the TLS listener answers a handshake.
	if err := mgr.AddReadyzCheck("webhook", srv.StartedChecker()); err != nil {
		return fmt.Errorf("adding the readiness check: %w", err)
	}
	log.Info("starting", "version", version.String(), "port", o.Port, "certDir", o.CertDir,
		"qps", o.QPS, "burst", o.Burst, "defaultImage", o.DefaultImage, "profilerImage", o.ProfilerImage)
	ctx = Linger(ctx, o.ShutdownDelay, func() {
		log.Info("stopping: serving for the shutdown delay first", "delay", o.ShutdownDelay)
	})
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("serving: %w", err)
	}
	return nil
}

// Linger returns a context that ends delay after parent does (calling notice when parent ends), and keeps
// parent's values.
func Linger(parent context.Context, delay time.Duration, notice func()) context.Context {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	go func() {
		<-parent.Done()
		if notice != nil {
			notice()
		}
		time.Sleep(delay)
		cancel()
	}()
	return ctx
}

// Main parses args (the flags above plus the zap logging flags and, when fs is flag.CommandLine,
// controller-runtime's --kubeconfig), reads the cluster config the controller-runtime way (--kubeconfig,
// $KUBECONFIG, in-cluster, ~/.kube/config) and runs until ctx is done.
func Main(ctx context.Context, fs *flag.FlagSet, args []string) error {
	o := NewOptions()
	o.BindFlags(fs)
	zo := zap.Options{}
	zo.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: dgdr-webhook takes flags only", fs.Args())
	}
	if err := o.Validate(); err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zo)))
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("reading the cluster config: %w", err)
	}
	return Run(ctx, cfg, o)
}
