package ui

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// Mode says where the page's data comes from.
type Mode string

const (
	// ModeCluster reads DGDRs through the user's kubeconfig (`kubectl dgdr ui`).
	ModeCluster Mode = "cluster"
	// ModePlan shows one offline search (`kubectl dgdr plan --ui`): nothing to export or deploy.
	ModePlan Mode = "plan"
)

// Refresh intervals the page polls at: fast while something is moving, slow once it settled (a
// promote from the command line still shows up).
const (
	refreshActive  = 2 * time.Second
	refreshSettled = 15 * time.Second
)

// View is everything the page shows for one DGDR or one offline plan (GET /api/dgdrs/{name}, GET /api/plan).
type View struct {
	Mode      Mode   `json:"mode"`
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	// Version changes whenever anything shown changes; the page redraws only then.
	Version string  `json:"version"`
	Request Request `json:"request"`
	// Phase is the DGDR's phase ("Pending" when the profiler has not written one yet); empty for a plan.
	Phase      string      `json:"phase,omitempty"`
	Timeline   []Step      `json:"timeline,omitempty"`
	Conditions []Condition `json:"conditions,omitempty"`
	DGDName    string      `json:"dgdName,omitempty"`
	// Deployment mirrors status.deploymentInfo.
	Deployment *v1alpha1.DeploymentInfo `json:"deployment,omitempty"`
	// Explanation says why the selected candidate was chosen, or what the closest one misses.
	Explanation string `json:"explanation,omitempty"`
	MeetsSLA    bool   `json:"meetsSLA"`
	// Candidates are every configuration the search considered (or, without the results ConfigMap, the
	// stored Pareto front); Selected indexes them (−1: none).
	Candidates []Candidate `json:"candidates"`
	Selected   int         `json:"selected"`
	// Rejected counts candidates per reason, in profile.RejectReasons order.
	Rejected  []Rejected `json:"rejected,omitempty"`
	Predicted int        `json:"predicted"`
	Method    string     `json:"method,omitempty"`
	// Calibration is the calibration the predictions used: the search document's (a namespace's refit,
	// kubectl dgdr calibrate) or ShippedCalibration; empty without a search document, where it is unknown.
	Calibration string `json:"calibration,omitempty"`
	// SLAProbability is the probability that the selected (or closest) candidate meets each target,
	// when the search document carries it.
	SLAProbability *profile.SLAProbability `json:"slaProbability,omitempty"`
	// Note says what is missing from the view and why (e.g. the results ConfigMap could not be read).
	Note string `json:"note,omitempty"`
	// CanAct is true when Export and Deploy are offered; Why says why not.
	CanAct bool   `json:"canAct"`
	Why    string `json:"why,omitempty"`
	// RefreshMs is how often the page polls this view (0: never, an offline plan does not change).
	RefreshMs int64 `json:"refreshMs"`
}

// Request is what was asked for.
type Request struct {
	Model          string  `json:"model"`
	Backend        string  `json:"backend"`
	Image          string  `json:"image,omitempty"`
	ISL            int     `json:"isl"`
	OSL            int     `json:"osl"`
	TTFTMs         float64 `json:"ttftMs"`
	ITLMs          float64 `json:"itlMs"`
	Confidence     float64 `json:"confidence"` // spec.sla.confidence (plan --sla-confidence), defaulted
	SearchStrategy string  `json:"searchStrategy"`
	AutoApply      bool    `json:"autoApply"`
	AutoScaling    bool    `json:"autoScaling"`
	GPU            string  `json:"gpu,omitempty"`
	GPUsPerNode    int     `json:"gpusPerNode,omitempty"`
	TotalGPUs      int     `json:"totalGPUs,omitempty"`
	ModelCache     string  `json:"modelCache,omitempty"`
}

// Step is one phase of the lifecycle as the timeline shows it.
type Step struct {
	Phase string `json:"phase"`
	// State is done, current, failed, todo or skipped (Deploying/Deployed of a Ready DGDR without autoApply).
	State string `json:"state"`
	// Time is when the step was reached, when known (RFC 3339).
	Time string `json:"time,omitempty"`
}

// Condition is a status condition, flattened for the page.
type Condition struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	Time    string `json:"time,omitempty"`
}

