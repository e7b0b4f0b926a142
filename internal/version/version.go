// Package version carries the build's version, commit and date, stamped by the linker
// (-X github.com/dgdr-dev/dgdr/internal/version.Version=v0.1.0 …; see the Makefile). A binary built
// with `go install …@vX.Y.Z` is not stamped; it reports the module version and VCS data Go records.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

var (
	Version = "v0.0.0-dev"
	Commit  = "unknown"
	Date    = "unknown"
)

func init() {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	fillFromBuildInfo(info)
}

// fillFromBuildInfo uses what Go recorded when the linker stamped nothing.
func fillFromBuildInfo(info *debug.BuildInfo) {
	if Version == "v0.0.0-dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision" && Commit == "unknown" && len(s.Value) >= 12:
			Commit = s.Value[:12]
		case s.Key == "vcs.time" && Date == "unknown":
			Date = s.Value
		}
	}
}

// String is the one-line form printed by `kubectl dgdr version` and logged by the servers.
func String() string {
	return fmt.Sprintf("%s (commit %s, built %s, %s %s/%s)", Version, Commit, Date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
