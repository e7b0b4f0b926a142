package expand

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// DGD identity and the fixed parts of what dgdr generates.
const (
	DGDKind               = "DynamoGraphDeployment"
	DGDAPIVersionV1Beta1  = "nvidia.com/v1beta1"
	DGDAPIVersionV1Alpha1 = "nvidia.com/v1alpha1"

	// DGDModelMountPath is where the model-cache PVC is mounted (read-only) in the frontend and workers.
	DGDModelMountPath = "/models"
	// DGDModelVolume is the pod volume of the model-cache PVC.
	DGDModelVolume = "model-cache"
	// DGDMainContainer is the container Dynamo requires in every v1beta1 component.
	DGDMainContainer = "main"
	// DGDWorkingDir is the workers' working directory (the images' /workspace, as in the recipes).
	DGDWorkingDir = "/workspace"
	// DGDMultiGPUSharedMemory is the /dev/shm size of workers with more than one GPU per pod: the
	// recipes' multi-GPU workers raise it from the operator's 8Gi default (NCCL and engine IPC use it).
	DGDMultiGPUSharedMemory = "80Gi"
	// DGDSGLangBootstrapPort is SGLang's disaggregation bootstrap port (Dynamo's template value).
	DGDSGLangBootstrapPort = "12345"
	// DGDTRTLLMDefaultMaxNumTokens is TensorRT-LLM's default token budget per batch; dgdr raises it to
	// the workload's ISL so a prompt fits one batch.
	DGDTRTLLMDefaultMaxNumTokens = 8192
)

// Component names. They are short on purpose: Dynamo rejects a DGD whose name plus a component name
// exceeds 45 characters (DGDNameLimit), which Dynamo's own long names (TRTLLMDecodeWorker) hit.
const (
	DGDFrontendName = "Frontend"
	DGDPlannerName  = "Planner"
	DGDWorkerName   = "worker"
	DGDPrefillName  = "prefill"
	DGDDecodeName   = "decode"
)

// dgdRuntimeVersionPattern is the CRD's pattern for runtimeVersionOverride.
var dgdRuntimeVersionPattern = regexp.MustCompile(`^(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})$`)

// dgdNIXLConnector is vLLM's KV-transfer configuration for disaggregated workers (as the recipes use it).
const dgdNIXLConnector = `{"kv_connector":"NixlConnector","kv_role":"kv_both"}`

// DGDOptions choose the shape of the generated DynamoGraphDeployment.
type DGDOptions struct {
	// APIVersion is DGDAPIVersionV1Beta1 (default; spec.components, the CRD's storage version) or
	// DGDAPIVersionV1Alpha1 (spec.services, the shape of most Dynamo recipes, for older operators).
	APIVersion string
	// GPUsPerNode is the number of GPUs in one node. A worker that needs more becomes multinode
	// (multinode.nodeCount nodes, its GPUs split evenly). 0: spec.hardware.gpusPerNode, else no limit.
	GPUsPerNode int
	// HFTokenSecret names a Secret holding HF_TOKEN, exposed to the frontend and workers with envFrom
	// (v1alpha1: envFromSecret), as the recipes do with hf-token-secret. Empty: the DGDR's annotation
	// nvidia.com/dgdr-hf-token-secret, else no Secret.
	HFTokenSecret string
	// Export produces the DGD without any link to the DGDR (design REQ 7): no dgdr labels or annotations,
	// no namespace, no ownerReferences, no status and no server-populated metadata.
	Export bool
	// RuntimeVersion, when set (MAJOR.MINOR.PATCH), is written as runtimeVersionOverride on every
	// component. Dynamo's admission requires it when the image tag is not a semantic version.
	RuntimeVersion string
}

