package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// Dry-run modes, as kubectl spells them.
const (
	dryRunNone   = "none"
	dryRunClient = "client"
	dryRunServer = "server"
)

// specFlags are the flags that build a spec; none of them may be combined with -f.
var specFlags = []string{
	"model", "backend", "image", "isl", "osl", "ttft", "itl", "strategy", "auto-apply", "enable-autoscaling",
	"model-cache-pvc", "model-cache-path", "gpu-type", "total-gpus", "gpus-per-node", "hf-token-secret",
}

// CreateOptions creates one DGDR from a file or from flags.
type CreateOptions struct {
	genericiooptions.IOStreams
	print *genericclioptions.PrintFlags

	Filename string
	Name     string

	Model, Backend, Image, Strategy string
	ISL, OSL                        int32
	TTFT, ITL                       float64
	AutoApply, EnableAutoScaling    bool
	ModelCachePVC, ModelCachePath   string
	HFTokenSecret                   string
	GPUType                         string
	TotalGPUs, GPUsPerNode          int32
	DryRun                          string
	Wait                            bool
	Timeout                         time.Duration
	changedSpecFlags                []string
	namespace                       string
	explicitNamespace               bool
	obj                             *v1alpha1.DynamoGraphDeploymentRequest
	printer                         printers.ResourcePrinter
	cluster                         *cluster
	waiter                          waiter
}

