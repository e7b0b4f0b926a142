package lifecycle

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// Scheme holds the built-in types, CRDs (to check that Dynamo is installed) and the DGDR types: what the
// webhook, the profiler and the plugin read and write. DGDs are handled as unstructured objects.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err) // only on conflicting registrations, a programming error
		}
	}
	return s
}