// GenerateDGD builds the DynamoGraphDeployment that serves cfg for the DGDR: a Frontend, one aggregated
// worker or prefill and decode workers with the backend's command line, a Planner when
// spec.enableAutoScaling is true, the model cache and Hugging Face token when configured, and
// spec.overrides.dgd merged in (see MergeDGDPatch). The DGDR should be defaulted (spec.image set).
func GenerateDGD(dgdr *v1alpha1.DynamoGraphDeploymentRequest, cfg profile.Config, opts DGDOptions) (*unstructured.Unstructured, error) {
	if dgdr == nil {
		return nil, errors.New("generating a DGD: no DGDR given")
	}
	g, err := newDGDGraph(dgdr, cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("generating the DGD for DGDR %s: %w", dgdr.Name, err)
	}
	obj := g.render()

	explicitName := ""
	if o := dgdr.Spec.Overrides; o != nil && o.DGD != nil && len(o.DGD.Raw) > 0 {
		explicitName, err = dgdOverrideName(o.DGD.Raw)
		if err != nil {
			return nil, fmt.Errorf("generating the DGD for DGDR %s: spec.overrides.dgd: %w", dgdr.Name, err)
		}
		obj, err = mergeDGDOverride(obj, o.DGD.Raw)
		if err != nil {
			return nil, fmt.Errorf("generating the DGD for DGDR %s: spec.overrides.dgd: %w", dgdr.Name, err)
		}
	}

	u := &unstructured.Unstructured{Object: obj}
	finishDGDMetadata(u, dgdr, opts.Export)
	name, err := DGDName(dgdr.Name, explicitName, dgdComponentNames(u))
	if err != nil {
		return nil, fmt.Errorf("generating the DGD for DGDR %s: %w", dgdr.Name, err)
	}
	u.SetName(name)
	return u, nil
}

// DGDYAML is GenerateDGD written as YAML with a readable key order (EncodeDGDYAML).
func DGDYAML(dgdr *v1alpha1.DynamoGraphDeploymentRequest, cfg profile.Config, opts DGDOptions) ([]byte, error) {
	u, err := GenerateDGD(dgdr, cfg, opts)
	if err != nil {
		return nil, err
	}
	return EncodeDGDYAML(u.Object)
}

// dgdComponent is one component in version-neutral form.
type dgdComponent struct {
	name string
	// kind is the v1beta1 type: frontend, worker, prefill, decode or planner.
	kind           string
	replicas       int
	image          string
	workingDir     string
	command, args  []string
	gpus           int // per pod
	nodeCount      int // > 1: multinode
	scalingAdapter bool
	sharedMemory   string
	hfToken        bool
	modelCache     bool
}

type dgdGraph struct {
	apiVersion     string
	backend        string
	pvcName        string
	hfSecret       string
	runtimeVersion string
	components     []dgdComponent
}

