package expand

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
)

const (
	// DGDNameLimit is Grove's pod-naming limit that Dynamo's admission enforces on a DGD: the DGD name
	// plus the lower-cased component name, and for a multinode component plus its longest pod-clique
	// name (<component>-ldr or <component>-wkr), must not exceed 45 characters.
	DGDNameLimit = 45
	// DGDNameSuffix makes the default DGD name <dgdr>-dgd.
	DGDNameSuffix = "-dgd"
	// dgdNameHashLen is the hex digits of the hash that keeps a shortened name unique and stable.
	dgdNameHashLen = 6
)

// DGDComponentName is a component's name and whether it spans several nodes, what the name limit counts.
type DGDComponentName struct {
	Name      string
	Multinode bool
}

// nameCost is the characters a component adds to the DGD name under Dynamo's rule.
func (c DGDComponentName) nameCost() int {
	n := len(c.Name)
	if c.Multinode {
		return n + n + len("-wkr")
	}
	return n
}

// DGDName chooses the DGD's name. An explicit name (overrides.dgd metadata.name) is used as is and must
// fit the limit with every component; otherwise the name is <dgdr>-dgd ('.' replaced by '-'), shortened
// when too long to <prefix>-<6 hex of sha256(dgdr name)>: deterministic, so regenerating gives the same name.
func DGDName(dgdrName, explicit string, components []DGDComponentName) (string, error) {
	longest := DGDComponentName{}
	for _, c := range components {
		if c.nameCost() > longest.nameCost() {
			longest = c
		}
	}
	limit := min(DGDNameLimit-longest.nameCost(), validation.DNS1123LabelMaxLength)

	if explicit != "" {
		if errs := validation.IsDNS1123Label(explicit); len(errs) > 0 {
			return "", fmt.Errorf("DGD name %q from overrides.dgd metadata.name: %s", explicit, strings.Join(errs, "; "))
		}
		if len(explicit) > limit {
			return "", fmt.Errorf("DGD name %q from overrides.dgd metadata.name is %d characters; with component %q Dynamo allows %d (name + component ≤ %d): choose a shorter name",
				explicit, len(explicit), longest.Name, limit, DGDNameLimit)
		}
		return explicit, nil
	}
	if dgdrName == "" {
		return "", fmt.Errorf("the DGDR has no name: expected metadata.name")
	}
	name := strings.ReplaceAll(strings.ToLower(dgdrName), ".", "-") + DGDNameSuffix
	if len(name) <= limit {
		return name, nil
	}
	keep := limit - 1 - dgdNameHashLen
	if keep < 1 {
		return "", fmt.Errorf("component %q leaves %d characters for the DGD name under Dynamo's %d-character limit: shorten the component name",
			longest.Name, limit, DGDNameLimit)
	}
	sum := sha256.Sum256([]byte(dgdrName))
	prefix := strings.TrimRight(name[:keep], "-")
	return prefix + "-" + hex.EncodeToString(sum[:])[:dgdNameHashLen], nil
}

// dgdComponentNames lists the components of a DGD object (v1beta1 components or v1alpha1 services).
func dgdComponentNames(u *unstructured.Unstructured) []DGDComponentName {
	var out []DGDComponentName
	multinode := func(m map[string]any) bool {
		n, found, _ := unstructured.NestedFieldNoCopy(m, "multinode", "nodeCount")
		switch v := n.(type) {
		case int64:
			return v > 1
		case float64:
			return v > 1
		}
		// multinode without nodeCount defaults to 2 nodes in the CRD.
		_, has, _ := unstructured.NestedFieldNoCopy(m, "multinode")
		return !found && has
	}
	comps, _, _ := unstructured.NestedSlice(u.Object, "spec", "components")
	for _, c := range comps {
		m, _ := c.(map[string]any)
		name, _ := m["name"].(string)
		out = append(out, DGDComponentName{Name: strings.ToLower(name), Multinode: multinode(m)})
	}
	services, _, _ := unstructured.NestedMap(u.Object, "spec", "services")
	for name, s := range services {
		m, _ := s.(map[string]any)
		out = append(out, DGDComponentName{Name: strings.ToLower(name), Multinode: multinode(m)})
	}
	return out
}
