package webhook

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDependencies: the webhook links only what admission needs; the profiler (the thorough search's
// executor) stays out of it. The budget warning comes from internal/thorough, which has no client.
func TestDependencies(t *testing.T) {
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", ".").Output()
	require.NoError(t, err, "go list -deps")
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/dgdr-dev/dgdr/internal/webhook", "the listing names the package itself")
	assert.NotContains(t, deps, "github.com/dgdr-dev/dgdr/internal/profiler")
}
