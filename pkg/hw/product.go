package hw

import (
	"strings"
)

// productRules map a normalized GPU feature discovery product label to a catalog name. They are
// tried in order; the first rule whose every "all" token occurs and no "none" token occurs wins.
// Order matters where one name contains another (GB200 contains B200, GH200 contains H200, L40S
// contains L4). Variants the catalog does not describe (H100 NVL 94 GB, A100 40 GB, H200 NVL,
// GH200, L40, MIG slices) have explicit no-match rules so that they are never mapped to a SKU
// with other memory or bandwidth.
var productRules = []struct {
	all  []string
	none []string
	name string // "" = known not to be in the catalog
}{
	{all: []string{"MIG"}},
	{all: []string{"GB300"}, name: "gb300"},
	{all: []string{"GB200"}, name: "gb200"},
	{all: []string{"GH200"}},
	{all: []string{"B300"}, name: "b300_sxm"},
	{all: []string{"B200"}, name: "b200_sxm"},
	{all: []string{"H200"}, none: []string{"NVL", "PCIE"}, name: "h200_sxm"},
	{all: []string{"H100", "PCIE"}, none: []string{"NVL", "94GB"}, name: "h100_pcie"},
	{all: []string{"H100", "HBM3"}, none: []string{"NVL", "94GB", "64GB"}, name: "h100_sxm"},
	{all: []string{"H100", "SXM"}, none: []string{"NVL", "94GB", "64GB"}, name: "h100_sxm"},
	{all: []string{"A100", "SXM", "80GB"}, name: "a100_sxm"},
	{all: []string{"A100", "PCIE", "80GB"}, name: "a100_pcie"},
	{all: []string{"L40S"}, name: "l40s"},
	{all: []string{"L4"}, none: []string{"L40"}, name: "l4"},
}

// MapProduct maps a GPU feature discovery `nvidia.com/gpu.product` label (NVIDIA-H100-80GB-HBM3,
// NVIDIA-H200, NVIDIA-A100-SXM4-80GB, Tesla-T4, …) or a catalog name to a catalog name. ok is
// false for GPUs the catalog does not describe, including MIG slices and variants of a known chip
// with other memory (A100 40 GB, H100 NVL): those must be reported as unknown, not costed as
// another SKU. A time-slicing "-SHARED" suffix is ignored.
func MapProduct(label string) (name string, ok bool) {
	if _, err := Lookup(label); err == nil {
		return strings.ToLower(strings.TrimSpace(label)), true
	}
	norm := normalizeProduct(label)
	if norm == "" {
		return "", false
	}
	tokens := strings.Split(norm, "-")
	has := func(want string) bool {
		for _, t := range tokens {
			if t == want || (len(want) > 2 && strings.Contains(t, want)) {
				return true
			}
		}
		return false
	}
rules:
	for _, r := range productRules {
		for _, t := range r.all {
			if !has(t) {
				continue rules
			}
		}
		for _, t := range r.none {
			if has(t) {
				continue rules
			}
		}
		return r.name, r.name != ""
	}
	return "", false
}

// normalizeProduct upper-cases a product label, turns separators into dashes and drops the vendor
// prefix and the time-slicing suffix: "NVIDIA H100 80GB HBM3" and "NVIDIA-H100-80GB-HBM3-SHARED"
// both become "H100-80GB-HBM3".
func normalizeProduct(label string) string {
	s := strings.ToUpper(strings.TrimSpace(label))
	s = strings.NewReplacer(" ", "-", "_", "-", ".", "-").Replace(s)
	for strings.Contains(s, "--") {
		s = strings.ReplaceAll(s, "--", "-")
	}
	s = strings.Trim(s, "-")
	for _, p := range []string{"NVIDIA-", "TESLA-"} {
		s = strings.TrimPrefix(s, p)
	}
	return strings.TrimSuffix(s, "-SHARED")
}
