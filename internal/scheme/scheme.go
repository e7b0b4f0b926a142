// Package scheme is the runtime scheme every dgdr client uses: the built-in types, CRDs (to check that
// Dynamo is installed) and the DGDR types. DGDs are handled as unstructured objects. It stands alone so
// that the test control plane (internal/testenv) can use it without importing internal/lifecycle.
package scheme

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// New returns a new scheme with the built-in types, apiextensions/v1 and nvidia.com/v1alpha1.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err) // only on conflicting registrations, a programming error
		}
	}
	return s
}
