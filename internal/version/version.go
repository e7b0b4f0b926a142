// Package version carries the build's version, commit and date, stamped by the linker
// (-X github.com/dgdr-dev/dgdr/internal/version.Version=v0.1.0 …; see the Makefile).
package version

import (
	"fmt"
	"runtime"
)

var (
	Version = "v0.0.0-dev"
	Commit  = "unknown"
	Date    = "unknown"
)

// String is the one-line form printed by `kubectl dgdr version` and logged by the servers.
func String() string {
	return fmt.Sprintf("%s (commit %s, built %s, %s %s/%s)", Version, Commit, Date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
