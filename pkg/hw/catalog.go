package hw

import (
	"fmt"
	"slices"
	"strings"
)

// Catalog figures. Each entry cites where its numbers come from. Conventions:
//   - Throughputs are dense tensor-core peaks; NVIDIA's datasheets quote "with sparsity" figures,
//     which are halved here (the datasheet's sparse figure is given in the comment).
//   - Interconnect bandwidths are per GPU and per direction: NVLink "900 GB/s" (H100) and
//     "1.8 TB/s" (Blackwell) are bidirectional totals, so 450 and 900 GB/s here; PCIe Gen4 x16 is
//     32 GB/s and Gen5 x16 64 GB/s per direction.
//   - InterNodeGBs is the per-GPU scale-out NIC: DGX/HGX H100, H200 and B200 systems ship one
//     ConnectX-7 400 Gb/s (50 GB/s) per GPU, B300/GB300 systems a ConnectX-8 800 Gb/s (100 GB/s).
//     PCIe servers have no reference design; 200 Gb/s per GPU (25 GB/s) is assumed.
//   - MemoryGiB is what the device reports where a measurement is at hand (nvidia-smi in
//     testdata/gpu-data/<name>/env.json, or the device-visible MiB that aiconfigurator's system specs
//     record, summarised in shared/research/aic.md §2.8), otherwise the datasheet capacity.
//   - For GB200/GB300 NVL72 a node (compute tray) holds 4 GPUs but NVLink spans the 72-GPU rack;
//     see LinkGBs.
var catalog = []GPU{
	{
		// Datasheet: NVIDIA H100 Tensor Core GPU (SXM5). 80 GB HBM3, 3.35 TB/s; BF16 1,979 TFLOPS and
		// FP8 3,958 TFLOPS with sparsity; NVLink 900 GB/s. Memory: 81,559 MiB per nvidia-smi
		// (testdata/gpu-data/h100_sxm/env.json).
		Name: "h100_sxm", Product: "NVIDIA H100 SXM5 80GB",
		MemoryGiB: 79.65, MemBandwidthGBs: 3350,
		BF16TFLOPS: 989.5, FP8TFLOPS: 1979, FP4TFLOPS: 0,
		IntraNodeGBs: 450, InterNodeGBs: 50, GPUsPerNode: 8, NVLinkDomain: 8,
	},
	{
		// Datasheet: NVIDIA H100 Tensor Core GPU (PCIe). 80 GB HBM2e, 2.0 TB/s; BF16 1,513 TFLOPS and
		// FP8 3,026 TFLOPS with sparsity; PCIe Gen5 128 GB/s (bidirectional). The optional NVLink
		// bridge pairs only two cards, so the fast domain is taken as 1.
		Name: "h100_pcie", Product: "NVIDIA H100 PCIe 80GB",
		MemoryGiB: 79.65, MemBandwidthGBs: 2000,
		BF16TFLOPS: 756.5, FP8TFLOPS: 1513, FP4TFLOPS: 0,
		IntraNodeGBs: 64, InterNodeGBs: 25, GPUsPerNode: 8, NVLinkDomain: 1,
	},
	{
		// Datasheet: NVIDIA H200 Tensor Core GPU (SXM). 141 GB HBM3e, 4.8 TB/s; BF16 1,979 and FP8
		// 3,958 TFLOPS with sparsity (same die as H100 SXM); NVLink 900 GB/s. Memory: 143,771 MiB per
		// nvidia-smi (testdata/gpu-data/h200_sxm/env.json).
		Name: "h200_sxm", Product: "NVIDIA H200 SXM 141GB",
		MemoryGiB: 140.4, MemBandwidthGBs: 4800,
		BF16TFLOPS: 989.5, FP8TFLOPS: 1979, FP4TFLOPS: 0,
		IntraNodeGBs: 450, InterNodeGBs: 50, GPUsPerNode: 8, NVLinkDomain: 8,
	},
	{
		// Datasheet: NVIDIA DGX B200 / HGX B200 (8 GPUs): 1,440 GB HBM3e and 64 TB/s in total,
		// FP4 144 PFLOPS, FP8 72 PFLOPS, BF16 36 PFLOPS with sparsity; NVLink 5 1.8 TB/s per GPU;
		// 8x ConnectX-7 400 Gb/s. Per GPU: 180 GB, 8 TB/s, FP4 9, FP8 4.5, BF16 2.25 PFLOPS dense.
		Name: "b200_sxm", Product: "NVIDIA B200 SXM 180GB",
		MemoryGiB: 180, MemBandwidthGBs: 8000,
		BF16TFLOPS: 2250, FP8TFLOPS: 4500, FP4TFLOPS: 9000,
		IntraNodeGBs: 900, InterNodeGBs: 50, GPUsPerNode: 8, NVLinkDomain: 8,
	},
	{
		// Datasheet: NVIDIA HGX B300 (Blackwell Ultra, 8 GPUs): 2.3 TB HBM3e in total (288 GB per
		// GPU), 8 TB/s per GPU; FP4 108 PFLOPS dense, FP8 72 and BF16 36 PFLOPS with sparsity;
		// NVLink 5 1.8 TB/s per GPU; ConnectX-8 800 Gb/s per GPU. Memory: 275,040 MiB device-visible
		// (aiconfigurator's b300_sxm system spec, shared/research/aic.md §2.8).
		Name: "b300_sxm", Product: "NVIDIA B300 SXM 288GB",
		MemoryGiB: 268.6, MemBandwidthGBs: 8000,
		BF16TFLOPS: 2250, FP8TFLOPS: 4500, FP4TFLOPS: 13500,
		IntraNodeGBs: 900, InterNodeGBs: 100, GPUsPerNode: 8, NVLinkDomain: 8,
	},
	{
		// Datasheet: NVIDIA GB200 NVL72 (72 GPUs): up to 13.4 TB HBM3e and 576 TB/s in total
		// (186 GB, 8 TB/s per GPU); FP4 1,440, FP8 720 and BF16 360 PFLOPS with sparsity
		// (10, 5, 2.5 PFLOPS dense per GPU); NVLink 5 1.8 TB/s per GPU across the rack. A compute
		// tray has 2 Grace + 4 Blackwell GPUs and ConnectX-7 400 Gb/s per GPU for scale-out.
		// Memory: 189,471 MiB device-visible (aiconfigurator's gb200 system spec, aic.md §2.8).
		Name: "gb200", Product: "NVIDIA GB200 NVL72",
		MemoryGiB: 185, MemBandwidthGBs: 8000,
		BF16TFLOPS: 2500, FP8TFLOPS: 5000, FP4TFLOPS: 10000,
		IntraNodeGBs: 900, InterNodeGBs: 50, GPUsPerNode: 4, NVLinkDomain: 72,
	},
	{
		// Datasheet: NVIDIA GB300 NVL72 (Blackwell Ultra, 72 GPUs): up to 20 TB HBM3e (279 GB per
		// GPU) and 576 TB/s (8 TB/s per GPU); FP4 1,440 PFLOPS dense (20 per GPU with sparsity, 15
		// dense), FP8 720 and BF16 360 PFLOPS with sparsity; NVLink 5 1.8 TB/s per GPU;
		// ConnectX-8 800 Gb/s per GPU. 4 GPUs per compute tray. Memory: 284,208 MiB device-visible
		// (aiconfigurator's gb300 system spec, aic.md §2.8).
		Name: "gb300", Product: "NVIDIA GB300 NVL72",
		MemoryGiB: 277.5, MemBandwidthGBs: 8000,
		BF16TFLOPS: 2500, FP8TFLOPS: 5000, FP4TFLOPS: 15000,
		IntraNodeGBs: 900, InterNodeGBs: 100, GPUsPerNode: 4, NVLinkDomain: 72,
	},
	{
		// Datasheet: NVIDIA A100 Tensor Core GPU, 80GB SXM: 80 GB HBM2e, 2,039 GB/s; BF16 312 TFLOPS
		// dense (624 with sparsity); no FP8/FP4; NVLink 3 600 GB/s. DGX A100: 200 Gb/s HDR per GPU.
		Name: "a100_sxm", Product: "NVIDIA A100 SXM4 80GB",
		MemoryGiB: 80, MemBandwidthGBs: 2039,
		BF16TFLOPS: 312, FP8TFLOPS: 0, FP4TFLOPS: 0,
		IntraNodeGBs: 300, InterNodeGBs: 25, GPUsPerNode: 8, NVLinkDomain: 8,
	},
	{
		// Datasheet: NVIDIA A100 Tensor Core GPU, 80GB PCIe: 80 GB HBM2e, 1,935 GB/s; BF16 312 TFLOPS
		// dense; PCIe Gen4 64 GB/s (bidirectional); the NVLink bridge pairs only two cards.
		Name: "a100_pcie", Product: "NVIDIA A100 PCIe 80GB",
		MemoryGiB: 80, MemBandwidthGBs: 1935,
		BF16TFLOPS: 312, FP8TFLOPS: 0, FP4TFLOPS: 0,
		IntraNodeGBs: 32, InterNodeGBs: 25, GPUsPerNode: 8, NVLinkDomain: 1,
	},
	{
		// Datasheet: NVIDIA L40S: 48 GB GDDR6 (ECC), 864 GB/s; BF16 362.05 TFLOPS dense (733 with
		// sparsity), FP8 733 dense (1,466 with sparsity); PCIe Gen4 x16 64 GB/s (bidirectional); no NVLink.
		Name: "l40s", Product: "NVIDIA L40S 48GB",
		MemoryGiB: 44.99, MemBandwidthGBs: 864,
		BF16TFLOPS: 362.05, FP8TFLOPS: 733, FP4TFLOPS: 0,
		IntraNodeGBs: 32, InterNodeGBs: 25, GPUsPerNode: 8, NVLinkDomain: 1,
	},
	{
		// Datasheet: NVIDIA L4: 24 GB GDDR6, 300 GB/s; BF16 242 and FP8 485 TFLOPS with sparsity;
		// PCIe Gen4 x16 64 GB/s (bidirectional); no NVLink.
		Name: "l4", Product: "NVIDIA L4 24GB",
		MemoryGiB: 22.49, MemBandwidthGBs: 300,
		BF16TFLOPS: 121, FP8TFLOPS: 242.5, FP4TFLOPS: 0,
		IntraNodeGBs: 32, InterNodeGBs: 25, GPUsPerNode: 8, NVLinkDomain: 1,
	},
}

