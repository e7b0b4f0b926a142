package hw

// GPU is one catalog entry. Throughputs are dense (no sparsity) peak figures per GPU.
type GPU struct {
	// Name is the catalog key (h100_sxm, h200_sxm, …) used by flags, spec.hardware.gpuType and the kernel tables.
	Name string `json:"name"`
	// Product is a human-readable name.
	Product string `json:"product"`
	// MemoryGiB is the usable device memory.
	MemoryGiB float64 `json:"memoryGiB"`
	// MemBandwidthGBs is the HBM/GDDR bandwidth in GB/s.
	MemBandwidthGBs float64 `json:"memBandwidthGBs"`
	// BF16TFLOPS, FP8TFLOPS, FP4TFLOPS are dense tensor-core peaks; 0 means the format is not supported.
	BF16TFLOPS float64 `json:"bf16TFLOPS"`
	FP8TFLOPS  float64 `json:"fp8TFLOPS"`
	FP4TFLOPS  float64 `json:"fp4TFLOPS"`
	// IntraNodeGBs is the per-GPU unidirectional bandwidth to other GPUs of the node (NVLink or PCIe), GB/s.
	IntraNodeGBs float64 `json:"intraNodeGBs"`
	// InterNodeGBs is the per-GPU network bandwidth to other nodes, GB/s.
	InterNodeGBs float64 `json:"interNodeGBs"`
	// GPUsPerNode is the usual node size (NVLink domain for GB200 NVL72 is larger than a node).
	GPUsPerNode int `json:"gpusPerNode"`
	// NVLinkDomain is the number of GPUs that share the fast interconnect (8 for HGX, 72 for NVL72, 1 for PCIe cards without a bridge).
	NVLinkDomain int `json:"nvlinkDomain"`
}
