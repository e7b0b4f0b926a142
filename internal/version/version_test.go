package version

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFillFromBuildInfo(t *testing.T) {
	save := func() func() {
		v, c, d := Version, Commit, Date
		return func() { Version, Commit, Date = v, c, d }
	}
	t.Run("go install of a tagged module", func(t *testing.T) {
		defer save()()
		Version, Commit, Date = "v0.0.0-dev", "unknown", "unknown"
		fillFromBuildInfo(&debug.BuildInfo{Main: debug.Module{Version: "v0.3.1"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-11-27T06:00:00Z"},
		}})
		assert.Equal(t, "v0.3.1", Version)
		assert.Equal(t, "0123456789ab", Commit)
		assert.Equal(t, "2026-11-27T06:00:00Z", Date)
	})
	t.Run("the linker's stamp wins", func(t *testing.T) {
		defer save()()
		Version, Commit, Date = "v1.0.0", "abc", "today"
		fillFromBuildInfo(&debug.BuildInfo{Main: debug.Module{Version: "v0.3.1"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef"}}})
		assert.Equal(t, "v1.0.0", Version)
		assert.Equal(t, "abc", Commit)
	})
	t.Run("a local build keeps the dev version", func(t *testing.T) {
		defer save()()
		Version = "v0.0.0-dev"
		fillFromBuildInfo(&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}})
		assert.Equal(t, "v0.0.0-dev", Version)
	})
}