// NewCmdCreate is `kubectl dgdr create`.
func NewCmdCreate(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := &CreateOptions{
		IOStreams: streams,
		print:     genericclioptions.NewPrintFlags("created").WithTypeSetter(scheme),
	}
	cmd := &cobra.Command{
		Use:   "create (-f FILENAME | NAME --model MODEL [flags])",
		Short: "Create a DynamoGraphDeploymentRequest from a file or from flags",
		Long: `Create a DynamoGraphDeploymentRequest (DGDR). The admission webhook fills in the defaults
(backend any, strategy rapid, ISL 512, OSL 128, TTFT 100ms, ITL 15ms, the cluster's image) and starts
profiling (run 1). Changing the spec later (kubectl edit, apply) starts a new run; kubectl dgdr rerun
starts one with the same spec.

--dry-run=server -o yaml shows the object with the webhook's defaults without creating it.
--wait follows the phases until the DGDR is Ready (Deployed with --auto-apply) or Failed.`,
		Example: `  # Create from a manifest (use -f - for stdin)
  kubectl dgdr create -f qwen.yaml

  # Create from flags, with an SLA, and follow it until the recommendation is ready
  kubectl dgdr create qwen --model Qwen/Qwen3-32B --isl 2048 --osl 512 --ttft 300 --itl 20 --wait

  # Preview the defaulted object without creating it
  kubectl dgdr create qwen --model Qwen/Qwen3-32B --dry-run=server -o yaml`,
		Args: withUsageHint(cobra.MaximumNArgs(1)),
		RunE: runCommand(getter, o),
	}
	f := cmd.Flags()
	f.StringVarP(&o.Filename, "filename", "f", "", "File with one DGDR in YAML or JSON ('-' reads stdin)")
	f.StringVar(&o.Model, "model", "", "Hugging Face model id (org/name), or the served name with --model-cache-pvc")
	f.StringVar(&o.Backend, "backend", "", "Serving engine: any, sglang, trtllm or vllm (default any)")
	f.StringVar(&o.Image, "image", "", "Container image for profiling and serving (default: the cluster's)")
	f.Int32Var(&o.ISL, "isl", 0, "Input sequence length in tokens (default 512)")
	f.Int32Var(&o.OSL, "osl", 0, "Output sequence length in tokens (default 128)")
	f.Float64Var(&o.TTFT, "ttft", 0, "Time-to-first-token target in milliseconds (default 100)")
	f.Float64Var(&o.ITL, "itl", 0, "Inter-token latency target in milliseconds (default 15)")
	f.StringVar(&o.Strategy, "strategy", "", "Search strategy: rapid or thorough (default rapid)")
	f.BoolVar(&o.AutoApply, "auto-apply", false, "Deploy the recommended DGD as soon as profiling completes")
	f.BoolVar(&o.EnableAutoScaling, "enable-autoscaling", false, "Add the Dynamo Planner to the generated DGD")
	f.StringVar(&o.ModelCachePVC, "model-cache-pvc", "", "PersistentVolumeClaim that holds the model weights")
	f.StringVar(&o.ModelCachePath, "model-cache-path", "", "Folder of the model inside the PVC")
	f.StringVar(&o.HFTokenSecret, "hf-token-secret", "", "Secret holding HF_TOKEN for gated models (sets the annotation "+v1alpha1.AnnotationHFTokenSecret+")")
	f.StringVar(&o.GPUType, "gpu-type", "", "GPU type when nodes carry no GPU labels, e.g. h100_sxm")
	f.Int32Var(&o.TotalGPUs, "total-gpus", 0, "Most GPUs the deployment may use")
	f.Int32Var(&o.GPUsPerNode, "gpus-per-node", 0, "GPUs in one node")
	f.StringVar(&o.DryRun, "dry-run", dryRunNone, `"none", "client" (print the object, send nothing) or "server" (the API server and webhook check and default it, nothing is stored)`)
	f.BoolVar(&o.Wait, "wait", false, "Follow the phases until Ready (Deployed with --auto-apply) or Failed")
	f.DurationVar(&o.Timeout, "timeout", 15*time.Minute, "How long --wait waits")
	o.print.AddFlags(cmd)
	_ = cmd.RegisterFlagCompletionFunc("backend", cobra.FixedCompletions([]string{"any", "sglang", "trtllm", "vllm"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("strategy", cobra.FixedCompletions([]string{"rapid", "thorough"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("dry-run", cobra.FixedCompletions([]string{dryRunNone, dryRunClient, dryRunServer}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Complete builds the object to create (not yet validated), the printer and the client.
func (o *CreateOptions) Complete(getter genericclioptions.RESTClientGetter, cmd *cobra.Command, args []string) error {
	if len(args) == 1 {
		o.Name = args[0]
	}
	for _, name := range specFlags {
		if cmd.Flags().Changed(name) {
			o.changedSpecFlags = append(o.changedSpecFlags, "--"+name)
		}
	}
	var err error
	if o.namespace, o.explicitNamespace, err = namespaceFrom(getter); err != nil {
		return err
	}

	switch o.DryRun {
	case dryRunClient:
		err = o.print.Complete("%s (dry run)")
	case dryRunServer:
		err = o.print.Complete("%s (server dry run)")
	}
	if err != nil {
		return err
	}
	if o.printer, err = o.print.ToPrinter(); err != nil {
		return WithHint(fmt.Errorf("unsupported output format %q", ptr.Deref(o.print.OutputFormat, "")), "use -o yaml, json or name")
	}

	if o.Filename != "" {
		o.obj, err = o.readFile()
		if err != nil {
			return err
		}
	} else {
		o.obj = o.fromFlags(cmd)
	}
	if ns := o.obj.Namespace; ns != "" && o.explicitNamespace && ns != o.namespace {
		return WithHint(fmt.Errorf("the file's namespace %q does not match -n %q", ns, o.namespace),
			"drop -n, or remove metadata.namespace from the file")
	}
	if o.obj.Namespace == "" {
		o.obj.Namespace = o.namespace
	}

	if o.DryRun != dryRunClient {
		if o.cluster, err = newCluster(getter, o.IOStreams); err != nil {
			return err
		}
		o.cluster.namespace = o.obj.Namespace
		o.waiter = newWaiter(o.cluster, o.ErrOut)
	}
	return nil
}

// fromFlags builds the spec; unset flags stay unset so that the webhook's defaults apply.
func (o *CreateOptions) fromFlags(cmd *cobra.Command) *v1alpha1.DynamoGraphDeploymentRequest {
	changed := cmd.Flags().Changed
	d := &v1alpha1.DynamoGraphDeploymentRequest{
		ObjectMeta: metav1.ObjectMeta{Name: o.Name},
		Spec: v1alpha1.DynamoGraphDeploymentRequestSpec{
			Model:             o.Model,
			Backend:           v1alpha1.Backend(o.Backend),
			Image:             o.Image,
			SearchStrategy:    v1alpha1.SearchStrategy(o.Strategy),
			AutoApply:         o.AutoApply,
			EnableAutoScaling: o.EnableAutoScaling,
		},
	}
	d.SetGroupVersionKind(dgdrGVK)
	if o.HFTokenSecret != "" {
		d.Annotations = map[string]string{v1alpha1.AnnotationHFTokenSecret: o.HFTokenSecret}
	}
	s := &d.Spec
	if changed("isl") || changed("osl") {
		s.Workload = &v1alpha1.Workload{}
		if changed("isl") {
			s.Workload.ISL = ptr.To(o.ISL)
		}
		if changed("osl") {
			s.Workload.OSL = ptr.To(o.OSL)
		}
	}
	if changed("ttft") || changed("itl") {
		s.SLA = &v1alpha1.SLA{}
		if changed("ttft") {
			s.SLA.TTFT = ptr.To(o.TTFT)
		}
		if changed("itl") {
			s.SLA.ITL = ptr.To(o.ITL)
		}
	}
	if changed("model-cache-pvc") || changed("model-cache-path") {
		s.ModelCache = &v1alpha1.ModelCache{PVCName: o.ModelCachePVC, PVCPath: o.ModelCachePath}
	}
	if changed("gpu-type") || changed("total-gpus") || changed("gpus-per-node") {
		s.Hardware = &v1alpha1.Hardware{GPUType: o.GPUType}
		if changed("total-gpus") {
			s.Hardware.TotalGPUs = ptr.To(o.TotalGPUs)
		}
		if changed("gpus-per-node") {
			s.Hardware.GPUsPerNode = ptr.To(o.GPUsPerNode)
		}
	}
	return d
}

// readFile reads exactly one DGDR, refusing unknown fields so that a typo fails here, with its path.
func (o *CreateOptions) readFile() (*v1alpha1.DynamoGraphDeploymentRequest, error) {
	var r io.Reader
	name := o.Filename
	if name == "-" {
		r, name = o.In, "stdin"
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, WithHint(fmt.Errorf("reading %s: %w", name, err), "pass a DGDR manifest with -f FILE, or -f - for stdin")
		}
		defer f.Close()
		r = f
	}
	docs, err := yamlDocuments(r)
	if err != nil {
		return nil, WithHint(fmt.Errorf("reading %s: %w", name, err), "expected YAML or JSON")
	}
	if len(docs) != 1 {
		return nil, WithHint(fmt.Errorf("%s holds %d objects, expected one DynamoGraphDeploymentRequest", name, len(docs)), "put one DGDR in the file")
	}
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(docs[0], &tm); err != nil {
		return nil, WithHint(fmt.Errorf("reading %s: %w", name, err), "expected a YAML or JSON object")
	}
	if tm.APIVersion != dgdrGVK.GroupVersion().String() || tm.Kind != v1alpha1.Kind {
		return nil, WithHint(fmt.Errorf("%s holds apiVersion %q kind %q, expected %s %s", name, tm.APIVersion, tm.Kind, dgdrGVK.GroupVersion(), v1alpha1.Kind),
			"set apiVersion: %s and kind: %s", dgdrGVK.GroupVersion(), v1alpha1.Kind)
	}
	d := &v1alpha1.DynamoGraphDeploymentRequest{}
	// The strict serializer names the path of an unknown field ("spec.worklaod"), as the API server would.
	strict := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme, kjson.SerializerOptions{Yaml: true, Strict: true})
	if _, _, err := strict.Decode(docs[0], nil, d); err != nil {
		return nil, WithHint(fmt.Errorf("reading %s: %w", name, err), "check the field names with `kubectl explain dynamographdeploymentrequest.spec`")
	}
	if d.Status.Phase != "" || d.Status.ProfilingResults != nil {
		fmt.Fprintf(o.ErrOut, "Warning: %s has a status; it is ignored (the profiler writes it)\n", name)
		d.Status = v1alpha1.DynamoGraphDeploymentRequestStatus{}
	}
	d.ResourceVersion, d.UID, d.ManagedFields, d.CreationTimestamp = "", "", nil, metav1.Time{}
	return d, nil
}

// yamlDocuments splits a stream into its non-empty documents (JSON is one YAML document).
func yamlDocuments(r io.Reader) ([][]byte, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var docs [][]byte
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		var v any
		if err := yaml.Unmarshal(doc, &v); err != nil {
			return nil, err
		}
		if v != nil {
			docs = append(docs, bytes.TrimSpace(doc))
		}
	}
}

// Validate checks the flags and, before any request, the spec with the same rules as the webhook.
func (o *CreateOptions) Validate() error {
	switch {
	case o.Filename != "" && o.Name != "":
		return WithHint(errors.New("both -f and a NAME were given"), "name the DGDR in the file's metadata.name, or drop -f")
	case o.Filename != "" && len(o.changedSpecFlags) > 0:
		return WithHint(fmt.Errorf("%s cannot be combined with -f", strings.Join(o.changedSpecFlags, ", ")), "set those fields in the file, or drop -f")
	case o.Filename == "" && o.Name == "":
		return WithHint(errors.New("no DGDR to create"), "pass -f FILE, or a NAME with --model MODEL")
	case o.Filename == "" && o.Model == "":
		return WithHint(errors.New("--model is required"), "pass a Hugging Face id such as --model Qwen/Qwen3-32B")
	}
	switch o.DryRun {
	case dryRunNone, dryRunClient, dryRunServer:
	default:
		return WithHint(fmt.Errorf("invalid --dry-run %q", o.DryRun), "use --dry-run=none, client or server")
	}
	if o.Wait && o.DryRun != dryRunNone {
		return WithHint(errors.New("--wait cannot be combined with --dry-run"), "drop one of them")
	}
	if o.obj.Name == "" && o.obj.GenerateName == "" {
		return WithHint(errors.New("the DGDR has no name"), "set metadata.name in the file")
	}
	if o.obj.Name != "" {
		if msgs := utilvalidation.IsDNS1123Subdomain(o.obj.Name); len(msgs) > 0 {
			return WithHint(fmt.Errorf("invalid name %q: %s", o.obj.Name, strings.Join(msgs, "; ")), "use lowercase letters, digits, '-' and '.'")
		}
	}
	var errs field.ErrorList
	if o.obj.Name != "" {
		errs = v1alpha1.ValidateName(o.obj.Name)
	}
	if errs = append(errs, v1alpha1.ValidateSpec(&o.obj.Spec)...); len(errs) > 0 {
		return WithHint(errs.ToAggregate(), "fix the spec; `kubectl explain dynamographdeploymentrequest.spec` describes each field")
	}
	return nil
}

// Run creates the DGDR (or previews it) and optionally follows it.
func (o *CreateOptions) Run(ctx context.Context) error {
	o.obj.SetGroupVersionKind(dgdrGVK)
	if o.DryRun == dryRunClient {
		return printTo(o.printer, o.obj, o.Out)
	}
	opts := []client.CreateOption{client.FieldOwner(v1alpha1.FieldManager)}
	if o.DryRun == dryRunServer {
		opts = append(opts, client.DryRunAll)
	}
	if err := o.cluster.client.Create(ctx, o.obj, opts...); err != nil {
		return o.createError(err)
	}
	o.obj.SetGroupVersionKind(dgdrGVK)
	if err := printTo(o.printer, o.obj, o.Out); err != nil {
		return err
	}
	if !o.Wait {
		if o.DryRun == dryRunNone && o.print.OutputFormat != nil && *o.print.OutputFormat == "" {
			fmt.Fprintf(o.ErrOut, "run %d: profiling Job %s\n", o.obj.Generation, profilingJobName(o.obj))
		}
		return nil
	}
	_, err := o.waiter.wait(ctx, o.obj.Name, o.Timeout)
	return err
}

func (o *CreateOptions) createError(err error) error {
	name, ns := o.obj.Name, o.obj.Namespace
	switch {
	case apierrors.IsAlreadyExists(err):
		return WithHint(fmt.Errorf("dynamographdeploymentrequest %q already exists in namespace %q", name, ns),
			"change its spec with `kubectl edit dgdr %s -n %s` (a new profiling run), or choose another name", name, ns)
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
		return WithHint(fmt.Errorf("the cluster refused dynamographdeploymentrequest %s/%s: %w", ns, name, err),
			"fix the spec; `kubectl dgdr create --dry-run=server -o yaml` shows what the webhook makes of it")
	}
	return apiError(fmt.Errorf("creating dynamographdeploymentrequest %s/%s: %w", ns, name, err), "")
}
