package webhook

import (
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	certutil "k8s.io/client-go/util/cert"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

// rendered is the output of one kustomization.
type rendered []*unstructured.Unstructured

// render builds manifests/<dir> with kustomize's krusty from an in-memory copy of manifests/, plus extra
// files (relative to manifests/) such as the certificates the manual-tls overlay expects from the user.
func render(t testing.TB, dir string, extra map[string][]byte) rendered {
	t.Helper()
	root := filepath.Join(testenv.RepoRoot(t), "manifests")
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		return mem.WriteFile(filepath.Join("/manifests", rel), data)
	})
	require.NoError(t, err)
	for rel, data := range extra {
		require.NoError(t, mem.WriteFile(filepath.Join("/manifests", rel), data))
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, filepath.Join("/manifests", dir))
	require.NoError(t, err, "kustomize build manifests/%s", dir)
	var out rendered
	for _, r := range m.Resources() {
		data, err := r.AsYAML()
		require.NoError(t, err)
		u := &unstructured.Unstructured{}
		require.NoError(t, yaml.Unmarshal(data, &u.Object))
		out = append(out, u)
	}
	return out
}

// get finds one object by kind and name and converts it to the typed into.
func (r rendered) get(t testing.TB, kind, name string, into runtime.Object) {
	t.Helper()
	for _, u := range r {
		if u.GetKind() == kind && u.GetName() == name {
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into))
			return
		}
	}
	t.Fatalf("no %s %q rendered", kind, name)
}

func (r rendered) has(kind string) bool {
	return slices.ContainsFunc(r, func(u *unstructured.Unstructured) bool { return u.GetKind() == kind })
}

// webhookConfigs returns the rendered webhook configurations, as installed by the control-plane tests.
func (r rendered) webhookConfigs(t testing.TB) (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration) {
	t.Helper()
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	r.get(t, "MutatingWebhookConfiguration", "dgdr-webhook", m)
	r.get(t, "ValidatingWebhookConfiguration", "dgdr-webhook", v)
	return m, v
}

// TestManifestsDefaultInstall renders manifests/ (what `kubectl kustomize manifests/` prints) and checks
// the properties the webhook relies on.
func TestManifestsDefaultInstall(t *testing.T) {
	r := render(t, ".", nil)
	for _, kind := range []string{"CustomResourceDefinition", "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
		"Deployment", "Service", "PodDisruptionBudget", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "Issuer", "Certificate"} {
		assert.True(t, r.has(kind), "the default install renders a %s", kind)
	}
	ns := &corev1.Namespace{}
	r.get(t, "Namespace", "dgdr-system", ns)

	dep := &appsv1.Deployment{}
	r.get(t, "Deployment", "dgdr-webhook", dep)
	assert.Equal(t, "dgdr-system", dep.Namespace)
	assert.Equal(t, int32(2), *dep.Spec.Replicas)
	pod := dep.Spec.Template.Spec
	assert.Equal(t, "dgdr-webhook", pod.ServiceAccountName)
	assert.True(t, *pod.SecurityContext.RunAsNonRoot)
	require.Len(t, pod.Containers, 1)
	c := pod.Containers[0]
	assert.Equal(t, ProfilerImageRepository+":v0.1.0", c.Image)
	assert.Equal(t, []string{"/usr/local/bin/dgdr-webhook"}, c.Command)
	assert.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
	assert.False(t, *c.SecurityContext.AllowPrivilegeEscalation)
	assert.Equal(t, []corev1.Capability{"ALL"}, c.SecurityContext.Capabilities.Drop)
	assert.False(t, c.Resources.Requests.Cpu().IsZero())
	assert.False(t, c.Resources.Limits.Memory().IsZero())
	require.NotNil(t, c.ReadinessProbe)
	require.NotNil(t, c.LivenessProbe)
	assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
	assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)

	// The container's arguments are the binary's flags, and they agree with the ports and the mount.
	o := NewOptions()
	fs := flag.NewFlagSet("dgdr-webhook", flag.ContinueOnError)
	o.BindFlags(fs)
	require.NoError(t, fs.Parse(c.Args), "the Deployment's args parse as dgdr-webhook flags")
	require.NoError(t, o.Validate())
	assert.Equal(t, DefaultImage, o.DefaultImage)
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	assert.Equal(t, int32(o.Port), ports["webhook"])
	assert.Equal(t, ":8080", o.MetricsBindAddress)
	assert.Equal(t, int32(8080), ports["metrics"])
	assert.Equal(t, ":8081", o.HealthProbeBindAddress)
	assert.Equal(t, int32(8081), ports["health"])
	require.Len(t, c.VolumeMounts, 1)
	assert.Equal(t, o.CertDir, c.VolumeMounts[0].MountPath)
	assert.True(t, c.VolumeMounts[0].ReadOnly)
	require.Len(t, pod.Volumes, 1)
	assert.Equal(t, "dgdr-webhook-tls", pod.Volumes[0].Secret.SecretName)

	pdb := &policyv1.PodDisruptionBudget{}
	r.get(t, "PodDisruptionBudget", "dgdr-webhook", pdb)
	assert.Equal(t, dep.Spec.Selector, pdb.Spec.Selector)
	assert.Equal(t, 1, pdb.Spec.MinAvailable.IntValue())

	svc := &corev1.Service{}
	r.get(t, "Service", "dgdr-webhook", svc)
	assert.Equal(t, dep.Spec.Selector.MatchLabels, svc.Spec.Selector)

	m, v := r.webhookConfigs(t)
	checkWebhooks(t, m, v, svc)
	assert.Equal(t, "dgdr-system/dgdr-webhook", m.Annotations["cert-manager.io/inject-ca-from"])
	assert.Equal(t, "dgdr-system/dgdr-webhook", v.Annotations["cert-manager.io/inject-ca-from"])

	cert := &unstructured.Unstructured{}
	for _, u := range r {
		if u.GetKind() == "Certificate" {
			cert = u
		}
	}
	assert.Equal(t, "dgdr-webhook", cert.GetName(), "inject-ca-from names this Certificate")
	assert.Equal(t, "dgdr-system", cert.GetNamespace())
	secret, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
	assert.Equal(t, "dgdr-webhook-tls", secret, "the Deployment mounts the Certificate's Secret")
	names, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
	assert.Contains(t, names, "dgdr-webhook.dgdr-system.svc", "the API server dials <service>.<namespace>.svc")

	checkWebhookRBAC(t, r)
}

