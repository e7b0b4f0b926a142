package expand

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"
	"sigs.k8s.io/kustomize/kyaml/yaml/merge2"
	"sigs.k8s.io/kustomize/kyaml/yaml/walk"
)

// MergeDGDPatch merges a partial DynamoGraphDeployment (YAML or JSON) into a DGD manifest (YAML) and
// returns the merged YAML. It serves overrides.dgd and `promote --patch FILE`.
//
// Semantics (kyaml's merge, the one kustomize's strategic-merge patches use, with list keys inferred):
//   - maps merge key by key, so v1alpha1 spec.services merges by service name;
//   - lists whose elements all carry a name merge by name: v1beta1 spec.components, containers, env,
//     volumes, volumeMounts; new elements are appended;
//   - other lists (args, command, envFrom) and scalars are replaced by the patch's value;
//   - a null value in the patch deletes the field.
//
// The base's comments and key order are kept; spacing may be normalised by the YAML encoder. A patch whose
// apiVersion, kind or list shape (components vs services) does not match the base is refused rather than
// merged into a DGD the API server would reject.
func MergeDGDPatch(base, patch []byte) ([]byte, error) {
	baseNode, err := readOneDGDNode(base, "the DGD", true)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(patch)) == 0 {
		return writeDGDNode(baseNode)
	}
	patchNode, err := readOneDGDNode(patch, "the patch", false)
	if err != nil {
		return nil, err
	}
	if patchNode.YNode().Kind != yaml.MappingNode {
		return nil, fmt.Errorf("the patch is not a YAML object: expected a partial DynamoGraphDeployment")
	}
	// What the patch adds takes the base's block style, also when the patch is JSON (overrides.dgd).
	blockStyle(patchNode.YNode())
	if err := checkDGDPatchShape(baseNode, patchNode); err != nil {
		return nil, err
	}
	merged, err := walk.Walker{
		Sources:               []*yaml.RNode{baseNode, patchNode},
		Visitor:               merge2.Merger{},
		InferAssociativeLists: true,
		MergeOptions:          yaml.MergeOptions{ListIncreaseDirection: yaml.MergeOptionsListAppend},
	}.Walk()
	if err != nil {
		return nil, fmt.Errorf("merging the patch into the DGD: %w", err)
	}
	return writeDGDNode(merged)
}

// readOneDGDNode parses one document. preserveIndent records the file's sequence indentation ("- " flush
// with the key or indented) in reader annotations that the writer uses and strips; only the base's style
// matters, and the patch must not carry annotations that would be merged into the base.
func readOneDGDNode(data []byte, what string, preserveIndent bool) (*yaml.RNode, error) {
	nodes, err := (&kio.ByteReader{
		Reader:                bytes.NewReader(data),
		PreserveSeqIndent:     preserveIndent,
		OmitReaderAnnotations: !preserveIndent,
	}).Read()
	if err != nil {
		return nil, fmt.Errorf("parsing %s: expected one YAML or JSON document: %w", what, err)
	}
	if len(nodes) != 1 {
		return nil, fmt.Errorf("parsing %s: expected one YAML document, found %d", what, len(nodes))
	}
	return nodes[0], nil
}

func writeDGDNode(n *yaml.RNode) ([]byte, error) {
	var buf bytes.Buffer
	if err := (kio.ByteWriter{Writer: &buf}).Write([]*yaml.RNode{n}); err != nil {
		return nil, fmt.Errorf("writing the merged DGD: %w", err)
	}
	return buf.Bytes(), nil
}

