package profile

import (
	"fmt"
	"math"
	"strings"

	"github.com/dgdr-dev/dgdr/pkg/hw"
)

// dtype is a weight, activation or KV precision.
type dtype uint8

const (
	dtBF16 dtype = iota
	dtFP8
	dtFP4
)

func (d dtype) String() string {
	switch d {
	case dtFP8:
		return "fp8"
	case dtFP4:
		return "fp4"
	default:
		return "bf16"
	}
}

// bytes per element, block scales included (nvfp4: one fp8 scale per 16 values).
func (d dtype) bytes() float64 {
	switch d {
	case dtFP8:
		return 1
	case dtFP4:
		return 0.5625
	default:
		return 2
	}
}

func parseDtype(s string) (dtype, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "bf16", "bfloat16", "fp16", "float16", "":
		return dtBF16, nil
	case "fp8", "fp8_block", "fp8_static", "fp8_e4m3", "float8":
		return dtFP8, nil
	case "fp4", "nvfp4", "mxfp4", "w4a16_mxfp4", "int4":
		return dtFP4, nil
	}
	return 0, fmt.Errorf("precision %q: %w (expected bf16, fp8 or fp4)", s, ErrUnsupported)
}

// resolveWeightDtypes picks the precision of the linear layers and of the routed experts: the
// overrides, else the checkpoint's (GEMMQuant/MoEQuant when the catalog split them, else WeightQuant).
func resolveWeightDtypes(linear, experts string, m Model) (dtype, dtype, error) {
	if linear == "" {
		linear = m.WeightQuant
		if m.GEMMQuant != "" || m.MoEQuant != "" {
			linear = m.GEMMQuant
		}
	}
	wd, err := parseDtype(linear)
	if err != nil {
		return 0, 0, err
	}
	if experts == "" && m.MoEQuant != "" && linear == m.GEMMQuant {
		experts = m.MoEQuant
	}
	ed := wd
	if experts != "" {
		if ed, err = parseDtype(experts); err != nil {
			return 0, 0, err
		}
	}
	return wd, ed, nil
}

func resolveKVDtype(override, checkpoint, backend string, wd dtype, mla bool, g hw.GPU) (dtype, error) {
	if override == "" && checkpoint == "fp8" {
		override = checkpoint
	}
	if override != "" {
		d, err := parseDtype(override)
		if err != nil {
			return 0, err
		}
		if d == dtFP4 {
			return 0, fmt.Errorf("fp4 kv cache: %w (expected bf16 or fp8)", ErrUnsupported)
		}
		return d, nil
	}
	// TRT-LLM quantized checkpoints ship an fp8 KV cache; vLLM and SGLang keep "auto" (the model dtype).
	if backend == BackendTRTLLM && wd != dtBF16 {
		return dtFP8, nil
	}
	// SGLang runs MLA on Blackwell with TRT-LLM's MLA kernels (its default attention backend there),
	// which keep the latent cache in fp8 for a quantized model: DeepSeek-R1 fp8 at TP8 on B200 ran 256
	// sequences of 8.7k tokens, twice what a bf16 latent cache holds.
	if backend == BackendSGLang && mla && wd != dtBF16 && g.FP4TFLOPS > 0 {
		return dtFP8, nil
	}
	return dtBF16, nil
}

// kernels turns operator shapes into milliseconds on one GPU. All rates are per millisecond.
type kernels struct {
	tab    *KernelTable
	method Method
	gpu    hw.GPU
	// peaks: FLOP/ms per compute dtype, bytes/ms of HBM.
	flops        [3]float64
	bw           float64
	intra, inter float64 // interconnect bytes/ms per GPU per direction
	domain       int
}

// Interconnect figures. No multi-GPU measurements are at hand (testdata/gpu-data has none), so these are
// published figures: NCCL/custom all-reduce reaches about 80% of the NVLink per-direction bandwidth for
// large messages, and the smallest all-reduce costs about 8 µs inside an NVLink domain and 25 µs across
// InfiniBand (NCCL's documented small-message latencies are 5–10 µs on NVLink, 15–30 µs on IB).
const (
	linkEfficiency = 0.8
	latIntraMs     = 0.008
	latInterMs     = 0.025
)

func newKernels(g hw.GPU) (kernels, error) {
	tabs, err := loadTables()
	if err != nil {
		return kernels{}, err
	}
	if g.MemBandwidthGBs <= 0 || g.BF16TFLOPS <= 0 {
		return kernels{}, fmt.Errorf("gpu %q: catalog figures missing (memory bandwidth and bf16 peak are required)", g.Name)
	}
	k := kernels{gpu: g, method: MethodKernelTable}
	k.tab = tabs[g.Name]
	if k.tab == nil {
		k.tab = tabs[ReferenceGPU]
		k.method = MethodRoofline
	}
	if k.method == MethodKernelTable {
		// The table's utilisations are relative to the peaks it was derived with.
		k.flops = [3]float64{k.tab.BF16TFLOPS * 1e9, k.tab.FP8TFLOPS * 1e9, 0}
		k.bw = k.tab.MemGBs * 1e6
	} else {
		k.flops = [3]float64{g.BF16TFLOPS * 1e9, g.FP8TFLOPS * 1e9, g.FP4TFLOPS * 1e9}
		k.bw = g.MemBandwidthGBs * 1e6
	}
	if k.flops[dtFP8] <= 0 {
		k.flops[dtFP8] = k.flops[dtBF16] // fp8 weights are upcast on GPUs without fp8 tensor cores
	}
	if g.FP4TFLOPS <= 0 || k.flops[dtFP4] <= 0 {
		// No fp4 tensor cores (Hopper and older): fp4 weights are dequantised in the kernel and the math
		// runs in bf16 (w4a16, as vLLM's and SGLang's MXFP4 paths on Hopper), so only the bytes shrink.
		k.flops[dtFP4] = k.flops[dtBF16]
	}
	k.intra = g.IntraNodeGBs * 1e6 * linkEfficiency
	k.inter = g.InterNodeGBs * 1e6 * linkEfficiency
	if k.intra <= 0 {
		k.intra = k.inter
	}
	if k.inter <= 0 {
		k.inter = k.intra
	}
	k.domain = max(g.NVLinkDomain, 1)
	return k, nil
}

