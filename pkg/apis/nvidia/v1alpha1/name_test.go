package v1alpha1

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidateName(t *testing.T) {
	tests := map[string]struct {
		name  string
		field string // "" when valid
		msg   string
	}{
		"short":                    {name: "quick-start"},
		"dotted":                   {name: "qwen3.32b"},
		"63 characters":            {name: strings.Repeat("a", 63)},
		"empty":                    {name: "", field: "metadata.name", msg: "generateName"},
		"64 characters":            {name: strings.Repeat("a", 64), field: "metadata.name", msg: "label " + LabelDGDRName},
		"not a DNS subdomain":      {name: "Qwen_3", field: "metadata.name", msg: "lowercase RFC 1123 subdomain"},
		"trailing dash":            {name: "qwen-", field: "metadata.name", msg: "RFC 1123"},
		"253 characters of labels": {name: strings.Repeat("a.", 100) + "a", field: "metadata.name", msg: "at most 63 characters"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			errs := ValidateName(tc.name)
			if tc.field == "" {
				assert.Empty(t, errs)
				return
			}
			if assert.Len(t, errs, 1) {
				assert.Equal(t, tc.field, errs[0].Field)
				assert.Contains(t, errs[0].Error(), tc.msg)
			}
		})
	}
}

func TestValidateAnnotations(t *testing.T) {
	tests := map[string]struct {
		annotations map[string]string
		wantErr     bool
	}{
		"none":                {nil, false},
		"other annotations":   {map[string]string{"team": "Serving Team"}, false},
		"a Secret name":       {map[string]string{AnnotationHFTokenSecret: "hf-token-secret"}, false},
		"not a Secret name":   {map[string]string{AnnotationHFTokenSecret: "HF Token"}, true},
		"empty is not a name": {map[string]string{AnnotationHFTokenSecret: ""}, true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			errs := ValidateAnnotations(tt.annotations)
			if !tt.wantErr {
				assert.Empty(t, errs)
				return
			}
			require.Len(t, errs, 1)
			assert.Equal(t, "metadata.annotations[nvidia.com/dgdr-hf-token-secret]", errs[0].Field)
		})
	}
}