func newDGDGraph(dgdr *v1alpha1.DynamoGraphDeploymentRequest, cfg profile.Config, opts DGDOptions) (*dgdGraph, error) {
	spec := &dgdr.Spec
	g := &dgdGraph{apiVersion: opts.APIVersion, hfSecret: opts.HFTokenSecret, runtimeVersion: opts.RuntimeVersion}
	if g.hfSecret == "" {
		g.hfSecret = dgdr.Annotations[v1alpha1.AnnotationHFTokenSecret]
	}
	switch g.apiVersion {
	case "":
		g.apiVersion = DGDAPIVersionV1Beta1
	case DGDAPIVersionV1Beta1, DGDAPIVersionV1Alpha1:
	default:
		return nil, fmt.Errorf("unsupported DGD apiVersion %q: expected %s or %s", opts.APIVersion, DGDAPIVersionV1Beta1, DGDAPIVersionV1Alpha1)
	}
	if errs := v1alpha1.ValidateName(dgdr.Name); len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	if spec.Image == "" {
		return nil, errors.New("spec.image is empty: default the DGDR (the webhook sets the cluster's image) before generating")
	}
	if g.hfSecret != "" {
		if msgs := validation.IsDNS1123Subdomain(g.hfSecret); len(msgs) > 0 {
			return nil, fmt.Errorf("the Hugging Face token Secret %q: expected a Secret name: %s", g.hfSecret, strings.Join(msgs, "; "))
		}
	}
	if g.runtimeVersion != "" && !dgdRuntimeVersionPattern.MatchString(g.runtimeVersion) {
		return nil, fmt.Errorf("runtime version %q: expected MAJOR.MINOR.PATCH such as 1.3.0", g.runtimeVersion)
	}
	g.backend = cfg.Backend
	if g.backend == "" {
		g.backend = string(spec.Backend)
	}
	if _, ok := dgdRuntimeImageNames[g.backend]; !ok {
		return nil, fmt.Errorf("backend %q cannot be deployed: expected vllm, sglang or trtllm", g.backend)
	}
	if cfg.Replicas < 1 {
		return nil, fmt.Errorf("configuration has %d replicas: expected at least 1", cfg.Replicas)
	}

	model, served := spec.Model, spec.Model
	if mc := spec.ModelCache; mc != nil {
		p, err := DGDModelPath(mc.PVCPath)
		if err != nil {
			return nil, err
		}
		if mc.PVCName == "" {
			return nil, errors.New("spec.modelCache.pvcName is empty: name the PersistentVolumeClaim that holds the model")
		}
		g.pvcName, model = mc.PVCName, p
	}
	gpusPerNode := opts.GPUsPerNode
	if gpusPerNode == 0 && spec.Hardware != nil && spec.Hardware.GPUsPerNode != nil {
		gpusPerNode = int(*spec.Hardware.GPUsPerNode)
	}
	if gpusPerNode < 0 {
		return nil, fmt.Errorf("%d GPUs per node: expected a positive number, or 0 for no limit", gpusPerNode)
	}

	workers, err := dgdWorkersByRole(cfg)
	if err != nil {
		return nil, err
	}
	image := DGDRuntimeImage(spec.Image, g.backend)
	hf := g.hfSecret != ""
	g.components = append(g.components, dgdComponent{
		name: DGDFrontendName, kind: "frontend", replicas: 1, image: image,
		command: []string{"python3", "-m", "dynamo.frontend"}, hfToken: hf, modelCache: g.pvcName != "",
	})
	totalGPUs := 0
	for _, rw := range workers {
		w := rw.worker
		replicas := cfg.Replicas * w.Count
		if replicas > math.MaxInt32 {
			return nil, fmt.Errorf("%d %s workers: too many replicas", replicas, rw.role)
		}
		gpus := w.GPUs()
		totalGPUs += replicas * gpus
		nodes, perPod := dgdSplitNodes(gpus, gpusPerNode)
		c := dgdComponent{
			name: rw.name, kind: rw.kind, replicas: replicas, image: image, workingDir: DGDWorkingDir,
			command:   []string{"python3", "-m", "dynamo." + g.backend},
			args:      dgdWorkerArgs(g.backend, rw.role, w, model, served, spec.ISL(), cfg.KVDtype == "fp8"),
			gpus:      perPod,
			nodeCount: nodes,
			// The Planner scales workers through DynamoGraphDeploymentScalingAdapters.
			scalingAdapter: spec.EnableAutoScaling,
			hfToken:        hf,
			modelCache:     g.pvcName != "",
		}
		if perPod > 1 {
			c.sharedMemory = DGDMultiGPUSharedMemory
		}
		// The Planner finds the worker it scales by type decode, also in aggregated mode (as Dynamo's
		// Qwen3 aggregated recipe labels its worker); without a Planner the aggregated worker is a plain worker.
		if rw.role == profile.RoleAgg && spec.EnableAutoScaling {
			c.kind = "decode"
		}
		g.components = append(g.components, c)
	}
	if spec.EnableAutoScaling {
		budget := totalGPUs
		if h := spec.Hardware; h != nil && h.TotalGPUs != nil && int(*h.TotalGPUs) > budget {
			budget = int(*h.TotalGPUs)
		}
		plannerCfg, err := json.Marshal(dgdPlannerConfig{
			Environment:               "kubernetes",
			Backend:                   g.backend,
			Mode:                      string(cfg.Mode),
			OptimizationTarget:        "sla",
			EnableThroughputScaling:   false,
			EnableLoadScaling:         true,
			PreDeploymentSweepingMode: "none",
			TTFT:                      spec.TTFT(),
			ITL:                       spec.ITL(),
			MaxGPUBudget:              budget,
		})
		if err != nil {
			return nil, fmt.Errorf("encoding the Planner configuration: %w", err)
		}
		g.components = append(g.components, dgdComponent{
			name: DGDPlannerName, kind: "planner", replicas: 1, image: DGDPlannerImage(spec.Image, g.backend),
			command: []string{"python3", "-m", "dynamo.planner"}, args: []string{"--config", string(plannerCfg)},
		})
	}
	return g, nil
}