// Lookup returns the catalog entry for a catalog name (h100_sxm, gb200, …), case-insensitive.
func Lookup(name string) (GPU, error) {
	key := strings.ToLower(strings.TrimSpace(name))
	for _, g := range catalog {
		if g.Name == key {
			return g, nil
		}
	}
	return GPU{}, fmt.Errorf("unknown gpu type %q: expected one of %s", name, strings.Join(Names(), ", "))
}

// Names lists the catalog names, sorted.
func Names() []string {
	names := make([]string, 0, len(catalog))
	for _, g := range catalog {
		names = append(names, g.Name)
	}
	slices.Sort(names)
	return names
}

// All returns a copy of every catalog entry, sorted by name.
func All() []GPU {
	out := slices.Clone(catalog)
	slices.SortFunc(out, func(a, b GPU) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// TFLOPS is the dense peak for a compute precision. Formats the GPU lacks fall back to the next wider
// one it has, as engines do (FP8 weights on an A100 are computed in BF16 after dequantization;
// NVFP4/MXFP4 on Hopper run as FP8 or BF16 kernels). Unknown precisions count as BF16.
func (g GPU) TFLOPS(precision string) float64 {
	switch strings.ToLower(precision) {
	case "fp4", "nvfp4", "mxfp4", "w4a4":
		if g.FP4TFLOPS > 0 {
			return g.FP4TFLOPS
		}
		fallthrough
	case "fp8", "fp8_block", "int8", "w8a8":
		if g.FP8TFLOPS > 0 {
			return g.FP8TFLOPS
		}
	}
	return g.BF16TFLOPS
}

// Supports reports whether the tensor cores compute a precision natively (bf16/fp16 always).
func (g GPU) Supports(precision string) bool {
	switch strings.ToLower(precision) {
	case "fp4", "nvfp4", "mxfp4", "w4a4":
		return g.FP4TFLOPS > 0
	case "fp8", "fp8_block", "int8", "w8a8":
		return g.FP8TFLOPS > 0
	}
	return true
}

// MemoryBytes is MemoryGiB in bytes.
func (g GPU) MemoryBytes() float64 { return g.MemoryGiB * (1 << 30) }

// LinkGBs is the per-GPU, per-direction bandwidth of a collective over n GPUs: the NVLink/PCIe
// fabric while the group fits in one node or one NVLink domain (a GB200 NVL72 rack spans 18
// nodes), the scale-out network beyond.
func (g GPU) LinkGBs(n int) float64 {
	if n <= max(g.GPUsPerNode, g.NVLinkDomain) {
		return g.IntraNodeGBs
	}
	return g.InterNodeGBs
}
