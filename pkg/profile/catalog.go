package profile

import (
	"cmp"
	"embed"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
)

// The embedded catalog: one config.json-shaped file per model, named org--name.json (the Hugging Face
// cache's spelling of org/name), holding only the fields ParseConfig reads.
//
//go:embed models/*.json
var modelFiles embed.FS

// catalogEntry is one embedded model with its lookup key.
type catalogEntry struct {
	model Model
	key   modelKey
}

// catalog parses the embedded files once; the result is never modified (lookups copy entries).
var catalog = sync.OnceValues(loadCatalog)

// loadCatalog parses every embedded file.
func loadCatalog() ([]catalogEntry, error) {
	files, err := modelFiles.ReadDir("models")
	if err != nil {
		return nil, fmt.Errorf("read embedded model catalog: %w", err)
	}
	out := make([]catalogEntry, 0, len(files))
	for _, f := range files {
		data, err := modelFiles.ReadFile(path.Join("models", f.Name()))
		if err != nil {
			return nil, fmt.Errorf("read embedded model %s: %w", f.Name(), err)
		}
		id := strings.Replace(strings.TrimSuffix(f.Name(), ".json"), "--", "/", 1)
		m, err := ParseConfig(id, data)
		if err != nil {
			return nil, fmt.Errorf("embedded model %s: %w", f.Name(), err)
		}
		m.CatalogID = id
		key := parseModelID(id)
		key.quant = m.WeightQuant // what the checkpoint is, whatever its name says
		out = append(out, catalogEntry{model: m, key: key})
	}
	slices.SortFunc(out, func(a, b catalogEntry) int { return strings.Compare(a.model.ID, b.model.ID) })
	return out, nil
}

// Models lists the ids of the embedded catalog, sorted.
func Models() []string {
	entries, err := catalog()
	if err != nil {
		panic(err) // the embedded files are fixed at build time; TestCatalogModelsParse guards them
	}
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.model.ID
	}
	return ids
}

// familyAliases map a query's base name to a catalog base name for releases that share an
// architecture with a catalog entry but whose names do not reduce to it by dropping variant tokens.
// Fine-tunes of a catalog architecture (same dimensions) belong here too; vision-language releases
// map to their language model, which is what serving costs.
var familyAliases = map[string]string{
	"deepseek-prover-v2-671b": "deepseek-v3",
	"mistral-7b":              "mistral-7b-v0.3",
	"mixtral-8x7b":            "mixtral-8x7b-v0.1",
	"mixtral-8x22b":           "mixtral-8x22b-v0.1",
	"mistral-small-3.1-24b":   "mistral-small-24b", // Mistral3ForConditionalGeneration around the same text model
	"mistral-small-3.2-24b":   "mistral-small-24b",
	"llama-3.1-nemotron-70b":  "llama-3.1-70b",
	"qwq-32b":                 "qwen2.5-32b",
	"minimax-m2":              "minimax-m2.5", // M2, M2.1 and M2.5 share the architecture
	"minimax-m2.1":            "minimax-m2.5",
	"minimax-m2.7":            "minimax-m2.5",
	"glm-4.6":                 "glm-4.5", // 4.6 and 4.7 keep 4.5's dimensions (longer context only)
	"glm-4.7":                 "glm-4.5",
	"kimi-k2.6":               "kimi-k2.5", // the same KimiK25 wrapper around the same DeepSeek-V3 text model
	"kimi-k2.7-code":          "kimi-k2.5",
	"qwen3.6-35b-a3b":         "qwen3.5-35b-a3b", // Qwen3.6 reuses the Qwen3.5 shapes
	"qwen3-vl-235b-a22b":      "qwen3-235b-a22b", // Qwen3-VL's language models are Qwen3's
	"qwen3-vl-30b-a3b":        "qwen3-30b-a3b",
	"qwen3-vl-8b":             "qwen3-8b",
	"qwen3-vl-4b":             "qwen3-4b",
	"qwen3-vl-2b":             "qwen3-1.7b",
	"glm-5.1":                 "glm-5", // 5.1 republishes 5's dimensions
	"qwen2.5-coder-32b":       "qwen2.5-32b",
	"qwen2.5-coder-14b":       "qwen2.5-14b",
	"qwen2.5-coder-7b":        "qwen2.5-7b",
	"qwen3-coder-30b-a3b":     "qwen3-30b-a3b",
}