// dgdPlannerConfig is the Planner's --config. dgdr gives the Planner no pre-deployment sweep data, so it
// scales on live load against the SLA (load-based scaling); throughput-based scaling would need Dynamo's
// profiling sweeps. The Planner reads each worker's GPUs and model name from the DGD itself.
type dgdPlannerConfig struct {
	Environment               string  `json:"environment"`
	Backend                   string  `json:"backend"`
	Mode                      string  `json:"mode"`
	OptimizationTarget        string  `json:"optimization_target"`
	EnableThroughputScaling   bool    `json:"enable_throughput_scaling"`
	EnableLoadScaling         bool    `json:"enable_load_scaling"`
	PreDeploymentSweepingMode string  `json:"pre_deployment_sweeping_mode"`
	TTFT                      float64 `json:"ttft"`
	ITL                       float64 `json:"itl"`
	// MaxGPUBudget bounds scaling: spec.hardware.totalGpus, or the GPUs of the selected configuration
	// (the Planner's own default is 8).
	MaxGPUBudget int `json:"max_gpu_budget"`
}

type dgdRoleWorker struct {
	role       profile.Role
	name, kind string
	worker     profile.Worker
}

// dgdWorkersByRole checks the configuration's workers against its mode and names them.
func dgdWorkersByRole(cfg profile.Config) ([]dgdRoleWorker, error) {
	byRole := map[profile.Role]profile.Worker{}
	for _, w := range cfg.Workers {
		if _, dup := byRole[w.Role]; dup {
			return nil, fmt.Errorf("configuration has two %s worker pools: expected one per role", w.Role)
		}
		if w.Count < 1 || w.TP < 1 || w.PP < 0 || w.DP < 0 || w.EP < 0 || w.Batch < 0 {
			return nil, fmt.Errorf("%s worker pool count=%d tp=%d pp=%d dp=%d ep=%d batch=%d: expected count and tp of at least 1 and no negative sizes",
				w.Role, w.Count, w.TP, w.PP, w.DP, w.EP, w.Batch)
		}
		w.PP, w.DP, w.EP = max(w.PP, 1), max(w.DP, 1), max(w.EP, 1)
		byRole[w.Role] = w
	}
	var want []dgdRoleWorker
	switch cfg.Mode {
	case profile.ModeAgg:
		want = []dgdRoleWorker{{role: profile.RoleAgg, name: DGDWorkerName, kind: "worker"}}
	case profile.ModeDisagg:
		want = []dgdRoleWorker{
			{role: profile.RolePrefill, name: DGDPrefillName, kind: "prefill"},
			{role: profile.RoleDecode, name: DGDDecodeName, kind: "decode"},
		}
	default:
		return nil, fmt.Errorf("configuration mode %q: expected agg or disagg", cfg.Mode)
	}
	if len(byRole) != len(want) {
		return nil, fmt.Errorf("%s configuration has %d worker pools: expected %d", cfg.Mode, len(cfg.Workers), len(want))
	}
	for i := range want {
		w, ok := byRole[want[i].role]
		if !ok {
			return nil, fmt.Errorf("%s configuration has no %s worker pool", cfg.Mode, want[i].role)
		}
		want[i].worker = w
	}
	return want, nil
}

// dgdSplitNodes spreads a worker's GPUs over the fewest nodes of gpusPerNode GPUs with an equal share per
// node (Dynamo's multinode gives every node the same GPU limit). gpusPerNode 0 means no limit.
func dgdSplitNodes(gpus, gpusPerNode int) (nodes, perNode int) {
	if gpusPerNode <= 0 || gpus <= gpusPerNode {
		return 1, gpus
	}
	n := (gpus + gpusPerNode - 1) / gpusPerNode
	for gpus%n != 0 {
		n++
	}
	return n, gpus / n
}

