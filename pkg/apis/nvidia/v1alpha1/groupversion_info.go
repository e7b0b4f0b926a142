// Package v1alpha1 holds the DynamoGraphDeploymentRequest API (nvidia.com/v1alpha1) together with its
// defaulting and validation, so that the webhook, the profiler and the plugin never disagree.
// +kubebuilder:object:generate=true
// +groupName=nvidia.com
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version of the DGDR.
	GroupVersion = schema.GroupVersion{Group: "nvidia.com", Version: "v1alpha1"}

	// SchemeBuilder registers the DGDR types with a runtime.Scheme. (apimachinery's, not controller-runtime's
	// helper: an API package should be importable with few dependencies.)
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the DGDR types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &DynamoGraphDeploymentRequest{}, &DynamoGraphDeploymentRequestList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
