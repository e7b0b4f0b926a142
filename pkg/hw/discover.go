package hw

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
)

// GPU feature discovery labels and the device plugin's extended resource.
const (
	LabelProduct  = "nvidia.com/gpu.product"
	LabelCount    = "nvidia.com/gpu.count"
	LabelMemory   = "nvidia.com/gpu.memory" // MiB per GPU
	LabelReplicas = "nvidia.com/gpu.replicas"
	ResourceGPU   = corev1.ResourceName("nvidia.com/gpu")
)

// TaintGPU is the taint key many clusters put on GPU nodes to keep non-GPU pods off them. Discovery
// tolerates it whatever its value and effect: the workers it plans for request nvidia.com/gpu, and
// such pods carry the matching toleration (added by the ExtendedResourceToleration admission
// plugin or by the Dynamo operator's defaults).
const TaintGPU = "nvidia.com/gpu"

// Discovery is what a cluster offers, per GPU type.
type Discovery struct {
	// Types are sorted known-first, then by total GPUs (descending), then by name.
	Types []GPUType `json:"types"`
	// Skipped are GPU nodes left out, with the reason (cordoned, tainted, not ready).
	Skipped []SkippedNode `json:"skipped,omitempty"`
}

// GPUType is one kind of GPU found on schedulable nodes.
type GPUType struct {
	// Name is the catalog name; empty when Known is false.
	Name string `json:"name,omitempty"`
	// Product is the raw nvidia.com/gpu.product label value (the first, sorted, when several
	// labels map to one catalog name); empty for nodes that only advertise nvidia.com/gpu.
	Product string `json:"product"`
	// Known is true when Product maps to a catalog entry (see MapProduct).
	Known bool `json:"known"`
	// LowConfidence is true when Spec was derived from the nvidia.com/gpu.memory label of an unknown
	// product: the memory is the label's, every other figure is the nearest catalog entry's
	// (EstimatedFrom). Callers should say so to the user.
	LowConfidence bool   `json:"lowConfidence,omitempty"`
	EstimatedFrom string `json:"estimatedFrom,omitempty"`
	// Spec is the catalog entry (Known), an estimate (LowConfidence) or nil (unknown without a
	// memory label).
	Spec *GPU `json:"spec,omitempty"`
	// MemoryMiB is the nvidia.com/gpu.memory label (0 when absent).
	MemoryMiB int `json:"memoryMiB,omitempty"`

	Nodes int `json:"nodes"`
	// GPUsPerNode is the largest node's GPU count (what one worker can use without crossing nodes).
	GPUsPerNode int `json:"gpusPerNode"`
	TotalGPUs   int `json:"totalGPUs"`
	// FreeGPUs is TotalGPUs minus the nvidia.com/gpu requests of the given non-terminated pods.
	FreeGPUs int `json:"freeGPUs"`
	// NodeList has each node's name, GPUs and free GPUs, sorted by name.
	NodeList []NodeGPUs `json:"nodeList"`
}

// NodeGPUs is one node's share of a GPUType.
type NodeGPUs struct {
	Name string `json:"name"`
	GPUs int    `json:"gpus"`
	Free int    `json:"free"`
}

// SkippedNode is a GPU node that discovery left out.
type SkippedNode struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// MaxFreePerNode is the most free GPUs on one node of this type.
func (t GPUType) MaxFreePerNode() int {
	m := 0
	for _, n := range t.NodeList {
		m = max(m, n.Free)
	}
	return m
}

// Find returns the known type with a catalog name.
func (d Discovery) Find(name string) (GPUType, bool) {
	for _, t := range d.Types {
		if t.Known && t.Name == name {
			return t, true
		}
	}
	return GPUType{}, false
}

// Best is the known type with the most free GPUs (ties: most total, then name), the one to plan
// for when the request names no GPU type.
func (d Discovery) Best() (GPUType, bool) {
	var best GPUType
	found := false
	for _, t := range d.Types {
		if !t.Known {
			continue
		}
		if !found || t.FreeGPUs > best.FreeGPUs ||
			(t.FreeGPUs == best.FreeGPUs && t.TotalGPUs > best.TotalGPUs) {
			best, found = t, true
		}
	}
	return best, found
}

