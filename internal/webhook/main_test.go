package webhook

import (
	"io"
	"os"
	"testing"

	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

func TestMain(m *testing.M) {
	// controller-runtime logs through a logger set once per process; TestMainServes sets the binary's.
	logf.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	os.Exit(m.Run())
}