// LookupModel resolves a model id against the embedded catalog. Besides the exact id it accepts any
// case, ids without the org, other orgs' re-uploads (nvidia/, RedHatAI/, a model-cache path) and
// release or quantization variants: suffixes such as -Instruct, -Base, -Chat, -0528, -2507, -FP8,
// -FP8-dynamic, -NVFP4, -FP4-v2, -AWQ and -GPTQ-Int4 map to the base architecture, with the
// weight quantization taken from the suffix. Model.ID is the id asked for; Model.CatalogID the
// entry used. An unknown id is an error that lists the closest catalog ids.
func LookupModel(id string) (Model, error) {
	entries, err := catalog()
	if err != nil {
		return Model{}, err
	}
	q := parseModelID(id)
	if q.base == "" {
		return Model{}, fmt.Errorf("model id %q is empty: expected a Hugging Face id such as Qwen/Qwen3-32B", id)
	}
	var best *catalogEntry
	bestScore := 0
	for i := range entries {
		e := &entries[i]
		if e.key.base != q.base && familyAliases[q.base] != e.key.base {
			continue
		}
		if s := matchScore(q, e.key); best == nil || s > bestScore {
			best, bestScore = e, s
		}
	}
	if best == nil {
		return Model{}, unknownModelError(id, q, entries)
	}
	m := best.model
	m.ID = strings.TrimSpace(id)
	// The entry's own quantization details (block scales, KV format) hold for the same upload and
	// for the same publisher's other uploads of that format; any other suffix is applied afresh.
	sameUpload := strings.EqualFold(q.id, best.key.id) || (q.name == best.key.name && (q.org == "" || q.org == best.key.org))
	if !sameUpload && q.quant != "" && (q.quant != best.key.quant || q.org != best.key.org) {
		applyQuant(&m, q)
	}
	return m, nil
}

// matchScore ranks catalog entries of the same base architecture for a query: the exact id, then
// the same name, the same quantization, shared release tokens, the same org.
func matchScore(q, e modelKey) int {
	s := 0
	if strings.EqualFold(q.id, e.id) {
		s += 1000
	}
	if q.name == e.name {
		s += 100
	}
	if q.quant == e.quant {
		s += 20
	}
	shared := 0
	for _, v := range q.variants {
		if slices.Contains(e.variants, v) {
			shared++
		}
	}
	if q.org != "" && q.org == e.org {
		s += 5
	}
	// Shared release tokens count; the entry's other tokens count against it, so the plainer entry
	// wins when nothing else decides.
	return s + 10*shared - (len(e.variants) - shared)
}

// applyQuant sets the quantization a name suffix announces on a catalog entry of another precision.
// Qwen's, DeepSeek's and Z.ai's own FP8 releases use 128×128 block scales, others' FP8 is per
// tensor or channel.
func applyQuant(m *Model, q modelKey) {
	m.WeightQuant = q.quant
	gemm := q.quant
	if q.quant == "fp8" && slices.Contains([]string{"qwen", "deepseek-ai", "zai-org"}, q.org) {
		gemm = "fp8_block"
	}
	m.GEMMQuant = gemm
	m.MoEQuant = ""
	if m.IsMoE() {
		m.MoEQuant = gemm
	}
	m.KVQuant = ""
}

// modelKey is a model id taken apart for matching.
type modelKey struct {
	id       string   // as given, trimmed
	org      string   // lower case; "" when absent
	name     string   // lower case, without the org
	base     string   // name without variant and quantization tokens: the architecture
	variants []string // dropped release tokens (instruct, 0528, …), in order
	quant    string   // weight quantization announced by the name ("" for none)
}