// Candidate is one configuration with what the page needs to place and explain it.
type Candidate struct {
	Config profile.Config `json:"config"`
	// Describe is profile.Describe of the configuration.
	Describe  string `json:"describe"`
	Predicted bool   `json:"predicted"`
	Front     bool   `json:"front"`
	// Pick is the configuration's --pick for export and promote: its row of status.profilingResults.pareto,
	// or −1 for the selected configuration when it is not on the stored front. Absent: not exportable
	// (dominated, infeasible, or thinned out of the stored front).
	Pick    *int     `json:"pick,omitempty"`
	Reasons []string `json:"reasons,omitempty"`
	Detail  string   `json:"detail,omitempty"`
}

// Rejected is how many candidates were rejected for one reason.
type Rejected struct {
	Reason string `json:"reason"`
	Count  int    `json:"count"`
}

// ShippedCalibration is what the page says when the predictions used the calibration shipped in the
// binary (fitted by make calibrate on the repository's measurements).
const ShippedCalibration = "shipped (make calibrate)"

// PlanView is the page of an offline search.
func PlanView(req profile.SearchRequest, res profile.SearchResult) *View {
	rep := profile.NewReport(&req, &res, true)
	backend := string(v1alpha1.BackendAny)
	if len(req.Backends) == 1 {
		backend = req.Backends[0]
	}
	v := &View{
		Mode: ModePlan,
		Request: Request{
			Model: req.Model.ID, Backend: backend, ISL: req.Workload.ISL, OSL: req.Workload.OSL,
			TTFTMs: req.SLA.TTFTMs, ITLMs: req.SLA.ITLMs, Confidence: rep.SLA.Confidence,
			SearchStrategy: string(v1alpha1.SearchRapid),
		},
		Why: "an offline plan has no DGDR: create one (kubectl dgdr create) to export or deploy a configuration",
	}
	fillReport(v, &rep, nil)
	v.Version = version(v)
	return v
}

// DGDRView is the page of one DGDR. rep is the search document of its <name>-profiling ConfigMap, nil when
// there is none or it could not be read (note says why); the candidates are then the stored Pareto front.
func DGDRView(d *v1alpha1.DynamoGraphDeploymentRequest, rep *profile.Report, note string) *View {
	spec := d.DeepCopy()
	spec.Default("")
	s := &spec.Spec
	v := &View{
		Mode: ModeCluster, Name: d.Name, Namespace: d.Namespace,
		Request: Request{
			Model: s.Model, Backend: string(s.Backend), Image: s.Image, ISL: s.ISL(), OSL: s.OSL(),
			TTFTMs: s.TTFT(), ITLMs: s.ITL(), Confidence: s.Confidence(), SearchStrategy: string(s.SearchStrategy),
			AutoApply: s.AutoApply, AutoScaling: s.EnableAutoScaling,
		},
		Phase:      string(d.Status.Phase),
		DGDName:    d.Status.DGDName,
		Deployment: d.Status.DeploymentInfo,
		Note:       note,
	}
	if v.Phase == "" {
		v.Phase = string(v1alpha1.PhasePending)
	}
	if h := s.Hardware; h != nil {
		v.Request.GPU = h.GPUType
		if h.GPUsPerNode != nil {
			v.Request.GPUsPerNode = int(*h.GPUsPerNode)
		}
		if h.TotalGPUs != nil {
			v.Request.TotalGPUs = int(*h.TotalGPUs)
		}
	}
	if mc := s.ModelCache; mc != nil {
		v.Request.ModelCache = mc.PVCName
		if mc.PVCPath != "" {
			v.Request.ModelCache += "/" + mc.PVCPath
		}
	}
	for _, c := range d.Status.Conditions {
		v.Conditions = append(v.Conditions, Condition{Type: c.Type, Status: string(c.Status), Reason: c.Reason, Message: c.Message, Time: rfc3339(c.LastTransitionTime)})
	}
	v.Timeline = timeline(d)

	pr := d.Status.ProfilingResults
	switch {
	case pr == nil || pr.SelectedConfig == nil:
		v.Candidates, v.Selected = []Candidate{}, -1
		v.Why = "no profiling results yet: export and deploy become available when the DGDR is Ready"
		if d.Status.Phase == v1alpha1.PhaseFailed {
			v.Why = "the DGDR failed before profiling produced results"
		}
	case rep != nil:
		fillReport(v, rep, pr)
		v.CanAct = true
	default:
		fillStored(v, pr)
		v.CanAct = true
	}
	if pr != nil && pr.SelectedConfig != nil && v.Explanation == "" {
		v.Explanation = pr.SelectedConfig.Reason
	}

	switch d.Status.Phase {
	case v1alpha1.PhaseReady, v1alpha1.PhaseDeployed, v1alpha1.PhaseFailed:
		v.RefreshMs = refreshSettled.Milliseconds()
	default:
		v.RefreshMs = refreshActive.Milliseconds()
	}
	v.Version = version(v)
	return v
}

