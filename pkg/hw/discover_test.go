package hw

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestMapProduct(t *testing.T) {
	tests := []struct {
		label string
		want  string // "" = not in the catalog
	}{
		{"NVIDIA-H100-80GB-HBM3", "h100_sxm"},
		{"NVIDIA H100 80GB HBM3", "h100_sxm"},
		{"NVIDIA-H100-80GB-HBM3-SHARED", "h100_sxm"},
		{"NVIDIA-H100-SXM5-80GB", "h100_sxm"},
		{"NVIDIA-H100-PCIe", "h100_pcie"},
		{"NVIDIA-H100-NVL", ""},
		{"NVIDIA-H100-SXM5-94GB", ""},
		{"NVIDIA-H800", ""},
		{"NVIDIA-H200", "h200_sxm"},
		{"NVIDIA-H200-SXM-141GB", "h200_sxm"},
		{"NVIDIA-H200-NVL", ""},
		{"NVIDIA-GH200-480GB", ""},
		{"NVIDIA-B200", "b200_sxm"},
		{"NVIDIA-B300-SXM6-AC", "b300_sxm"},
		{"NVIDIA-GB200", "gb200"},
		{"NVIDIA-GB300", "gb300"},
		{"NVIDIA-A100-SXM4-80GB", "a100_sxm"},
		{"NVIDIA-A100-SXM4-40GB", ""},
		{"NVIDIA-A100-80GB-PCIe", "a100_pcie"},
		{"NVIDIA-A100-PCIE-40GB", ""},
		{"NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", ""},
		{"NVIDIA-H100-80GB-HBM3-MIG-3g.40gb", ""},
		{"NVIDIA-L40S", "l40s"},
		{"NVIDIA-L40", ""},
		{"NVIDIA-L4", "l4"},
		{"Tesla-T4", ""},
		{"Tesla-V100-SXM2-16GB", ""},
		{"NVIDIA-A10G", ""},
		{"h200_sxm", "h200_sxm"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.label, func(t *testing.T) {
			got, ok := MapProduct(tt.label)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.want != "", ok)
		})
	}
}

func FuzzMapProduct(f *testing.F) {
	for _, s := range []string{"NVIDIA-H100-80GB-HBM3", "NVIDIA-GB200", "Tesla-T4", "NVIDIA-L4", "--", " nvidia "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, label string) {
		name, ok := MapProduct(label)
		if !ok {
			assert.Empty(t, name)
			return
		}
		_, err := Lookup(name)
		assert.NoError(t, err, "a mapped product is a catalog name")
	})
}

type nodeOpt func(*corev1.Node)

func gpuNode(name, product string, gpus int, opts ...nodeOpt) corev1.Node {
	n := corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("96"),
			},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
	if product != "" {
		n.Labels[LabelProduct] = product
	}
	if gpus >= 0 {
		n.Status.Allocatable[ResourceGPU] = *resource.NewQuantity(int64(gpus), resource.DecimalSI)
	}
	for _, o := range opts {
		o(&n)
	}
	return n
}

func withLabel(k, v string) nodeOpt { return func(n *corev1.Node) { n.Labels[k] = v } }
func withTaint(k string, e corev1.TaintEffect) nodeOpt {
	return func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: k, Value: "true", Effect: e})
	}
}
func cordoned(n *corev1.Node) { n.Spec.Unschedulable = true }
func notReady(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionFalse }
func noAllocatable(n *corev1.Node) {
	delete(n.Status.Allocatable, ResourceGPU)
}

func gpuPod(node string, gpus int, phase corev1.PodPhase) corev1.Pod {
	q := *resource.NewQuantity(int64(gpus), resource.DecimalSI)
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p-" + node},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{
			Name:      "w",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{ResourceGPU: q}},
		}}},
		Status: corev1.PodStatus{Phase: phase},
	}
}

