package expand

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/dgdr-dev/dgdr/internal/repo"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// TestDGDMatchesRecipes generates, for one recipe per backend in testdata/dynamo/recipes, the DGD of the
// same model and topology and compares each worker with the recipe's: the same Dynamo module, the same
// values of the flags that set the topology and the role, the same GPUs per worker and replicas.
func TestDGDMatchesRecipes(t *testing.T) {
	for _, tc := range []struct {
		recipe  string
		model   string
		cfg     profile.Config
		workers map[string]string // recipe service → our component
		flags   []string
		// engineKeys are TRT-LLM engine settings compared between the recipe's engine-config ConfigMap and
		// our inline --override-engine-args.
		engineKeys []string
	}{
		{
			recipe: "qwen3-32b_vllm_disagg-kv-router_deploy.yaml", model: "Qwen/Qwen3-32B",
			cfg: profile.Config{Backend: "vllm", Mode: profile.ModeDisagg, Replicas: 1, Workers: []profile.Worker{
				{Role: profile.RolePrefill, Count: 6, TP: 2, PP: 1, EP: 1, DP: 1},
				{Role: profile.RoleDecode, Count: 2, TP: 2, PP: 1, EP: 1, DP: 1},
			}},
			workers: map[string]string{"VllmPrefillWorker": DGDPrefillName, "VllmDecodeWorker": DGDDecodeName},
			flags:   []string{"--model", "--tensor-parallel-size", "--data-parallel-size", "--disaggregation-mode", "--kv-transfer-config"},
		},
		{
			recipe: "deepseek-r1_sglang_disagg-8gpu_deploy.yaml", model: "deepseek-ai/DeepSeek-R1",
			cfg: profile.Config{Backend: "sglang", Mode: profile.ModeDisagg, Replicas: 1, Workers: []profile.Worker{
				{Role: profile.RolePrefill, Count: 1, TP: 8, PP: 1, EP: 8, DP: 1},
				{Role: profile.RoleDecode, Count: 1, TP: 1, PP: 1, EP: 8, DP: 8},
			}},
			workers: map[string]string{"prefill": DGDPrefillName, "decode": DGDDecodeName},
			flags: []string{"--model-path", "--served-model-name", "--tp", "--dp", "--enable-dp-attention", "--ep-size",
				"--trust-remote-code", "--disaggregation-mode", "--host"},
		},
		{
			recipe: "gpt-oss-120b_trtllm_agg_deploy.yaml", model: "openai/gpt-oss-120b",
			cfg: profile.Config{Backend: "trtllm", Mode: profile.ModeAgg, Replicas: 1, Workers: []profile.Worker{
				{Role: profile.RoleAgg, Count: 1, TP: 1, PP: 1, EP: 4, DP: 4, Batch: 800},
			}},
			workers:    map[string]string{"TrtllmWorker": DGDWorkerName},
			flags:      []string{"--model-path", "--served-model-name", "--tensor-parallel-size", "--expert-parallel-size", "--max-batch-size", "--disaggregation-mode"},
			engineKeys: []string{"enable_attention_dp", "tensor_parallel_size"},
		},
	} {
		t.Run(tc.recipe, func(t *testing.T) {
			docs := readRecipe(t, repo.TestPath(t, "dynamo", "recipes", tc.recipe))
			recipe := findDoc(t, docs, "DynamoGraphDeployment")
			services, _, err := unstructured.NestedMap(recipe, "spec", "services")
			require.NoError(t, err)

			d := dgdTestDGDR("recipe", tc.model, tc.cfg.Backend)
			ours, err := GenerateDGD(d, tc.cfg, DGDOptions{APIVersion: DGDAPIVersionV1Alpha1, GPUsPerNode: 8})
			require.NoError(t, err)
			ourServices, _, err := unstructured.NestedMap(ours.Object, "spec", "services")
			require.NoError(t, err)
			backend, _, _ := unstructured.NestedString(recipe, "spec", "backendFramework")
			if backend != "" {
				got, _, _ := unstructured.NestedString(ours.Object, "spec", "backendFramework")
				assert.Equal(t, backend, got, "backendFramework")
			}

			for recipeName, ourName := range tc.workers {
				rs, ok := services[recipeName].(map[string]any)
				require.True(t, ok, "recipe service %s", recipeName)
				oursvc, ok := ourServices[ourName].(map[string]any)
				require.True(t, ok, "our component %s", ourName)

				rModule, rArgs := commandLine(t, rs)
				oModule, oArgs := commandLine(t, oursvc)
				assert.Equal(t, rModule, oModule, "%s: Dynamo module", recipeName)
				for _, f := range tc.flags {
					rv, rok := rArgs.get(f)
					ov, ook := oArgs.get(f)
					assert.Equal(t, rok, ook, "%s: %s present in recipe=%v, ours=%v", recipeName, f, rok, ook)
					assert.Equal(t, rv, ov, "%s: %s", recipeName, f)
				}
				rGPU, _, _ := unstructured.NestedString(rs, "resources", "limits", "gpu")
				oGPU, _, _ := unstructured.NestedString(oursvc, "resources", "limits", "gpu")
				assert.Equal(t, rGPU, oGPU, "%s: GPUs per worker", recipeName)
				assert.EqualValues(t, rs["replicas"], oursvc["replicas"], "%s: replicas", recipeName)
				if sub, ok := rs["subComponentType"]; ok {
					assert.Equal(t, sub, oursvc["subComponentType"], "%s: subComponentType", recipeName)
				}

				if len(tc.engineKeys) > 0 {
					rEngine := recipeEngineConfig(t, docs, rArgs)
					oEngine := map[string]any{}
					if v, ok := oArgs.get("--override-engine-args"); ok {
						require.NoError(t, k8syaml.Unmarshal([]byte(v), &oEngine))
					}
					for _, k := range tc.engineKeys {
						want, ok := rEngine[k]
						if !ok {
							continue // the recipe sets it on the command line instead
						}
						got, inEngine := oEngine[k]
						if !inEngine && k == "tensor_parallel_size" {
							got, _ = oArgs.get("--tensor-parallel-size")
							got = mustAtoi(t, got.(string))
						}
						assert.EqualValues(t, want, got, "%s: engine setting %s", recipeName, k)
					}
				}
			}
		})
	}
}