// fillReport copies a search document into the view: every costed candidate (or the front alone when the
// document has no candidate list), then the examples of the layouts rejected before costing. With stored
// results (a DGDR), each candidate of the stored front gets its --pick.
func fillReport(v *View, rep *profile.Report, pr *v1alpha1.ProfilingResults) {
	v.Explanation, v.MeetsSLA, v.Selected = rep.Explanation, rep.Selected != nil, -1
	v.Predicted, v.Method = rep.Predicted, string(rep.Method)
	v.Calibration, v.SLAProbability = cmp.Or(rep.Calibration, ShippedCalibration), rep.SLAProbability
	if v.Request.GPU == "" {
		v.Request.GPU = rep.GPU
	}
	if v.Request.GPUsPerNode == 0 {
		v.Request.GPUsPerNode = rep.GPUsPerNode
	}
	if v.Request.TotalGPUs == 0 {
		v.Request.TotalGPUs = rep.TotalGPUs
	}
	cands := rep.Candidates
	if len(cands) == 0 {
		for _, c := range rep.Pareto {
			cands = append(cands, profile.Candidate{Config: c, Predicted: true})
		}
	}
	v.Candidates = make([]Candidate, 0, len(cands))
	for _, c := range cands {
		out := Candidate{Config: c.Config, Describe: profile.Describe(c.Config), Predicted: c.Predicted, Detail: c.Detail}
		for _, r := range c.Reasons {
			out.Reasons = append(out.Reasons, string(r))
		}
		out.Front = slices.ContainsFunc(rep.Pareto, func(p profile.Config) bool { return reflect.DeepEqual(p, c.Config) })
		v.Candidates = append(v.Candidates, out)
	}
	sel := rep.Selected
	if sel == nil {
		sel = rep.Closest
	}
	if sel != nil {
		v.Selected = slices.IndexFunc(v.Candidates, func(c Candidate) bool { return reflect.DeepEqual(c.Config, *sel) })
	}
	for _, r := range profile.RejectReasons {
		rj, ok := rep.Rejected[r]
		if !ok || rj.Count == 0 {
			continue
		}
		v.Rejected = append(v.Rejected, Rejected{Reason: string(r), Count: rj.Count})
		if r == profile.RejectTTFT || r == profile.RejectITL {
			continue // costed: already among the candidates
		}
		for _, e := range rj.Examples {
			v.Candidates = append(v.Candidates, Candidate{Config: e.Config, Describe: profile.Describe(e.Config), Reasons: []string{string(r)}, Detail: e.Detail})
		}
	}
	if pr == nil {
		return
	}
	// The stored front may be thinned (status holds at most 64 points): match by value.
	for i := range v.Candidates {
		c := &v.Candidates[i]
		if !c.Predicted {
			continue
		}
		p := expand.ParetoPoint(c.Config)
		if j := slices.IndexFunc(pr.Pareto, func(q v1alpha1.ParetoPoint) bool { return reflect.DeepEqual(p, q) }); j >= 0 {
			c.Pick = &j
		}
	}
	if v.Selected >= 0 && v.Candidates[v.Selected].Pick == nil && reflect.DeepEqual(expand.ParetoPoint(v.Candidates[v.Selected].Config), pr.SelectedConfig.ParetoPoint) {
		sel := -1
		v.Candidates[v.Selected].Pick = &sel
	}
}

