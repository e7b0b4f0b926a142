package lifecycle

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/profile"
)

// Keys of the <name>-profiling ConfigMap. The report (every costed candidate) is gzipped into
// binaryData: as plain JSON a search over 64 GPUs is several MiB, beyond a ConfigMap's 1 MiB.
const (
	ResultsKey = "results.json.gz"
	PlotKey    = "pareto.svg"
	// maxResultsBytes bounds the compressed report (base64 on the wire adds a third).
	maxResultsBytes = 512 << 10
	// MaxConfigMapBytes is what the <name>-profiling ConfigMap may hold in all, binaryData counted as
	// base64: below the API server's 1 MiB, with room for the metadata and managedFields.
	MaxConfigMapBytes = 960 << 10
	// MeasurementsReserve is the share of MaxConfigMapBytes kept for the thorough search's
	// measurements record, which is written beside the report (8 candidates of 8 loads with the
	// benchmark's record of each, about 1.5 KiB a load, use about half).
	MeasurementsReserve = 192 << 10
	// MaxReportBytes bounds the decompressed report read back: far above what any search writes
	// (the compressed report is at most maxResultsBytes), low enough that a crafted ConfigMap cannot
	// exhaust the reader's memory.
	MaxReportBytes = 64 << 20
)

// ResultsConfigMapName is the ConfigMap holding a DGDR's full results.
func ResultsConfigMapName(dgdrName string) string {
	return dgdrName + v1alpha1.ProfilingConfigMapSuffix
}

// ResultsConfigMap builds <name>-profiling, owned by the DGDR so it goes with it.
// Candidates are thinned until the compressed report fits maxResultsBytes and, with the plot and the
// measurements' reserve, MaxConfigMapBytes.
func ResultsConfigMap(d *v1alpha1.DynamoGraphDeploymentRequest, report *profile.Report, svg string) (*corev1.ConfigMap, error) {
	limit := min(maxResultsBytes, (MaxConfigMapBytes-MeasurementsReserve-len(svg))*3/4)
	if limit <= 0 {
		return nil, fmt.Errorf("the Pareto plot is %d bytes, more than ConfigMap %s can hold", len(svg), ResultsConfigMapName(d.Name))
	}
	var buf bytes.Buffer
	for {
		buf.Reset()
		zw := gzip.NewWriter(&buf)
		if err := json.NewEncoder(zw).Encode(report); err != nil {
			return nil, fmt.Errorf("encoding the results: %w", err)
		}
		if err := zw.Close(); err != nil {
			return nil, fmt.Errorf("compressing the results: %w", err)
		}
		if buf.Len() <= limit {
			break
		}
		if len(report.Candidates) == 0 {
			return nil, fmt.Errorf("the results are %d bytes compressed without any candidate, more than ConfigMap %s can hold (%d)", buf.Len(), ResultsConfigMapName(d.Name), limit)
		}
		report.ThinCandidates()
	}
	return &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{
			Name: ResultsConfigMapName(d.Name), Namespace: d.Namespace,
			Labels:          map[string]string{v1alpha1.LabelDGDRName: d.Name},
			OwnerReferences: resultsOwner(d),
		},
		Data:       map[string]string{PlotKey: svg},
		BinaryData: map[string][]byte{ResultsKey: buf.Bytes()},
	}, nil
}

// resultsOwner makes the DGDR the controller of its results ConfigMaps, so they go with it.
func resultsOwner(d *v1alpha1.DynamoGraphDeploymentRequest) []metav1.OwnerReference {
	return []metav1.OwnerReference{{
		APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.Kind, Name: d.Name, UID: d.UID,
		// No blockOwnerDeletion: it needs rights on the DGDR's finalizers
		// (OwnerReferencesPermissionEnforcement).
		Controller: ptr.To(true),
	}}
}

// ReadResults decodes the report stored in a <name>-profiling ConfigMap.
func ReadResults(cm *corev1.ConfigMap) (*profile.Report, error) {
	data, ok := cm.BinaryData[ResultsKey]
	if !ok {
		return nil, fmt.Errorf("ConfigMap %s has no %s", cm.Name, ResultsKey)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("reading %s of ConfigMap %s: expected gzip: %w", ResultsKey, cm.Name, err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, MaxReportBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s of ConfigMap %s: %w", ResultsKey, cm.Name, err)
	}
	if len(raw) > MaxReportBytes {
		return nil, fmt.Errorf("reading %s of ConfigMap %s: expected at most %d bytes decompressed, it is larger (not written by dgdr?)", ResultsKey, cm.Name, MaxReportBytes)
	}
	report := &profile.Report{}
	if err := json.Unmarshal(raw, report); err != nil {
		return nil, fmt.Errorf("reading %s of ConfigMap %s: %w", ResultsKey, cm.Name, err)
	}
	return report, nil
}

// GetResults reads a DGDR's stored report; nil and no error when profiling has not stored one yet.
func GetResults(ctx context.Context, c client.Reader, d *v1alpha1.DynamoGraphDeploymentRequest) (*profile.Report, error) {
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: d.Namespace, Name: ResultsConfigMapName(d.Name)}, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading ConfigMap %s: %w", ResultsConfigMapName(d.Name), err)
	}
	return ReadResults(cm)
}