// checkWebhooks: both configurations see DGDRs only, fail closed, have a timeout and call our paths.
func checkWebhooks(t *testing.T, m *admissionregistrationv1.MutatingWebhookConfiguration, v *admissionregistrationv1.ValidatingWebhookConfiguration, svc *corev1.Service) {
	t.Helper()
	require.Len(t, m.Webhooks, 1)
	require.Len(t, v.Webhooks, 1)
	type hook struct {
		path      string
		cc        admissionregistrationv1.WebhookClientConfig
		rules     []admissionregistrationv1.RuleWithOperations
		fail      *admissionregistrationv1.FailurePolicyType
		side      *admissionregistrationv1.SideEffectClass
		timeout   *int32
		wantOps   []admissionregistrationv1.OperationType
		wantSide  admissionregistrationv1.SideEffectClass
		reviewVer []string
	}
	mw, vw := m.Webhooks[0], v.Webhooks[0]
	for _, h := range []hook{
		{MutatePath, mw.ClientConfig, mw.Rules, mw.FailurePolicy, mw.SideEffects, mw.TimeoutSeconds,
			[]admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}, admissionregistrationv1.SideEffectClassNone, mw.AdmissionReviewVersions},
		{ValidatePath, vw.ClientConfig, vw.Rules, vw.FailurePolicy, vw.SideEffects, vw.TimeoutSeconds,
			[]admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}, admissionregistrationv1.SideEffectClassNoneOnDryRun, vw.AdmissionReviewVersions},
	} {
		t.Run(h.path, func(t *testing.T) {
			require.NotNil(t, h.cc.Service)
			assert.Equal(t, h.path, *h.cc.Service.Path)
			assert.Equal(t, svc.Name, h.cc.Service.Name)
			assert.Equal(t, svc.Namespace, h.cc.Service.Namespace)
			assert.Equal(t, svc.Spec.Ports[0].Port, *h.cc.Service.Port)
			require.Len(t, h.rules, 1)
			assert.Equal(t, []string{"nvidia.com"}, h.rules[0].APIGroups)
			assert.Equal(t, []string{"v1alpha1"}, h.rules[0].APIVersions)
			assert.Equal(t, []string{v1alpha1.Resource}, h.rules[0].Resources, "DGDRs only, not their status")
			assert.Equal(t, h.wantOps, h.rules[0].Operations)
			assert.Equal(t, admissionregistrationv1.Fail, *h.fail)
			assert.Equal(t, h.wantSide, *h.side)
			require.NotNil(t, h.timeout)
			assert.Equal(t, int32(10), *h.timeout)
			assert.Equal(t, []string{"v1"}, h.reviewVer)
		})
	}
}

// checkWebhookRBAC: the webhook's ServiceAccount is bound to exactly the rights the handler uses.
func checkWebhookRBAC(t *testing.T, r rendered) {
	t.Helper()
	role := &rbacv1.ClusterRole{}
	r.get(t, "ClusterRole", "dgdr-webhook", role)
	binding := &rbacv1.ClusterRoleBinding{}
	r.get(t, "ClusterRoleBinding", "dgdr-webhook", binding)
	assert.Equal(t, "dgdr-webhook", binding.RoleRef.Name)
	assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "dgdr-webhook", Namespace: "dgdr-system"}}, binding.Subjects)
	for _, rule := range role.Rules {
		for _, verb := range rule.Verbs {
			// patch and delete: only Jobs and CronJobs, for the claim (make the stored DGDR the owner of the Job
			// or CronJob the webhook created, or delete that of a create that was not stored; with preconditions).
			if (verb == "delete" || verb == "patch") && slices.Equal(rule.APIGroups, []string{"batch"}) &&
				(slices.Equal(rule.Resources, []string{"jobs"}) || slices.Equal(rule.Resources, []string{"cronjobs"})) {
				continue
			}
			assert.NotContains(t, []string{"*", "delete", "update", "patch", "watch"}, verb, "rule %v", rule)
		}
		assert.NotContains(t, rule.Resources, "secrets")
	}
}