// DGDModelPath is the model's path in the pods for a model-cache pvcPath: the mount path joined with
// the relative path, cleaned. Refusing absolute paths and ".." is what keeps the path from doubling
// (Dynamo's /opt/model-cache/opt/model-cache bug) or escaping the volume.
func DGDModelPath(pvcPath string) (string, error) {
	if strings.HasPrefix(pvcPath, "/") || strings.Contains(pvcPath, "..") {
		return "", fmt.Errorf("spec.modelCache.pvcPath %q: expected a relative path inside the PVC, without '..'", pvcPath)
	}
	return path.Join(DGDModelMountPath, pvcPath), nil
}

// dgdWorkerArgs is the backend's command line for one worker (after python3 -m dynamo.<backend>).
// Flag names follow Dynamo's recipes and templates; see the README's DGD section for the mapping.
// kvFP8 follows the configuration's KV-cache precision, so the deployment has the KV capacity the
// prediction assumed.
func dgdWorkerArgs(backend string, role profile.Role, w profile.Worker, model, served string, isl int, kvFP8 bool) []string {
	itoa := strconv.Itoa
	disagg := role == profile.RolePrefill || role == profile.RoleDecode
	var a []string
	switch backend {
	case profile.BackendVLLM:
		a = []string{"--model", model, "--served-model-name", served}
		if disagg {
			a = append(a, "--disaggregation-mode", string(role), "--kv-transfer-config", dgdNIXLConnector)
		}
		a = append(a, "--tensor-parallel-size", itoa(w.TP))
		if w.PP > 1 {
			a = append(a, "--pipeline-parallel-size", itoa(w.PP))
		}
		if w.DP > 1 {
			a = append(a, "--data-parallel-size", itoa(w.DP))
		}
		if w.EP > 1 {
			a = append(a, "--enable-expert-parallel")
		}
		if w.Batch > 0 {
			a = append(a, "--max-num-seqs", itoa(w.Batch))
		}
		if kvFP8 {
			a = append(a, "--kv-cache-dtype", "fp8")
		}
	case profile.BackendSGLang:
		// SGLang's --tp counts every GPU of the worker; --dp with --enable-dp-attention splits attention.
		a = []string{"--model-path", model, "--served-model-name", served, "--tp", itoa(w.TP * w.DP)}
		if w.PP > 1 {
			a = append(a, "--pp-size", itoa(w.PP))
		}
		if w.DP > 1 {
			a = append(a, "--dp", itoa(w.DP), "--enable-dp-attention")
		}
		if w.EP > 1 {
			a = append(a, "--ep-size", itoa(w.EP))
		}
		if w.Batch > 0 {
			a = append(a, "--max-running-requests", itoa(w.Batch))
		}
		if kvFP8 {
			a = append(a, "--kv-cache-dtype", "fp8_e4m3")
		}
		a = append(a, "--trust-remote-code")
		if disagg {
			a = append(a, "--disaggregation-mode", string(role), "--disaggregation-transfer-backend", "nixl",
				"--disaggregation-bootstrap-port", DGDSGLangBootstrapPort, "--host", "0.0.0.0")
		}
	case profile.BackendTRTLLM:
		// TensorRT-LLM's tensor_parallel_size counts every GPU; attention DP splits attention across them.
		a = []string{"--model-path", model, "--served-model-name", served, "--tensor-parallel-size", itoa(w.TP * w.DP)}
		if w.PP > 1 {
			a = append(a, "--pipeline-parallel-size", itoa(w.PP))
		}
		if w.EP > 1 {
			a = append(a, "--expert-parallel-size", itoa(w.EP))
		}
		if w.Batch > 0 {
			a = append(a, "--max-batch-size", itoa(w.Batch))
		}
		if isl > DGDTRTLLMDefaultMaxNumTokens && role != profile.RoleDecode {
			a = append(a, "--max-num-tokens", itoa(isl))
		}
		if disagg {
			a = append(a, "--disaggregation-mode", string(role))
		}
		if engine := dgdTRTLLMEngineArgs(role, w, kvFP8); engine != "" {
			a = append(a, "--override-engine-args", engine)
		}
	}
	return a
}

