package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"syscall"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
)

// dgdrGVK is the kind the plugin reads and writes.
var dgdrGVK = v1alpha1.GroupVersion.WithKind(v1alpha1.Kind)

// dgdrGroupResource names DGDRs in messages the way kubectl does ("dynamographdeploymentrequests.nvidia.com").
var dgdrGroupResource = schema.GroupResource{Group: v1alpha1.GroupVersion.Group, Resource: v1alpha1.Resource}

// scheme decodes the built-in kinds the plugin touches (Jobs, Pods, Events, ConfigMaps) and DGDRs.
var scheme = lifecycle.Scheme()

// cluster is what a command needs to talk to the API server, built once from the root's ConfigFlags.
type cluster struct {
	client client.Client
	// kube is client-go's clientset, for what controller-runtime does not cover (pod log streams).
	kube kubernetes.Interface
	// namespace is -n, or the kubeconfig context's namespace, or "default".
	namespace string
	// explicitNamespace is true when -n was given.
	explicitNamespace bool
}

// namespaceFrom resolves the namespace as kubectl does, without contacting the server.
func namespaceFrom(getter genericclioptions.RESTClientGetter) (string, bool, error) {
	ns, explicit, err := getter.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", false, WithHint(fmt.Errorf("reading the namespace from the kubeconfig: %w", err), "check --kubeconfig and --context")
	}
	return ns, explicit, nil
}

// newCluster builds the clients from the getter (the root's ConfigFlags) without contacting the server: the
// REST mapping is discovered on first use. API warnings (deprecations) go to stderr.
func newCluster(getter genericclioptions.RESTClientGetter, streams genericiooptions.IOStreams) (*cluster, error) {
	ns, explicit, err := namespaceFrom(getter)
	if err != nil {
		return nil, err
	}
	cfg, err := getter.ToRESTConfig()
	if err != nil {
		return nil, WithHint(fmt.Errorf("loading the kubeconfig: %w", err), "set --kubeconfig or KUBECONFIG, or pick a context with --context")
	}
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandler = rest.NewWarningWriter(streams.ErrOut, rest.WarningWriterOptions{Deduplicate: true})
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, apiError(fmt.Errorf("connecting to the cluster: %w", err), "")
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("making a Kubernetes client: %w", err)
	}
	return &cluster{client: c, kube: kube, namespace: ns, explicitNamespace: explicit}, nil
}

func (c *cluster) key(name string) types.NamespacedName {
	return types.NamespacedName{Namespace: c.namespace, Name: name}
}

// getDGDR reads one DGDR, with its apiVersion and kind set (the client clears them on typed objects).
func (c *cluster) getDGDR(ctx context.Context, name string) (*v1alpha1.DynamoGraphDeploymentRequest, error) {
	d := &v1alpha1.DynamoGraphDeploymentRequest{}
	if err := c.client.Get(ctx, c.key(name), d); err != nil {
		return nil, dgdrError(err, name, c.namespace)
	}
	d.SetGroupVersionKind(dgdrGVK)
	return d, nil
}

// listDGDRs lists DGDRs as stored (unstructured, so that printing keeps fields this plugin does not know),
// sorted by namespace and name. An empty namespace lists all namespaces.
func (c *cluster) listDGDRs(ctx context.Context, namespace string) ([]unstructured.Unstructured, error) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(dgdrGVK.GroupVersion().WithKind(v1alpha1.Kind + "List"))
	var opts []client.ListOption
	if namespace != "" {
		opts = append(opts, client.InNamespace(namespace))
	}
	if err := c.client.List(ctx, list, opts...); err != nil {
		return nil, apiError(fmt.Errorf("listing DGDRs: %w", err), "")
	}
	items := list.Items
	sort.SliceStable(items, func(i, j int) bool {
		if items[i].GetNamespace() != items[j].GetNamespace() {
			return items[i].GetNamespace() < items[j].GetNamespace()
		}
		return items[i].GetName() < items[j].GetName()
	})
	return items, nil
}

// getDGDRUnstructured reads one DGDR as stored.
func (c *cluster) getDGDRUnstructured(ctx context.Context, name string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(dgdrGVK)
	if err := c.client.Get(ctx, c.key(name), u); err != nil {
		return nil, dgdrError(err, name, c.namespace)
	}
	return u, nil
}

