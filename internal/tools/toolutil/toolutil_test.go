package toolutil

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteRegion(t *testing.T) {
	tests := []struct {
		name, doc, body, want, err string
	}{
		{name: "replaces the region", doc: "a\n<!-- BEGIN x -->\nold\n<!-- END x -->\nb\n", body: "\nnew\n",
			want: "a\n<!-- BEGIN x -->\nnew\n<!-- END x -->\nb\n"},
		{name: "adds the last newline", doc: "<!-- BEGIN x -->\n<!-- END x -->", body: "t",
			want: "<!-- BEGIN x -->\nt\n<!-- END x -->"},
		{name: "no markers", doc: "a\n", body: "t", err: "expected the markers"},
		{name: "markers reversed", doc: "<!-- END x -->\n<!-- BEGIN x -->\n", body: "t", err: "expected the markers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "doc.md")
			require.NoError(t, os.WriteFile(p, []byte(tt.doc), 0o644))
			err := WriteRegion(p, "x", []byte(tt.body))
			got, rerr := os.ReadFile(p)
			require.NoError(t, rerr)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				assert.Equal(t, tt.doc, string(got), "the file is left alone")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
		})
	}
}
