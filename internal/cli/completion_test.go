package cli

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

func TestCompletion(t *testing.T) {
	h := newHarness(t, testenv.Options{})
	ns := h.namespace("complete")
	h.dgdr(ns, "qwen-a", spec(), nil)
	h.dgdr(ns, "qwen-b", spec(), &v1alpha1.DynamoGraphDeploymentRequestStatus{Phase: v1alpha1.PhaseReady})
	h.dgdr(ns, "llama", spec(), nil)

	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		t.Run(shell, func(t *testing.T) {
			h := h.with(t)
			out := h.ok("completion", shell).out
			assert.Contains(t, out, "kubectl-dgdr", "the script completes the plugin's binary")
			assert.Contains(t, out, "__complete")
		})
	}

	t.Run("names of the namespace, with their phase", func(t *testing.T) {
		h := h.with(t)
		out := h.ok("__complete", "promote", "-n", ns, "qwen").out
		assert.Equal(t, []string{"qwen-a\tPending", "qwen-b\tReady", ":4"}, strings.Split(strings.TrimSpace(out), "\n")[:3])
		out = h.ok("__complete", "promote", "-n", ns, "qwen-a", "").out
		assert.Equal(t, ":4", strings.Split(out, "\n")[0], "one name only")
	})

	t.Run("an unknown shell", func(t *testing.T) {
		h := h.with(t)
		assert.Contains(t, h.fail("completion", "tcsh").errLine, `invalid argument "tcsh" for "kubectl dgdr completion"`)
	})
}