// fillStored builds the candidates from status alone: the stored front and the selected configuration.
func fillStored(v *View, pr *v1alpha1.ProfilingResults) {
	sel := pr.SelectedConfig
	v.Selected = -1
	v.MeetsSLA = sel.MeetsSLA
	v.Candidates = make([]Candidate, 0, len(pr.Pareto)+1)
	for j, p := range pr.Pareto {
		c := expand.ConfigFromPoint(p)
		v.Candidates = append(v.Candidates, Candidate{Config: c, Describe: profile.Describe(c), Predicted: true, Front: true, Pick: &j})
	}
	if i := int(sel.Index); i >= 0 && i < len(v.Candidates) {
		v.Selected = i
	} else {
		c := expand.ConfigFromPoint(sel.ParetoPoint)
		pick := -1
		v.Candidates = append(v.Candidates, Candidate{Config: c, Describe: profile.Describe(c), Predicted: true, Pick: &pick})
		v.Selected = len(v.Candidates) - 1
	}
	for i := range v.Candidates {
		if !v.Candidates[i].Config.MeetsSLA {
			v.Candidates[i].Detail = "misses the SLA"
		}
	}
	v.Predicted = len(v.Candidates)
}

// phaseOrder is the happy path of the lifecycle.
var phaseOrder = []v1alpha1.Phase{v1alpha1.PhasePending, v1alpha1.PhaseProfiling, v1alpha1.PhaseReady, v1alpha1.PhaseDeploying, v1alpha1.PhaseDeployed}

// failedAt maps the condition that went False on failure to the phase it belongs to.
var failedAt = map[string]v1alpha1.Phase{
	v1alpha1.ConditionValidated:         v1alpha1.PhasePending,
	v1alpha1.ConditionProfilingComplete: v1alpha1.PhaseProfiling,
	v1alpha1.ConditionDGDGenerated:      v1alpha1.PhaseProfiling,
	v1alpha1.ConditionDeploymentReady:   v1alpha1.PhaseDeploying,
}

// timeline places the DGDR on Pending → Profiling → Ready → Deploying → Deployed, with the times it
// reached each step when status tells them.
func timeline(d *v1alpha1.DynamoGraphDeploymentRequest) []Step {
	phase := d.Status.Phase
	if phase == "" {
		phase = v1alpha1.PhasePending
	}
	cur := slices.Index(phaseOrder, phase)
	if phase == v1alpha1.PhaseFailed {
		// The step that failed: the first False condition's phase, else the last step with evidence.
		cur = 0
		for _, c := range d.Status.Conditions {
			if p, ok := failedAt[c.Type]; ok && c.Status == metav1.ConditionFalse {
				cur = slices.Index(phaseOrder, p)
				break
			}
		}
	}
	times := map[v1alpha1.Phase]string{v1alpha1.PhasePending: rfc3339(d.CreationTimestamp)}
	if pr := d.Status.ProfilingResults; pr != nil {
		if pr.StartTime != nil {
			times[v1alpha1.PhaseProfiling] = rfc3339(*pr.StartTime)
		}
		if pr.CompletionTime != nil {
			times[v1alpha1.PhaseReady] = rfc3339(*pr.CompletionTime)
		}
	}
	for _, c := range d.Status.Conditions {
		if c.Type != v1alpha1.ConditionDeploymentReady {
			continue
		}
		if c.Status == metav1.ConditionTrue {
			times[v1alpha1.PhaseDeployed] = rfc3339(c.LastTransitionTime)
		} else if cur >= slices.Index(phaseOrder, v1alpha1.PhaseDeploying) {
			times[v1alpha1.PhaseDeploying] = rfc3339(c.LastTransitionTime)
		}
	}
	steps := make([]Step, len(phaseOrder))
	for i, p := range phaseOrder {
		s := Step{Phase: string(p), State: "todo"}
		switch {
		case i < cur:
			s.State = "done"
		case i == cur && phase == v1alpha1.PhaseFailed:
			s.State = "failed"
		case i == cur && phase == v1alpha1.PhaseDeployed:
			s.State = "done"
		case i == cur:
			s.State = "current"
		case phase == v1alpha1.PhaseReady && !d.Spec.AutoApply:
			// Without autoApply the DGDR rests at Ready until someone promotes a configuration.
			s.State = "skipped"
		}
		if s.State != "todo" && s.State != "skipped" {
			s.Time = times[p]
		}
		steps[i] = s
	}
	return steps
}

func rfc3339(t metav1.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// version fingerprints a view (without its own Version).
func version(v *View) string {
	c := *v
	c.Version = ""
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Sprintf("unencodable: %v", err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}
