// Package repo locates the repository's own files from a test's or a tool's working directory: tests run
// in their package's folder, the tools under `make` in the repository root.
package repo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Root is the module root: the nearest folder at or above the working directory that holds go.mod.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find the repository root: no go.mod at or above the working directory; run from inside the clone")
		}
		dir = parent
	}
}

// Testdata is the path of elem under the repository's testdata/ folder (measured data and third-party
// fixtures; see testdata/README.md).
func Testdata(elem ...string) (string, error) {
	root, err := Root()
	if err != nil {
		return "", err
	}
	return filepath.Join(append([]string{root, "testdata"}, elem...)...), nil
}

// TestPath is Testdata for tests: a repository that lacks its root fails the test.
func TestPath(t testing.TB, elem ...string) string {
	t.Helper()
	p, err := Testdata(elem...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