// Discover groups the GPUs of schedulable nodes by type. Nodes without GPUs are ignored; GPU nodes
// that are cordoned, not Ready, or carry a NoSchedule/NoExecute taint that neither TaintGPU nor
// one of tolerations tolerates are listed in Skipped. pods may be nil; those with a NodeName and not
// Succeeded/Failed reduce their node's free GPUs by their effective nvidia.com/gpu request.
//
// A node's GPU count is its allocatable nvidia.com/gpu, divided by nvidia.com/gpu.replicas when
// time-slicing advertises each GPU several times (sharing adds no compute); without allocatable it
// falls back to the nvidia.com/gpu.count label.
func Discover(nodes []corev1.Node, pods []corev1.Pod, tolerations ...corev1.Toleration) Discovery {
	used := podGPUsByNode(pods)
	groups := map[string]*GPUType{}
	var d Discovery
	for _, n := range nodes {
		gpus, replicas := nodeGPUs(n)
		if gpus <= 0 {
			continue
		}
		if reason := unschedulable(n, tolerations); reason != "" {
			d.Skipped = append(d.Skipped, SkippedNode{Name: n.Name, Reason: reason})
			continue
		}
		product := n.Labels[LabelProduct]
		memMiB, _ := strconv.Atoi(n.Labels[LabelMemory])
		name, known := MapProduct(product)
		key := "known:" + name
		if !known {
			key = "unknown:" + normalizeProduct(product)
		}
		g := groups[key]
		if g == nil {
			g = &GPUType{Name: name, Product: product, Known: known, MemoryMiB: memMiB}
			groups[key] = g
		}
		g.Product = minNonEmpty(g.Product, product)
		g.MemoryMiB = max(g.MemoryMiB, memMiB)
		// Requests are counted in advertised (possibly time-sliced) units; convert to GPUs.
		busy := (used[n.Name] + replicas - 1) / replicas
		free := max(gpus-busy, 0)
		g.Nodes++
		g.GPUsPerNode = max(g.GPUsPerNode, gpus)
		g.TotalGPUs += gpus
		g.FreeGPUs += free
		g.NodeList = append(g.NodeList, NodeGPUs{Name: n.Name, GPUs: gpus, Free: free})
	}
	for _, g := range groups {
		slices.SortFunc(g.NodeList, func(a, b NodeGPUs) int { return strings.Compare(a.Name, b.Name) })
		switch {
		case g.Known:
			spec, _ := Lookup(g.Name)
			g.Spec = &spec
		case g.MemoryMiB > 0:
			spec := estimate(g.Product, g.MemoryMiB)
			g.Spec, g.LowConfidence, g.EstimatedFrom = &spec, true, spec.Name
			g.Spec.Name = ""
		}
		d.Types = append(d.Types, *g)
	}
	slices.SortFunc(d.Types, func(a, b GPUType) int {
		if a.Known != b.Known {
			if a.Known {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(b.TotalGPUs, a.TotalGPUs), strings.Compare(a.Name, b.Name),
			strings.Compare(a.Product, b.Product))
	})
	slices.SortFunc(d.Skipped, func(a, b SkippedNode) int { return strings.Compare(a.Name, b.Name) })
	return d
}

// estimate builds a low-confidence spec for an unknown product: the catalog entry whose memory is
// nearest (ties: the slower one, to err on the side of caution), with the label's memory.
func estimate(product string, memMiB int) GPU {
	mem := float64(memMiB) / 1024
	var best GPU
	bestDiff := -1.0
	for _, g := range All() {
		diff := g.MemoryGiB - mem
		if diff < 0 {
			diff = -diff
		}
		if bestDiff < 0 || diff < bestDiff || (diff == bestDiff && g.MemBandwidthGBs < best.MemBandwidthGBs) {
			best, bestDiff = g, diff
		}
	}
	best.Product = fmt.Sprintf("%s (estimated from %s)", product, best.Name)
	best.MemoryGiB = mem
	return best
}

// nodeGPUs returns the node's physical GPU count and the time-slicing replica factor (≥1).
func nodeGPUs(n corev1.Node) (gpus, replicas int) {
	replicas = 1
	if r, err := strconv.Atoi(n.Labels[LabelReplicas]); err == nil && r > 1 {
		replicas = r
	}
	if q, ok := n.Status.Allocatable[ResourceGPU]; ok {
		return int(q.Value()) / replicas, replicas
	}
	c, _ := strconv.Atoi(n.Labels[LabelCount])
	return c, replicas
}

// unschedulable says why new GPU pods cannot land on the node, or "".
func unschedulable(n corev1.Node, tolerations []corev1.Toleration) string {
	if n.Spec.Unschedulable {
		return "cordoned (spec.unschedulable)"
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status != corev1.ConditionTrue {
			return "not Ready"
		}
	}
	for i := range n.Spec.Taints {
		t := &n.Spec.Taints[i]
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if t.Key == TaintGPU || tolerated(t, tolerations) {
			continue
		}
		return fmt.Sprintf("taint %s=%s:%s not tolerated", t.Key, t.Value, t.Effect)
	}
	return ""
}

func tolerated(t *corev1.Taint, tolerations []corev1.Toleration) bool {
	for i := range tolerations {
		if tolerations[i].ToleratesTaint(logr.Discard(), t, false) {
			return true
		}
	}
	return false
}

// podGPUsByNode sums the effective nvidia.com/gpu request of running or pending pods per node. A
// pod's effective request is the larger of its largest init container and the sum of its
// containers (the scheduler's rule); limits stand in for requests an object omits (the API server
// defaults extended-resource requests to limits).
func podGPUsByNode(pods []corev1.Pod) map[string]int {
	out := map[string]int{}
	for _, p := range pods {
		if p.Spec.NodeName == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		app, sidecars, initPeak := 0, 0, 0
		for _, c := range p.Spec.Containers {
			app += containerGPUs(c)
		}
		for _, c := range p.Spec.InitContainers {
			// Restartable init containers (sidecars) keep running beside what starts after them.
			if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
				sidecars += containerGPUs(c)
				initPeak = max(initPeak, sidecars)
				continue
			}
			initPeak = max(initPeak, containerGPUs(c)+sidecars)
		}
		sum := max(app+sidecars, initPeak)
		out[p.Spec.NodeName] += sum
	}
	return out
}

func containerGPUs(c corev1.Container) int {
	if q, ok := c.Resources.Requests[ResourceGPU]; ok {
		return int(q.Value())
	}
	if q, ok := c.Resources.Limits[ResourceGPU]; ok {
		return int(q.Value())
	}
	return 0
}

func minNonEmpty(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "" || a < b:
		return a
	}
	return b
}