func TestDiscover(t *testing.T) {
	h100 := "NVIDIA-H100-80GB-HBM3"
	tests := []struct {
		name        string
		nodes       []corev1.Node
		pods        []corev1.Pod
		tolerations []corev1.Toleration
		want        []GPUType // compared on the fields set here
		skipped     []string
	}{
		{
			name: "two H100 nodes, one partly used, and a CPU node",
			nodes: []corev1.Node{
				gpuNode("h-1", h100, 8, withLabel(LabelMemory, "81559"), withLabel(LabelCount, "8")),
				gpuNode("h-0", h100, 8, withLabel(LabelMemory, "81559")),
				gpuNode("cpu-0", "", -1),
			},
			pods: []corev1.Pod{
				gpuPod("h-1", 3, corev1.PodRunning),
				gpuPod("h-1", 2, corev1.PodPending),
				gpuPod("h-0", 8, corev1.PodSucceeded),
				gpuPod("", 8, corev1.PodPending), // not scheduled yet
			},
			want: []GPUType{{Name: "h100_sxm", Product: h100, Known: true, MemoryMiB: 81559, Nodes: 2, GPUsPerNode: 8,
				TotalGPUs: 16, FreeGPUs: 11, NodeList: []NodeGPUs{{"h-0", 8, 8}, {"h-1", 8, 3}}}},
		},
		{
			name: "cordoned, not ready and tainted nodes are skipped; the GPU taint is tolerated",
			nodes: []corev1.Node{
				gpuNode("ok", "NVIDIA-H200", 8, withTaint(TaintGPU, corev1.TaintEffectNoSchedule)),
				gpuNode("soft", "NVIDIA-H200", 8, withTaint("maintenance", corev1.TaintEffectPreferNoSchedule)),
				gpuNode("cord", "NVIDIA-H200", 8, cordoned),
				gpuNode("down", "NVIDIA-H200", 8, notReady),
				gpuNode("drain", "NVIDIA-H200", 8, withTaint("maintenance", corev1.TaintEffectNoExecute)),
			},
			want: []GPUType{{Name: "h200_sxm", Product: "NVIDIA-H200", Known: true, Nodes: 2, GPUsPerNode: 8,
				TotalGPUs: 16, FreeGPUs: 16, NodeList: []NodeGPUs{{"ok", 8, 8}, {"soft", 8, 8}}}},
			skipped: []string{"cord", "down", "drain"},
		},
		{
			name: "a caller toleration admits a tainted node",
			nodes: []corev1.Node{
				gpuNode("ded", "NVIDIA-B200", 8, withTaint("dedicated", corev1.TaintEffectNoSchedule)),
			},
			tolerations: []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}},
			want: []GPUType{{Name: "b200_sxm", Product: "NVIDIA-B200", Known: true, Nodes: 1, GPUsPerNode: 8,
				TotalGPUs: 8, FreeGPUs: 8, NodeList: []NodeGPUs{{"ded", 8, 8}}}},
		},
		{
			name: "mixed cluster sorts known first by size; unknown keeps its label and gets a low-confidence estimate",
			nodes: []corev1.Node{
				gpuNode("gb-0", "NVIDIA-GB200", 4),
				gpuNode("gb-1", "NVIDIA-GB200", 4),
				gpuNode("gb-2", "NVIDIA-GB200", 4),
				gpuNode("l4-0", "NVIDIA-L4", 1),
				gpuNode("a40-0", "NVIDIA-A100-SXM4-40GB", 8, withLabel(LabelMemory, "40960")),
				gpuNode("t4-0", "Tesla-T4", 1),
			},
			want: []GPUType{
				{Name: "gb200", Product: "NVIDIA-GB200", Known: true, Nodes: 3, GPUsPerNode: 4, TotalGPUs: 12, FreeGPUs: 12,
					NodeList: []NodeGPUs{{"gb-0", 4, 4}, {"gb-1", 4, 4}, {"gb-2", 4, 4}}},
				{Name: "l4", Product: "NVIDIA-L4", Known: true, Nodes: 1, GPUsPerNode: 1, TotalGPUs: 1, FreeGPUs: 1,
					NodeList: []NodeGPUs{{"l4-0", 1, 1}}},
				{Product: "NVIDIA-A100-SXM4-40GB", MemoryMiB: 40960, LowConfidence: true, EstimatedFrom: "l40s",
					Nodes: 1, GPUsPerNode: 8, TotalGPUs: 8, FreeGPUs: 8, NodeList: []NodeGPUs{{"a40-0", 8, 8}}},
				{Product: "Tesla-T4", Nodes: 1, GPUsPerNode: 1, TotalGPUs: 1, FreeGPUs: 1, NodeList: []NodeGPUs{{"t4-0", 1, 1}}},
			},
		},
		{
			name: "time-slicing: replicas divide allocatable, requests count in slices",
			nodes: []corev1.Node{
				gpuNode("ts", "NVIDIA-L40S-SHARED", 16, withLabel(LabelReplicas, "4"), withLabel(LabelCount, "4")),
			},
			pods: []corev1.Pod{gpuPod("ts", 3, corev1.PodRunning)},
			want: []GPUType{{Name: "l40s", Product: "NVIDIA-L40S-SHARED", Known: true, Nodes: 1, GPUsPerNode: 4,
				TotalGPUs: 4, FreeGPUs: 3, NodeList: []NodeGPUs{{"ts", 4, 3}}}},
		},
		{
			name: "without allocatable the gpu.count label counts; over-requested nodes have zero free",
			nodes: []corev1.Node{
				gpuNode("lbl", "NVIDIA-H100-80GB-HBM3", -1, noAllocatable, withLabel(LabelCount, "8")),
			},
			pods: []corev1.Pod{gpuPod("lbl", 9, corev1.PodRunning)},
			want: []GPUType{{Name: "h100_sxm", Product: "NVIDIA-H100-80GB-HBM3", Known: true, Nodes: 1, GPUsPerNode: 8,
				TotalGPUs: 8, FreeGPUs: 0, NodeList: []NodeGPUs{{"lbl", 8, 0}}}},
		},
		{
			name:  "GPU node without a product label is unknown",
			nodes: []corev1.Node{gpuNode("bare", "", 2)},
			want: []GPUType{{Product: "", Nodes: 1, GPUsPerNode: 2, TotalGPUs: 2, FreeGPUs: 2,
				NodeList: []NodeGPUs{{"bare", 2, 2}}}},
		},
		{name: "no nodes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Discover(tt.nodes, tt.pods, tt.tolerations...)
			require.Len(t, d.Types, len(tt.want))
			for i, w := range tt.want {
				got := d.Types[i]
				if w.Known {
					require.NotNil(t, got.Spec)
					assert.Equal(t, w.Name, got.Spec.Name)
				}
				if w.LowConfidence {
					require.NotNil(t, got.Spec)
					assert.Empty(t, got.Spec.Name, "an estimate has no catalog name")
					assert.InDelta(t, float64(w.MemoryMiB)/1024, got.Spec.MemoryGiB, 1e-9)
					assert.Contains(t, got.Spec.Product, w.Product)
				}
				if !w.Known && !w.LowConfidence {
					assert.Nil(t, got.Spec)
				}
				got.Spec = nil
				assert.Equal(t, w, got)
			}
			var skipped []string
			for _, s := range d.Skipped {
				skipped = append(skipped, s.Name)
				assert.NotEmpty(t, s.Reason)
			}
			assert.Equal(t, tt.skipped, skipped)
		})
	}
}