// blockStyle clears flow and quoting styles; the encoder quotes scalars that need it (a string "2").
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// checkDGDPatchShape refuses patches written for another API version or kind.
func checkDGDPatchShape(base, patch *yaml.RNode) error {
	baseVersion := scalarField(base, "apiVersion")
	if v := scalarField(patch, "apiVersion"); v != "" && baseVersion != "" && v != baseVersion {
		return fmt.Errorf("the patch is %s but the DGD is %s: write the patch for %s", v, baseVersion, baseVersion)
	}
	if k := scalarField(patch, "kind"); k != "" && k != DGDKind {
		return fmt.Errorf("the patch is a %s: expected a partial %s", k, DGDKind)
	}
	hasComponents := lookup(patch, "spec", "components") != nil
	hasServices := lookup(patch, "spec", "services") != nil
	switch {
	case baseVersion == DGDAPIVersionV1Beta1 && hasServices:
		return fmt.Errorf("the patch sets spec.services (nvidia.com/v1alpha1) but the DGD is nvidia.com/v1beta1: use spec.components, a list keyed by name")
	case baseVersion == DGDAPIVersionV1Alpha1 && hasComponents:
		return fmt.Errorf("the patch sets spec.components (nvidia.com/v1beta1) but the DGD is nvidia.com/v1alpha1: use spec.services, a map keyed by service name")
	}
	if c := lookup(patch, "spec", "components"); c != nil {
		if c.YNode().Kind != yaml.SequenceNode {
			return fmt.Errorf("the patch's spec.components is not a list: expected a list of components keyed by name")
		}
		for i, el := range c.Content() {
			if scalarField(yaml.NewRNode(el), "name") == "" {
				return fmt.Errorf("the patch's spec.components[%d] has no name: each entry names the component it changes", i)
			}
		}
	}
	return nil
}

func lookup(n *yaml.RNode, path ...string) *yaml.RNode {
	if n == nil || n.YNode().Kind != yaml.MappingNode {
		return nil
	}
	found, err := n.Pipe(yaml.Lookup(path...))
	if err != nil || found == nil || found.IsNil() {
		return nil
	}
	return found
}

func scalarField(n *yaml.RNode, field string) string {
	f := lookup(n, field)
	if f == nil || f.YNode().Kind != yaml.ScalarNode {
		return ""
	}
	return f.YNode().Value
}

// dgdKeyOrder puts the fields people look for first; the others follow alphabetically.
var dgdKeyOrder = []string{
	"apiVersion", "kind", "metadata", "spec", "status",
	"name", "namespace", "labels", "annotations",
	"backendFramework", "components", "services",
	"type", "componentType", "subComponentType", "replicas", "multinode", "nodeCount",
	"scalingAdapter", "enabled", "sharedMemorySize", "sharedMemory", "runtimeVersionOverride",
	"envFromSecret", "podTemplate", "extraPodSpec", "mainContainer", "containers",
	"image", "workingDir", "command", "args", "env", "envFrom", "resources", "limits", "requests",
	"volumeMounts", "mountPath", "claimName", "readOnly", "volumes",
}

// EncodeDGDYAML writes an object (a DGD's unstructured content) as YAML with a stable, readable key
// order: apiVersion, kind, metadata, spec; name and type first in each component; the rest alphabetical.
func EncodeDGDYAML(obj map[string]any) ([]byte, error) {
	n, err := dgdYAMLNode(obj)
	if err != nil {
		return nil, err
	}
	return writeDGDNode(yaml.NewRNode(n))
}

func dgdYAMLNode(v any) (*yaml.Node, error) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int {
			ra, rb := keyRank(a), keyRank(b)
			if ra != rb {
				return ra - rb
			}
			return strings.Compare(a, b)
		})
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: yaml.NodeTagMap}
		for _, k := range keys {
			val, err := dgdYAMLNode(x[k])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: yaml.NodeTagString, Value: k}, val)
		}
		return n, nil
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: yaml.NodeTagSeq}
		for i, e := range x {
			val, err := dgdYAMLNode(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			n.Content = append(n.Content, val)
		}
		return n, nil
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: yaml.NodeTagString, Value: x}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: yaml.NodeTagBool, Value: strconv.FormatBool(x)}, nil
	case int64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: yaml.NodeTagInt, Value: strconv.FormatInt(x, 10)}, nil
	case int:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: yaml.NodeTagInt, Value: strconv.Itoa(x)}, nil
	case float64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: yaml.NodeTagFloat, Value: strconv.FormatFloat(x, 'g', -1, 64)}, nil
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: yaml.NodeTagNull, Value: "null"}, nil
	}
	return nil, fmt.Errorf("unsupported value of type %T: expected JSON-compatible unstructured content", v)
}

func keyRank(k string) int {
	if i := slices.Index(dgdKeyOrder, k); i >= 0 {
		return i
	}
	return len(dgdKeyOrder)
}