// dgdrError turns an API error about one DGDR into a one-line error with the next step.
func dgdrError(err error, name, namespace string) error {
	if apierrors.IsNotFound(err) {
		return WithHint(fmt.Errorf("dynamographdeploymentrequest %q not found in namespace %q", name, namespace),
			"list them with `kubectl dgdr get -n %s`, or all namespaces with `kubectl dgdr get -A`", namespace)
	}
	return apiError(fmt.Errorf("reading dynamographdeploymentrequest %s/%s: %w", namespace, name, err), "")
}

// apiError attaches the usual remedy to errors every command can hit; hint is used when none applies.
func apiError(err error, hint string) error {
	if err == nil {
		return nil
	}
	var h *HintError
	if errors.As(err, &h) {
		return err
	}
	switch {
	case missingKind(err) == lifecycle.DGDGroupVersionKind.Kind:
		return WithHint(err, "the DynamoGraphDeployment CRD is not installed: install the NVIDIA Dynamo operator, or use `kubectl dgdr export` to get the DGD as YAML")
	case meta.IsNoMatchError(err):
		return WithHint(err, "the DGDR CRD is not installed in this cluster: install dgdr first (see the README, Installing), then check with `kubectl get crd %s`", dgdrGroupResource)
	case apierrors.IsForbidden(err):
		return WithHint(err, "your user lacks the RBAC permission; check with `kubectl auth can-i --list`")
	case apierrors.IsUnauthorized(err):
		return WithHint(err, "your credentials were refused; log in again or check --kubeconfig and --context")
	case isUnreachable(err):
		return WithHint(err, "the cluster is unreachable; check it with `kubectl cluster-info` and --kubeconfig/--context")
	}
	if hint != "" {
		return WithHint(err, "%s", hint)
	}
	return err
}

// missingKind is the kind a "no match" error (the CRD is not installed) says the server does not serve: the
// mapper names the kind when its group/version is served without it, else only the missing group/version,
// which is the DGDR's or the DGD's. "" for any other error.
func missingKind(err error) string {
	var noKind *meta.NoKindMatchError
	if errors.As(err, &noKind) {
		return noKind.GroupKind.Kind
	}
	var noResource *meta.NoResourceMatchError
	if errors.As(err, &noResource) {
		switch noResource.PartialResource.GroupVersion() {
		case dgdrGVK.GroupVersion():
			return v1alpha1.Kind
		case lifecycle.DGDGroupVersionKind.GroupVersion():
			return lifecycle.DGDGroupVersionKind.Kind
		}
	}
	return ""
}

// isUnreachable reports a transport failure: nothing answered at the server's address (connection refused,
// unknown host, a failed dial, read or write, a timed-out handshake). The command's own cancellation (an
// interrupt) or deadline is not one; a dial that timed out is, even though it matches
// context.DeadlineExceeded too.
func isUnreachable(err error) bool {
	var opErr *net.OpError
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, syscall.ECONNREFUSED), errors.As(err, &dnsErr), errors.As(err, &opErr):
		return true
	case errors.As(err, &netErr) && netErr.Timeout():
		// A *url.Error is a net.Error too: only its timeouts count here (TLS handshake, response headers),
		// not a refused certificate or a failed credential plugin.
		return !errors.Is(err, context.DeadlineExceeded)
	}
	return false
}

// profilingJobName is the profiling Job of a DGDR: status first (the profiler records it), then the name
// the webhook gives the Job it creates at admission (from the DGDR's name and UID).
func profilingJobName(d *v1alpha1.DynamoGraphDeploymentRequest) string {
	if d.Generation > max(d.Status.ObservedGeneration, 1) {
		// A spec change whose run has not started yet: its Job is the one to follow.
		return expand.RunJobName(d.Name, d.UID, d.Generation, v1alpha1.InputsHash(&d.Spec))
	}
	return cmp.Or(d.Status.ProfilingJobName, expand.ProfilingJobName(d.Name, d.UID))
}

// clusterOptions is what every command that talks to the cluster shares: the streams and the client
// Complete builds from the root's ConfigFlags.
type clusterOptions struct {
	genericiooptions.IOStreams
	cluster *cluster
}

// complete builds the client from the getter.
func (o *clusterOptions) complete(getter genericclioptions.RESTClientGetter) error {
	c, err := newCluster(getter, o.IOStreams)
	if err != nil {
		return err
	}
	o.cluster = c
	return nil
}