// TestManifestsManualTLS renders the overlay for clusters without cert-manager, with the files it expects.
func TestManifestsManualTLS(t *testing.T) {
	caPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey("dgdr-webhook.dgdr-system.svc", nil, nil)
	require.NoError(t, err)
	r := render(t, "overlays/manual-tls", map[string][]byte{
		"overlays/manual-tls/tls.crt": caPEM,
		"overlays/manual-tls/tls.key": keyPEM,
		"overlays/manual-tls/ca.crt":  caPEM,
	})
	assert.False(t, r.has("Certificate"))
	assert.False(t, r.has("Issuer"))
	assert.True(t, r.has("CustomResourceDefinition"))

	var secret corev1.Secret
	for _, u := range r {
		if u.GetKind() == "Secret" {
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &secret))
		}
	}
	assert.True(t, strings.HasPrefix(secret.Name, "dgdr-webhook-tls-"), "generated, with a content hash: %s", secret.Name)
	assert.Equal(t, "dgdr-system", secret.Namespace)
	assert.Equal(t, corev1.SecretTypeTLS, secret.Type)
	assert.Equal(t, keyPEM, secret.Data["tls.key"])

	dep := &appsv1.Deployment{}
	r.get(t, "Deployment", "dgdr-webhook", dep)
	assert.Equal(t, secret.Name, dep.Spec.Template.Spec.Volumes[0].Secret.SecretName, "the Deployment mounts the generated Secret")
	// The same tagged image as the default install (an untagged one is :latest, pulled at every start:
	// make e2e's kubelet found the overlay deploying ghcr.io/dgdr-dev/dgdr:latest).
	def := &appsv1.Deployment{}
	render(t, ".", nil).get(t, "Deployment", "dgdr-webhook", def)
	assert.Equal(t, def.Spec.Template.Spec.Containers[0].Image, dep.Spec.Template.Spec.Containers[0].Image)

	svc := &corev1.Service{}
	r.get(t, "Service", "dgdr-webhook", svc)
	m, v := r.webhookConfigs(t)
	checkWebhooks(t, m, v, svc)
	assert.Equal(t, caPEM, m.Webhooks[0].ClientConfig.CABundle, "caBundle is ca.crt")
	assert.Equal(t, caPEM, v.Webhooks[0].ClientConfig.CABundle)
	assert.NotContains(t, m.Annotations, "cert-manager.io/inject-ca-from")
	assert.NotContains(t, v.Annotations, "cert-manager.io/inject-ca-from")
	checkWebhookRBAC(t, r)
}

// TestManifestsProfilerNamespace renders the per-namespace kit and checks that it binds the profiler's
// ServiceAccount to the ClusterRoles the default install defines.
func TestManifestsProfilerNamespace(t *testing.T) {
	install := render(t, ".", nil)
	kustomization, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "manifests", "profiler-namespace", "kustomization.yaml"))
	require.NoError(t, err)

	for _, ns := range []string{"default", "team-a"} {
		t.Run(ns, func(t *testing.T) {
			k := strings.Replace(string(kustomization), "\nnamespace: default\n", "\nnamespace: "+ns+"\n", 1)
			r := render(t, "profiler-namespace", map[string][]byte{"profiler-namespace/kustomization.yaml": []byte(k)})
			sa := &corev1.ServiceAccount{}
			r.get(t, "ServiceAccount", v1alpha1.ProfilerServiceAccount, sa)
			assert.Equal(t, ns, sa.Namespace)
			subject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: v1alpha1.ProfilerServiceAccount, Namespace: ns}}

			rb := &rbacv1.RoleBinding{}
			r.get(t, "RoleBinding", "dgdr-profiler", rb)
			assert.Equal(t, ns, rb.Namespace)
			assert.Equal(t, subject, rb.Subjects)
			assert.Equal(t, "ClusterRole", rb.RoleRef.Kind)
			install.get(t, "ClusterRole", rb.RoleRef.Name, &rbacv1.ClusterRole{})

			crb := &rbacv1.ClusterRoleBinding{}
			r.get(t, "ClusterRoleBinding", "dgdr-profiler-"+ns, crb)
			assert.Equal(t, subject, crb.Subjects)
			install.get(t, "ClusterRole", crb.RoleRef.Name, &rbacv1.ClusterRole{})
		})
	}
}
