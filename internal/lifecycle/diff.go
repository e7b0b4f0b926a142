package lifecycle

import (
	"fmt"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
)

// DGDDiff is a unified diff of what the user manages in a DGD (metadata labels and annotations but
// dgdr's spec hash, spec) from live to next; "" when equal. live nil is an empty object.
func DGDDiff(live, next *unstructured.Unstructured) (string, error) {
	render := func(u *unstructured.Unstructured) (string, error) {
		if u == nil {
			return "", nil
		}
		meta := map[string]any{"name": u.GetName(), "namespace": u.GetNamespace()}
		if l := u.GetLabels(); len(l) > 0 {
			meta["labels"] = toAny(l)
		}
		ann := u.GetAnnotations()
		delete(ann, v1alpha1.AnnotationAppliedSpecHash)
		if len(ann) > 0 {
			meta["annotations"] = toAny(ann)
		}
		obj := map[string]any{"apiVersion": u.GetAPIVersion(), "kind": u.GetKind(), "metadata": meta}
		if spec, ok := u.Object["spec"]; ok {
			obj["spec"] = spec
		}
		b, err := expand.EncodeDGDYAML(obj)
		return string(b), err
	}
	a, err := render(live)
	if err != nil {
		return "", err
	}
	b, err := render(next)
	if err != nil {
		return "", err
	}
	if a == b {
		return "", nil
	}
	from := "live/" + next.GetName()
	if live == nil {
		from = "/dev/null"
	}
	return difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(a), B: difflib.SplitLines(b), FromFile: from, ToFile: "dgdr/" + next.GetName(), Context: 3,
	})
}

// BoundDiff cuts diff at the last whole line within max bytes and says how many lines were left out;
// the bool reports a cut.
func BoundDiff(diff string, max int) (string, bool) {
	if len(diff) <= max {
		return diff, false
	}
	cut := strings.LastIndexByte(diff[:max], '\n') + 1
	left := strings.Count(diff[cut:], "\n")
	if !strings.HasSuffix(diff, "\n") {
		left++
	}
	return diff[:cut] + fmt.Sprintf("... %d more line(s) not recorded\n", left), true
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