func readRecipe(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	dec := k8syaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var docs []map[string]any
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return docs
		}
		require.NoError(t, err)
		if m != nil {
			docs = append(docs, m)
		}
	}
}

func findDoc(t *testing.T, docs []map[string]any, kind string) map[string]any {
	t.Helper()
	for _, d := range docs {
		if d["kind"] == kind {
			return d
		}
	}
	t.Fatalf("no %s in the recipe", kind)
	return nil
}

// recipeArgs are parsed flags: flag → value ("" for a switch).
type recipeArgs map[string]string

func (a recipeArgs) get(flag string) (string, bool) {
	v, ok := a[flag]
	return v, ok
}

// commandLine reads a v1alpha1 service's main container: the python module after -m and the flags.
// Recipes write the command either as a list or as one /bin/sh -c string with $VAR references to the
// container's env; both are handled.
func commandLine(t *testing.T, svc map[string]any) (string, recipeArgs) {
	t.Helper()
	mc, _, _ := unstructured.NestedMap(svc, "extraPodSpec", "mainContainer")
	command, _, _ := unstructured.NestedStringSlice(mc, "command")
	args, _, _ := unstructured.NestedStringSlice(mc, "args")
	env := map[string]string{}
	envs, _, _ := unstructured.NestedSlice(mc, "env")
	for _, e := range envs {
		m := e.(map[string]any)
		if v, ok := m["value"].(string); ok {
			env[m["name"].(string)] = v
		}
	}
	tokens := append(append([]string{}, command...), args...)
	if len(command) == 2 && strings.HasSuffix(command[0], "sh") && command[1] == "-c" {
		require.Len(t, args, 1, "a /bin/sh -c command has one script argument")
		tokens = shellWords(t, args[0], env)
	}
	module := ""
	parsed := recipeArgs{}
	for i := 0; i < len(tokens); i++ {
		tok := tokens[i]
		if tok == "-m" && i+1 < len(tokens) {
			module = tokens[i+1]
			i++
			continue
		}
		if !strings.HasPrefix(tok, "--") {
			continue
		}
		if k, v, ok := strings.Cut(tok, "="); ok {
			parsed[k] = v
			continue
		}
		if i+1 < len(tokens) && !strings.HasPrefix(tokens[i+1], "--") {
			parsed[tok] = tokens[i+1]
			i++
		} else {
			parsed[tok] = ""
		}
	}
	require.NotEmpty(t, module, "no python -m module in %v", tokens)
	return module, parsed
}