// memop is a pure memory-bound kernel (copy, norm, elementwise) moving bytes.
func (k *kernels) memop(bytes float64) float64 {
	if bytes <= 0 {
		return 0
	}
	u := k.tab.MemBW.At(math.Log2(bytes))
	return bytes / (k.bw * u)
}

// gemm is Y[m,n] = X[m,k]·W[n,k]ᵀ with weights in wd (activations in wd for fp8/fp4 math, bf16 else).
func (k *kernels) gemm(m, n, kk float64, wd dtype) float64 {
	if m <= 0 || n <= 0 || kk <= 0 {
		return 0
	}
	ab := 2.0
	if wd != dtBF16 {
		ab = 1
	}
	flops := 2 * m * n * kk
	bytes := ab*m*kk + wd.bytes()*n*kk + 2*m*n
	sol := math.Max(flops/k.flops[wd], bytes/k.bw)
	tab := "fp8"
	if wd == dtBF16 {
		tab = "bf16"
	}
	g := k.tab.GEMM[tab]
	u := g.At(math.Log2(m), math.Log2(n*kk))
	return math.Max(sol/u, g.Floor)
}

// prefillAttn is causal attention over flops (both matmuls, the causal half only).
func (k *kernels) prefillAttn(flops float64) float64 {
	if flops <= 0 {
		return 0
	}
	c := k.tab.PrefillAttn
	u := c.At(math.Log2(flops))
	return math.Max(flops/(k.flops[dtBF16]*u), c.Floor)
}

// decodeAttn reads kvBytes of cache and does flops (MLA's absorbed decode is compute-heavy).
func (k *kernels) decodeAttn(kvBytes, flops float64) float64 {
	if kvBytes <= 0 {
		return 0
	}
	c := k.tab.DecodeAttn
	t := kvBytes / (k.bw * c.At(math.Log2(kvBytes)))
	if flops > 0 {
		t = math.Max(t, flops/(k.flops[dtBF16]*k.tab.PrefillAttn.At(math.Log2(flops))))
	}
	return math.Max(t, c.Floor)
}

// moe is the routed-expert block on one GPU: rows routed rows over experts local experts, each an
// MLP h→inter→h with up input projections (2 gated, 1 not; inter already split by MoE tensor
// parallelism). The serving engines run it as fused
// MoE kernels (TRT-LLM's and SGLang's cutlass grouped GEMM, vLLM's fused_moe) that stream the weights
// of the experts actually hit at dense-GEMM efficiency, so it is costed as the gate-up and down GEMMs
// of the routed shape — rows/touched rows against the touched experts' weights — on the dense GEMM
// curves, plus the activation. The torch grouped-GEMM measurement (gpu-data moe.csv: at most ~62% of
// memory bandwidth, a 55 µs floor) timed it before; it made the fitted MoE scale 0.82, which fell back
// to 1 for a model left out of the fit and over-predicted DeepSeek-R1's small-batch decode. moe.csv now
// only checks this costing (TestMoEBlockAgainstGroupedGEMM: 0.45–1.05× torch's time).
func (k *kernels) moe(rows, experts, h, inter, up float64, wd dtype) float64 {
	if rows <= 0 || experts <= 0 {
		return 0
	}
	// Expected distinct experts hit by rows uniformly routed rows.
	touched := experts * (1 - math.Exp(-rows/experts))
	touched = math.Max(touched, math.Min(1, experts))
	m := math.Max(rows/touched, 1)
	return k.gemm(m, touched*up*inter, h, wd) + k.gemm(m, touched*h, inter, wd) + k.memop(rows*inter*2*3)
}

// link is the per-GPU bandwidth and latency of a collective over g GPUs.
func (k *kernels) link(g int) (bw, lat float64) {
	if g <= k.domain {
		return k.intra, latIntraMs
	}
	return k.inter, latInterMs
}

// allReduce of bytes over g GPUs (ring: each GPU sends and receives 2(g−1)/g of the message).
func (k *kernels) allReduce(bytes float64, g int) float64 {
	if g <= 1 || bytes <= 0 {
		return 0
	}
	bw, lat := k.link(g)
	return lat + 2*float64(g-1)/float64(g)*bytes/bw
}

// allToAll where each GPU sends bytes in total, (g−1)/g of it to other GPUs.
func (k *kernels) allToAll(bytes float64, g int) float64 {
	if g <= 1 || bytes <= 0 {
		return 0
	}
	bw, lat := k.link(g)
	return lat + float64(g-1)/float64(g)*bytes/bw
}

// p2p sends bytes to the next pipeline stage (across nodes when a stage fills a node).
func (k *kernels) p2p(bytes float64, crossNode bool) float64 {
	if bytes <= 0 {
		return 0
	}
	if crossNode {
		return latInterMs + bytes/k.inter
	}
	return latIntraMs + bytes/k.intra
}
