package lifecycle

import (
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/dgdr-dev/dgdr/internal/scheme"
)

// Scheme is what the webhook, the profiler and the plugin read and write with (internal/scheme).
func Scheme() *runtime.Scheme { return scheme.New() }
