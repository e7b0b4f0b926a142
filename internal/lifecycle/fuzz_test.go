package lifecycle_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
)

func gz(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(b)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// FuzzReadResults feeds the results reader arbitrary bytes, gzipped or not: it never panics, refuses
// what is not a gzipped report, and what it accepts re-encodes to a report that reads back the same.
func FuzzReadResults(f *testing.F) {
	f.Add([]byte(`{"model":"Qwen/Qwen3-8B","gpu":"h200_sxm","candidates":[]}`), true)
	f.Add([]byte(`{"pareto":[{"gpus":8}],"candidatesOmitted":3}`), true)
	f.Add([]byte(`not json`), true)
	f.Add([]byte{0x1f, 0x8b, 0x08}, false)
	f.Add(bytes.Repeat([]byte(" "), 1<<16), true)
	f.Fuzz(func(t *testing.T, data []byte, compress bool) {
		if compress {
			data = gz(t, data)
		}
		cm := &corev1.ConfigMap{BinaryData: map[string][]byte{lifecycle.ResultsKey: data}}
		report, err := lifecycle.ReadResults(cm)
		if err != nil {
			require.Nil(t, report)
			return
		}
		require.NotNil(t, report)
		again, err := json.Marshal(report)
		require.NoError(t, err)
		back, err := lifecycle.ReadResults(&corev1.ConfigMap{BinaryData: map[string][]byte{lifecycle.ResultsKey: gz(t, again)}})
		require.NoError(t, err, "a report read once reads again")
		twice, err := json.Marshal(back)
		require.NoError(t, err)
		require.JSONEq(t, string(again), string(twice))
	})
}

// FuzzReadDGDState interprets arbitrary DGD status JSON: it never panics, readiness and failure never
// hold together, and a message always says something.
func FuzzReadDGDState(f *testing.F) {
	f.Add(`{"state":"successful","components":{"Frontend":{"replicas":1,"availableReplicas":1}}}`)
	f.Add(`{"conditions":[{"type":"Ready","status":"True","message":"ok"}],"services":{"a":{"replicas":2,"readyReplicas":1}}}`)
	f.Add(`{"state":"failed","conditions":"not a list"}`)
	f.Add(`{"components":{"a":"x","b":{"replicas":"1"}},"services":[1]}`)
	f.Add(`{"state":7}`)
	f.Fuzz(func(t *testing.T, status string) {
		var st any
		if err := json.Unmarshal([]byte(status), &st); err != nil {
			return
		}
		u := &unstructured.Unstructured{Object: map[string]any{"status": st}}
		got := lifecycle.ReadDGDState(u)
		require.True(t, got.Found)
		require.NotEmpty(t, got.Message)
		if s, _ := st.(map[string]any); s != nil && s["state"] == "failed" {
			require.True(t, got.Failed)
		}
		require.False(t, got.Ready && got.Failed && got.Message == "", "contradictory state: %+v", got)
	})
}