// dgdTRTLLMEngineArgs is the inline engine configuration (--override-engine-args JSON) for what
// dynamo.trtllm has no flag for. dgdr writes it inline instead of a ConfigMap mounted with
// --extra-engine-args (the recipes' way) so that the DGD is one self-contained object.
func dgdTRTLLMEngineArgs(role profile.Role, w profile.Worker, kvFP8 bool) string {
	e := map[string]any{}
	if w.DP > 1 {
		e["enable_attention_dp"] = true
	}
	if kvFP8 {
		e["kv_cache_config"] = map[string]any{"dtype": "fp8"}
	}
	if role == profile.RolePrefill || role == profile.RoleDecode {
		e["cache_transceiver_config"] = map[string]any{"backend": "DEFAULT"}
	}
	if role == profile.RolePrefill {
		// TensorRT-LLM's disaggregated context servers run without the overlap scheduler.
		e["disable_overlap_scheduler"] = true
	}
	if len(e) == 0 {
		return ""
	}
	b, _ := json.Marshal(e) // maps of bools and strings always encode
	return string(b)
}

// render writes the graph in the chosen API version as unstructured content.
func (g *dgdGraph) render() map[string]any {
	spec := map[string]any{"backendFramework": g.backend}
	if g.apiVersion == DGDAPIVersionV1Alpha1 {
		services := map[string]any{}
		for _, c := range g.components {
			services[c.name] = g.v1alpha1Service(c)
		}
		spec["services"] = services
	} else {
		var comps []any
		for _, c := range g.components {
			comps = append(comps, g.v1beta1Component(c))
		}
		spec["components"] = comps
	}
	return map[string]any{
		"apiVersion": g.apiVersion,
		"kind":       DGDKind,
		"metadata":   map[string]any{},
		"spec":       spec,
	}
}

func (g *dgdGraph) mainContainer(c dgdComponent) map[string]any {
	m := map[string]any{"image": c.image, "command": strs(c.command)}
	if len(c.args) > 0 {
		m["args"] = strs(c.args)
	}
	if c.workingDir != "" {
		m["workingDir"] = c.workingDir
	}
	if c.modelCache {
		m["volumeMounts"] = []any{map[string]any{"name": DGDModelVolume, "mountPath": DGDModelMountPath, "readOnly": true}}
	}
	return m
}

// modelVolumes mounts the PVC as a pod volume in both API versions (not v1alpha1's spec.pvcs), so the
// mount can be read-only.
func (g *dgdGraph) modelVolumes() []any {
	return []any{map[string]any{
		"name":                  DGDModelVolume,
		"persistentVolumeClaim": map[string]any{"claimName": g.pvcName, "readOnly": true},
	}}
}

func (g *dgdGraph) v1beta1Component(c dgdComponent) map[string]any {
	m := map[string]any{"name": c.name, "type": c.kind, "replicas": int64(c.replicas)}
	main := g.mainContainer(c)
	main["name"] = DGDMainContainer
	if c.hfToken {
		main["envFrom"] = []any{map[string]any{"secretRef": map[string]any{"name": g.hfSecret}}}
	}
	if c.gpus > 0 {
		main["resources"] = map[string]any{"limits": map[string]any{"nvidia.com/gpu": strconv.Itoa(c.gpus)}}
	}
	podSpec := map[string]any{"containers": []any{main}}
	if c.modelCache {
		podSpec["volumes"] = g.modelVolumes()
	}
	m["podTemplate"] = map[string]any{"spec": podSpec}
	if c.nodeCount > 1 {
		m["multinode"] = map[string]any{"nodeCount": int64(c.nodeCount)}
	}
	if c.scalingAdapter {
		m["scalingAdapter"] = map[string]any{}
	}
	if c.sharedMemory != "" {
		m["sharedMemorySize"] = c.sharedMemory
	}
	if g.runtimeVersion != "" {
		m["runtimeVersionOverride"] = g.runtimeVersion
	}
	return m
}

