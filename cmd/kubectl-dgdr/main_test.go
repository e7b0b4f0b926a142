package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/rest"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// TestAuthProviders checks the auth providers a kubeconfig's users[].user.auth-provider may name.
func TestAuthProviders(t *testing.T) {
	// oidc builds from its kubeconfig fields alone; the issuer is only asked when a token needs refreshing.
	p, err := rest.GetAuthProvider("https://cluster.example:6443", &clientcmdapi.AuthProviderConfig{
		Name:   "oidc",
		Config: map[string]string{"idp-issuer-url": "https://issuer.example", "client-id": "kubectl", "id-token": "token"},
	}, nil)
	require.NoError(t, err)
	assert.NotNil(t, p)

	// gcp and azure were removed from client-go: registered, they say which exec plugin replaces them.
	_, err = rest.GetAuthProvider("https://cluster.example:6443", &clientcmdapi.AuthProviderConfig{Name: "gcp"}, nil)
	assert.ErrorContains(t, err, "gke-gcloud-auth-plugin")
	_, err = rest.GetAuthProvider("https://cluster.example:6443", &clientcmdapi.AuthProviderConfig{Name: "azure"}, nil)
	assert.ErrorContains(t, err, "kubelogin")
}