// releaseTokens are name tokens that mark a release of an architecture rather than another shape.
var releaseTokens = map[string]bool{
	"instruct": true, "base": true, "chat": true, "it": true, "hf": true, "thinking": true,
	"terminus": true, "reasoning": true, "exp": true, "speciale": true, "bf16": true,
}

// quantTokens map a name token to the weight quantization it announces.
var quantTokens = map[string]string{
	"fp8": "fp8", "fp4": "nvfp4", "nvfp4": "nvfp4", "mxfp4": "mxfp4",
	"awq": "int4", "gptq": "int4", "int4": "int4", "w4a16": "int4", "w4a8": "int4",
	"int8": "int8", "w8a8": "int8", "w8a16": "int8",
}

// parseModelID splits an id such as "nvidia/DeepSeek-R1-0528-FP4-v2" into org nvidia, base
// deepseek-r1, variants [0528] and quant nvfp4. Everything after the first quantization token
// (-dynamic, -v2, -Int4 of -GPTQ-Int4) describes the quantized upload and is dropped. A path
// (a model-cache mount) keeps its last element, and "Meta-Llama-3…" reads as "Llama-3…".
func parseModelID(id string) modelKey {
	k := modelKey{id: strings.TrimSpace(id)}
	s := strings.ToLower(k.id)
	isPath := strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") || strings.Count(s, "/") > 1
	s = strings.TrimRight(s, "/")
	if i := strings.LastIndex(s, "/"); i >= 0 {
		if !isPath { // a path's folders are not an org
			k.org = s[:i]
		}
		s = s[i+1:]
	}
	s = strings.ReplaceAll(s, "_", "-")
	k.name = s
	s = strings.TrimPrefix(s, "meta-")
	var kept []string
	for _, t := range strings.Split(s, "-") {
		switch {
		case t == "":
		case quantTokens[t] != "":
			k.quant = quantTokens[t]
		case strings.HasPrefix(t, "quantized.") && quantTokens[strings.TrimPrefix(t, "quantized.")] != "":
			k.quant = quantTokens[strings.TrimPrefix(t, "quantized.")] // RedHatAI's "-quantized.w4a16"
		case releaseTokens[t] || isDateToken(t):
			k.variants = append(k.variants, t)
			continue
		default:
			kept = append(kept, t)
			continue
		}
		break // a quantization token: the rest names the upload
	}
	k.base = strings.Join(kept, "-")
	return k
}

// isDateToken reports a four-digit release date such as 0528 (May 28) or 2507 (July 2025).
func isDateToken(t string) bool {
	if len(t) != 4 {
		return false
	}
	for _, r := range t {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// unknownModelError lists up to five catalog ids whose base name is closest to the query's.
func unknownModelError(id string, q modelKey, entries []catalogEntry) error {
	type cand struct {
		id   string
		dist int
	}
	var cands []cand
	seen := map[string]bool{}
	for _, e := range entries {
		d := editDistance(q.base, e.key.base)
		if strings.Contains(e.key.base, q.base) || strings.Contains(q.base, e.key.base) {
			d = min(d, 2)
		}
		if d <= max(3, len(q.base)/3) && !seen[e.model.ID] {
			seen[e.model.ID] = true
			cands = append(cands, cand{e.model.ID, d})
		}
	}
	slices.SortFunc(cands, func(a, b cand) int { return cmp.Or(cmp.Compare(a.dist, b.dist), strings.Compare(a.id, b.id)) })
	close := "none"
	if len(cands) > 0 {
		ids := make([]string, 0, 5)
		for _, c := range cands[:min(5, len(cands))] {
			ids = append(ids, c.id)
		}
		close = strings.Join(ids, ", ")
	}
	return fmt.Errorf("model %q is not in the embedded catalog (closest: %s): pass --model-config with its config.json", id, close)
}

// editDistance is the Levenshtein distance between two strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