func (g *dgdGraph) v1alpha1Service(c dgdComponent) map[string]any {
	m := map[string]any{"replicas": int64(c.replicas)}
	switch c.kind {
	case "prefill", "decode":
		// v1alpha1 spells the role as a worker with a sub-component type (converted to type prefill|decode).
		m["componentType"], m["subComponentType"] = "worker", c.kind
	default:
		m["componentType"] = c.kind
	}
	if c.hfToken {
		m["envFromSecret"] = g.hfSecret
	}
	if c.gpus > 0 {
		m["resources"] = map[string]any{"limits": map[string]any{"gpu": strconv.Itoa(c.gpus)}}
	}
	pod := map[string]any{"mainContainer": g.mainContainer(c)}
	if c.modelCache {
		pod["volumes"] = g.modelVolumes()
	}
	m["extraPodSpec"] = pod
	if c.nodeCount > 1 {
		m["multinode"] = map[string]any{"nodeCount": int64(c.nodeCount)}
	}
	if c.scalingAdapter {
		m["scalingAdapter"] = map[string]any{"enabled": true}
	}
	if c.sharedMemory != "" {
		m["sharedMemory"] = map[string]any{"size": c.sharedMemory}
	}
	if g.runtimeVersion != "" {
		m["runtimeVersionOverride"] = g.runtimeVersion
	}
	return m
}

func strs(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// dgdOverrideName is overrides.dgd's metadata.name, the user's choice of DGD name.
func dgdOverrideName(raw []byte) (string, error) {
	var o struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return "", fmt.Errorf("expected a partial DynamoGraphDeployment object: %w", err)
	}
	return o.Metadata.Name, nil
}

// mergeDGDOverride merges overrides.dgd (JSON) into the generated object through MergeDGDPatch.
func mergeDGDOverride(obj map[string]any, raw []byte) (map[string]any, error) {
	base, err := EncodeDGDYAML(obj)
	if err != nil {
		return nil, err
	}
	merged, err := MergeDGDPatch(base, raw)
	if err != nil {
		return nil, err
	}
	js, err := sigsyaml.YAMLToJSON(merged)
	if err != nil {
		return nil, fmt.Errorf("reading the merged DGD: %w", err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		return nil, fmt.Errorf("reading the merged DGD: %w", err)
	}
	return u.Object, nil
}

// serverMetadata are fields the API server owns; a generated DGD never carries them.
var serverMetadata = []string{
	"uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
	"deletionGracePeriodSeconds", "managedFields", "selfLink",
}

// finishDGDMetadata links the DGD to its DGDR (namespace, label), or in export mode removes every link.
func finishDGDMetadata(u *unstructured.Unstructured, dgdr *v1alpha1.DynamoGraphDeploymentRequest, export bool) {
	delete(u.Object, "status")
	for _, f := range serverMetadata {
		unstructured.RemoveNestedField(u.Object, "metadata", f)
	}
	if export {
		unstructured.RemoveNestedField(u.Object, "metadata", "namespace")
		unstructured.RemoveNestedField(u.Object, "metadata", "ownerReferences")
		u.SetLabels(withoutDGDRKeys(u.GetLabels()))
		u.SetAnnotations(withoutDGDRKeys(u.GetAnnotations()))
		return
	}
	// The DGD lives beside its DGDR and has no ownerReference: deleting the request must not stop serving.
	if dgdr.Namespace != "" {
		u.SetNamespace(dgdr.Namespace)
	}
	labels := u.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[v1alpha1.LabelDGDRName] = dgdr.Name
	u.SetLabels(labels)
}

// withoutDGDRKeys drops dgdr's own keys (nvidia.com/dgdr-*) and Dynamo's DGDR keys (dgdr.nvidia.com/*).
func withoutDGDRKeys(m map[string]string) map[string]string {
	for k := range m {
		if strings.HasPrefix(k, "nvidia.com/dgdr-") || strings.HasPrefix(k, "dgdr.nvidia.com/") {
			delete(m, k)
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}
