package ship

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCheckStaticELF builds the same tiny program with CGO off and on: only the first may pass.
func TestCheckStaticELF(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module tiny\n\ngo 1.26\n"), 0o644))

	build := func(cgo bool, code string) string {
		t.Helper()
		require.NoError(t, os.WriteFile(src, []byte(code), 0o644))
		out := filepath.Join(dir, "tiny-cgo-"+map[bool]string{true: "on", false: "off"}[cgo])
		cmd := exec.CommandContext(t.Context(), "go", "build", "-o", out, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOOS=linux", "GOFLAGS=", "CGO_ENABLED="+map[bool]string{true: "1", false: "0"}[cgo])
		b, err := cmd.CombinedOutput()
		require.NoError(t, err, "go build (cgo=%v; the cgo case needs a C compiler): %s", cgo, b)
		return out
	}
	static := build(false, "package main\n\nfunc main() {}\n")
	// Calling into libc makes the linker add the dynamic loader and libc.
	dynamic := build(true, "package main\n\n// #include <stdlib.h>\nimport \"C\"\n\nfunc main() { C.abs(1) }\n")

	open := func(p string) *os.File {
		f, err := os.Open(p)
		require.NoError(t, err)
		t.Cleanup(func() { f.Close() })
		return f
	}
	require.NoError(t, CheckStaticELF(open(static)))
	err := CheckStaticELF(open(dynamic))
	require.ErrorContains(t, err, "PT_INTERP")
	require.ErrorContains(t, err, "DT_NEEDED")
	require.ErrorContains(t, CheckStaticELF(strings.NewReader("#!/bin/sh\n")), "expected an ELF executable")
}
