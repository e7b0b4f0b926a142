package cli

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/dgdr-dev/dgdr/internal/repo"
)

func runEstimate(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	in, out, errOut := bytes.NewBufferString(stdin), &bytes.Buffer{}, &bytes.Buffer{}
	root := NewRootCmd(genericiooptions.IOStreams{In: in, Out: out, ErrOut: errOut})
	root.SetArgs(append([]string{"estimate"}, args...))
	err := root.Execute()
	return out.String(), errOut.String(), err
}

// Rows in the calibration layout, written for this test (not taken from the calibration table).
const estimateInput = `system,backend,model_path,precision,gemm_quant_mode,moe_quant_mode,mode,isl,osl,batch_size,tp_size,pp_size,attention_dp_size,moe_ep_size,prefill_tp_size,prefill_moe_ep_size,decode_tp_size,decode_moe_ep_size,concurrency,note
h200_sxm,vllm,Qwen/Qwen3-32B,fp8,fp8,,agg,2048,512,16,2,1,1,1,,,,,,keep me
h100_sxm,sglang,Qwen/Qwen3-235B-A22B,fp8,fp8_block,fp8_block,agg,1024,1024,32,8,1,1,8,,,,,64,
b200_sxm,trtllm,openai/gpt-oss-120b,fp4,,mxfp4,disagg,8192,1024,,,,,,1,1,4,4,128,
h100_sxm,vllm,acme/not-a-model,,,,agg,1024,128,8,1,1,1,1,,,,,,
h100_sxm,vllm,meta-llama/Llama-3.1-70B,,,,agg,1024,128,8,1,1,1,1,,,,,,
`

func TestEstimateCSV(t *testing.T) {
	out, stderr, err := runEstimate(t, estimateInput, "--from-csv", "-")
	require.NoError(t, err)
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	require.NoError(t, err)
	require.Len(t, recs, 6)
	head := recs[0]
	require.Equal(t, []string{"predicted_ttft_ms", "predicted_tpot_ms", "ttft_p10_ms", "ttft_p90_ms", "itl_p10_ms", "itl_p90_ms", "error"}, head[len(head)-7:])
	col := map[string]int{}
	for i, h := range head {
		col[h] = i
	}
	assert.Equal(t, "keep me", recs[1][col["note"]], "extra columns are kept")
	for _, r := range recs[1:4] {
		assert.Empty(t, r[col["error"]], "row %v", r)
		ttft, err := strconv.ParseFloat(r[col["predicted_ttft_ms"]], 64)
		require.NoError(t, err)
		itl, err := strconv.ParseFloat(r[col["predicted_tpot_ms"]], 64)
		require.NoError(t, err)
		assert.Positive(t, ttft)
		assert.Positive(t, itl)
		// Each prediction lies inside its p10–p90 interval.
		for _, b := range []struct {
			point    float64
			p10, p90 string
		}{{ttft, "ttft_p10_ms", "ttft_p90_ms"}, {itl, "itl_p10_ms", "itl_p90_ms"}} {
			lo, err := strconv.ParseFloat(r[col[b.p10]], 64)
			require.NoError(t, err)
			hi, err := strconv.ParseFloat(r[col[b.p90]], 64)
			require.NoError(t, err)
			assert.Positive(t, lo)
			assert.LessOrEqual(t, lo, b.point*(1+1e-3), b.p10)
			assert.GreaterOrEqual(t, hi, b.point*(1-1e-3), b.p90)
			assert.Less(t, lo, hi)
		}
	}
	assert.Contains(t, recs[4][col["error"]], "not-a-model")
	assert.Empty(t, recs[4][col["predicted_ttft_ms"]])
	assert.Contains(t, recs[5][col["error"]], "does not fit", "70B bf16 on one H100")
	assert.Contains(t, stderr, "estimated 3 of 5 rows")
}

func TestEstimateModelConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := `{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":2048,"intermediate_size":8192,
"num_hidden_layers":16,"num_attention_heads":32,"num_key_value_heads":8,"vocab_size":128256,"max_position_embeddings":8192,"torch_dtype":"bfloat16"}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644))
	in := "system,backend,model_path,mode,isl,osl,batch_size,tp_size\nh100_sxm,vllm,acme/tiny,agg,512,128,4,1\n"
	out, _, err := runEstimate(t, in, "--from-csv", "-", "--model-config", dir)
	require.NoError(t, err)
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	require.NoError(t, err)
	require.Len(t, recs, 2)
	assert.Empty(t, recs[1][len(recs[1])-1])
	assert.NotEmpty(t, recs[1][len(recs[1])-7])
}

func TestEstimateErrors(t *testing.T) {
	_, _, err := runEstimate(t, "")
	require.ErrorContains(t, err, "--from-csv is required")
	_, _, err = runEstimate(t, "", "--from-csv", filepath.Join(t.TempDir(), "missing.csv"))
	require.ErrorContains(t, err, "open --from-csv")
	_, _, err = runEstimate(t, "", "--from-csv", "-")
	require.ErrorContains(t, err, "read csv header")
}

// Every row of the calibration table is answered or says why not.
func TestEstimateCalibrationTable(t *testing.T) {
	path := repo.TestPath(t, "calibration", "serving_measurements_train.csv")
	out, _, err := runEstimate(t, "", "--from-csv", path)
	require.NoError(t, err)
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	require.NoError(t, err)
	n := len(recs) - 1
	require.Greater(t, n, 2000)
	answered := 0
	for _, r := range recs[1:] {
		l := len(r)
		if r[l-1] == "" {
			answered++
			require.NotEmpty(t, r[l-7])
			require.NotEmpty(t, r[l-2], "an answered row has its interval")
		} else {
			require.Empty(t, r[l-7])
		}
	}
	assert.GreaterOrEqual(t, float64(answered)/float64(n), 0.95, "answered %d of %d", answered, n)
}