func TestDiscoverInitContainers(t *testing.T) {
	one := *resource.NewQuantity(1, resource.DecimalSI)
	four := *resource.NewQuantity(4, resource.DecimalSI)
	always := corev1.ContainerRestartPolicyAlways
	req := func(q resource.Quantity) corev1.ResourceRequirements {
		return corev1.ResourceRequirements{Requests: corev1.ResourceList{ResourceGPU: q}}
	}
	tests := []struct {
		name string
		spec corev1.PodSpec
		used int
	}{
		{"init larger than app", corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "i", Resources: req(four)}},
			Containers:     []corev1.Container{{Name: "a", Resources: req(one)}, {Name: "b", Resources: req(one)}},
		}, 4},
		{"app larger than init", corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "i", Resources: req(one)}},
			Containers:     []corev1.Container{{Name: "a", Resources: req(four)}},
		}, 4},
		{"sidecar adds to app", corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "s", RestartPolicy: &always, Resources: req(one)}},
			Containers:     []corev1.Container{{Name: "a", Resources: req(four)}},
		}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.NodeName = "n"
			d := Discover([]corev1.Node{gpuNode("n", "NVIDIA-B200", 8)}, []corev1.Pod{{Spec: tt.spec}})
			require.Len(t, d.Types, 1)
			assert.Equal(t, 8-tt.used, d.Types[0].FreeGPUs)
		})
	}
}

func TestDiscoveryBestAndFind(t *testing.T) {
	d := Discover([]corev1.Node{
		gpuNode("h", "NVIDIA-H100-80GB-HBM3", 8),
		gpuNode("h2", "NVIDIA-H100-80GB-HBM3", 8),
		gpuNode("b", "NVIDIA-B200", 8),
		gpuNode("t", "Tesla-T4", 64),
	}, []corev1.Pod{gpuPod("h", 8, corev1.PodRunning), gpuPod("h2", 4, corev1.PodRunning)})
	best, ok := d.Best()
	require.True(t, ok)
	assert.Equal(t, "b200_sxm", best.Name, "most free GPUs among known types; unknown types never win")
	h, ok := d.Find("h100_sxm")
	require.True(t, ok)
	assert.Equal(t, 4, h.FreeGPUs)
	assert.Equal(t, 4, h.MaxFreePerNode())
	_, ok = d.Find("gb200")
	assert.False(t, ok)
	_, ok = Discover(nil, nil).Best()
	assert.False(t, ok)
}