// shellWords splits a shell command line the way /bin/sh would for the recipes' simple scripts: quotes,
// backslash-newline continuations and $VAR / ${VAR} expansion (outside single quotes).
func shellWords(t *testing.T, s string, env map[string]string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord := false
	quote := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '\\' && i+1 < len(s):
			i++
			if s[i] != '\n' {
				cur.WriteByte(s[i])
				inWord = true
			}
		case c == '\'' || c == '"':
			if quote == c {
				quote = 0
			} else if quote == 0 {
				quote = c
			} else {
				cur.WriteByte(c)
			}
			inWord = true
		case c == '$' && i+1 < len(s):
			j := i + 1
			braced := s[j] == '{'
			if braced {
				j++
			}
			k := j
			for k < len(s) && (s[k] == '_' || s[k] >= 'A' && s[k] <= 'Z' || s[k] >= 'a' && s[k] <= 'z' || s[k] >= '0' && s[k] <= '9') {
				k++
			}
			v, ok := env[s[j:k]]
			require.True(t, ok, "the script uses $%s, which the container does not set", s[j:k])
			cur.WriteString(v)
			inWord = true
			if braced {
				k++
			}
			i = k - 1
		case quote == 0 && (c == ' ' || c == '\t' || c == '\n'):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	require.Zero(t, quote, "unterminated quote in %q", s)
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// recipeEngineConfig reads the TRT-LLM engine YAML the recipe passes with --extra-engine-args from its
// ConfigMap (matched by the file name).
func recipeEngineConfig(t *testing.T, docs []map[string]any, args recipeArgs) map[string]any {
	t.Helper()
	file, ok := args.get("--extra-engine-args")
	require.True(t, ok, "the TRT-LLM recipe passes --extra-engine-args")
	for _, d := range docs {
		if d["kind"] != "ConfigMap" {
			continue
		}
		data, _, _ := unstructured.NestedStringMap(d, "data")
		if text, ok := data[filepath.Base(file)]; ok {
			out := map[string]any{}
			require.NoError(t, k8syaml.Unmarshal([]byte(text), &out))
			return out
		}
	}
	t.Fatalf("no ConfigMap holds %s", file)
	return nil
}

func mustAtoi(t *testing.T, s string) int64 {
	t.Helper()
	return int64(atoi(t, s))
}

// TestDGDRecipeParsing checks the helpers above against a script of the shape the recipes use.
func TestDGDRecipeParsing(t *testing.T) {
	words := shellWords(t, "python3 -m dynamo.trtllm \\\n  --model-path \"${MODEL_PATH}\" \\\n  --kv '{\"a\": 1}' --name $NAME", map[string]string{"MODEL_PATH": "org/m", "NAME": "n"})
	assert.Equal(t, []string{"python3", "-m", "dynamo.trtllm", "--model-path", "org/m", "--kv", `{"a": 1}`, "--name", "n"}, words)
}
