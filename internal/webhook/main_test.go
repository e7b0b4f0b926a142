package webhook

import (
	"os"
	"testing"

	"github.com/go-logr/logr"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

func TestMain(m *testing.M) {
	// controller-runtime logs through a logger set once per process; TestMainServes sets the binary's.
	logf.SetLogger(logr.Discard())
	os.Exit(m.Run())
}
