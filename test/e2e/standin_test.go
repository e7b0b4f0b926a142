package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/dgdr-dev/dgdr/internal/profiler"
	"github.com/dgdr-dev/dgdr/pkg/expand"
)

// dynamoStandIn is a test-only stand-in for NVIDIA Dynamo's operator, which cannot run here (its
// engines need GPUs and its images cannot be pulled). For every DGD it runs each component as a
// Deployment of the simulated engine (internal/simengine, the simengine image) with a readiness probe,
// gives the frontend its Service (<dgd>-frontend:8000, where the thorough search benchmarks it), and
// reports the DGD ready (status.state successful and a Ready condition) once every replica is ready.
// What it makes is owned by the DGD, so deleting the DGD removes it. It is never shipped.
type dynamoStandIn struct {
	c client.Client

	mu      sync.Mutex
	seen    map[string]bool // namespace/name of every DGD it has served
	held    map[string]bool // namespaces whose DGDs it keeps not ready (a test's window for a fault)
	lastErr error
}

// hold keeps the DGDs of ns not ready until release: a real operator takes minutes to load a model, and
// the fault tests need that window.
func (s *dynamoStandIn) hold(ns string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held[ns] = true
}

func (s *dynamoStandIn) release(ns string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.held, ns)
}

var dgdGVK = schema.GroupVersionKind{Group: "nvidia.com", Version: "v1beta1", Kind: "DynamoGraphDeployment"}

const standInLabel = "e2e.dgdr.dev/dgd"

// run reconciles every DGD once a second until ctx ends.
func (s *dynamoStandIn) run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		err := s.reconcileAll(ctx)
		s.mu.Lock()
		s.lastErr = err
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *dynamoStandIn) reconcileAll(ctx context.Context) error {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(dgdGVK.GroupVersion().WithKind("DynamoGraphDeploymentList"))
	if err := s.c.List(ctx, list); err != nil {
		return fmt.Errorf("listing DGDs: %w", err)
	}
	var errs []string
	for i := range list.Items {
		d := &list.Items[i]
		if d.GetDeletionTimestamp() != nil {
			continue
		}
		s.mu.Lock()
		s.seen[d.GetNamespace()+"/"+d.GetName()] = true
		s.mu.Unlock()
		if err := s.reconcile(ctx, d); err != nil {
			errs = append(errs, fmt.Sprintf("%s/%s: %v", d.GetNamespace(), d.GetName(), err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// component is one component of a DGD: v1beta1 lists them under spec.components; a DGD written as
// v1alpha1 (stored unconverted: the test CRD has no conversion webhook) keeps its map spec.services.
type component struct {
	name, kind string
	replicas   int32
	model      string
}

func components(d *unstructured.Unstructured) []component {
	var out []component
	read := func(name string, m map[string]any, kindKey string) {
		kind, _, _ := unstructured.NestedString(m, kindKey)
		r, ok, _ := unstructured.NestedInt64(m, "replicas")
		if !ok {
			r = 1
		}
		cmp := component{name: name, kind: kind, replicas: int32(r), model: "sim-model"}
		// The engine's served model, from the worker's arguments, so requests for the DGDR's model work.
		for _, path := range [][]string{{"podTemplate", "spec", "containers"}, {"extraPodSpec", "mainContainer"}} {
			v, _, _ := unstructured.NestedFieldNoCopy(m, path...)
			var containers []any
			switch v := v.(type) {
			case []any:
				containers = v
			case map[string]any:
				containers = []any{v}
			}
			for _, ct := range containers {
				args, _, _ := unstructured.NestedStringSlice(ct.(map[string]any), "args")
				for i := 0; i+1 < len(args); i++ {
					switch {
					case args[i] == "--served-model-name":
						cmp.model = args[i+1]
					case (args[i] == "--model" || args[i] == "--model-path") && cmp.model == "sim-model":
						cmp.model = args[i+1]
					}
				}
			}
		}
		out = append(out, cmp)
	}
	if list, ok, _ := unstructured.NestedSlice(d.Object, "spec", "components"); ok {
		for _, v := range list {
			m := v.(map[string]any)
			name, _, _ := unstructured.NestedString(m, "name")
			read(name, m, "type")
		}
	}
	if svcs, ok, _ := unstructured.NestedMap(d.Object, "spec", "services"); ok {
		names := make([]string, 0, len(svcs))
		for n := range svcs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			read(n, svcs[n].(map[string]any), "componentType")
		}
	}
	return out
}

func (s *dynamoStandIn) reconcile(ctx context.Context, d *unstructured.Unstructured) error {
	comps := components(d)
	model := "sim-model"
	for _, cmp := range comps {
		if cmp.model != "sim-model" {
			model = cmp.model
		}
	}
	ready := len(comps) > 0
	var waiting []string
	for _, cmp := range comps {
		name := d.GetName() + "-" + strings.ToLower(cmp.name)
		labels := map[string]string{standInLabel: d.GetName(), "e2e.dgdr.dev/component": strings.ToLower(cmp.name)}
		dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: d.GetNamespace()}}
		if _, err := controllerutil.CreateOrUpdate(ctx, s.c, dep, func() error {
			dep.Labels = labels
			dep.Spec.Replicas = ptr.To(cmp.replicas)
			dep.Spec.Selector = &metav1.LabelSelector{MatchLabels: labels}
			dep.Spec.Template.Labels = labels
			dep.Spec.Template.Spec = engineSpec(model)
			return controllerutil.SetControllerReference(d, dep, s.c.Scheme())
		}); err != nil {
			return fmt.Errorf("deployment %s: %w", name, err)
		}
		if dep.Status.ReadyReplicas < cmp.replicas || dep.Status.ObservedGeneration < dep.Generation {
			ready = false
			waiting = append(waiting, fmt.Sprintf("%s %d/%d", cmp.name, dep.Status.ReadyReplicas, cmp.replicas))
		}
		if strings.EqualFold(cmp.name, expand.DGDFrontendName) || cmp.kind == "frontend" {
			svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: d.GetName() + "-" + strings.ToLower(expand.DGDFrontendName), Namespace: d.GetNamespace()}}
			if _, err := controllerutil.CreateOrUpdate(ctx, s.c, svc, func() error {
				svc.Spec.Selector = labels
				svc.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: profiler.FrontendPort, TargetPort: intstr.FromInt32(profiler.FrontendPort)}}
				return controllerutil.SetControllerReference(d, svc, s.c.Scheme())
			}); err != nil {
				return fmt.Errorf("service %s: %w", svc.Name, err)
			}
		}
	}
	s.mu.Lock()
	if s.held[d.GetNamespace()] {
		ready, waiting = false, append(waiting, "the test's hold")
	}
	s.mu.Unlock()
	state, cond, msg := "pending", metav1.ConditionFalse, "waiting for "+strings.Join(waiting, ", ")
	if ready {
		state, cond, msg = "successful", metav1.ConditionTrue, "every component ready (test/e2e stand-in)"
	}
	old, _, _ := unstructured.NestedString(d.Object, "status", "state")
	oldMsg := ""
	if conds, _, _ := unstructured.NestedSlice(d.Object, "status", "conditions"); len(conds) > 0 {
		if m, ok := conds[0].(map[string]any); ok {
			oldMsg, _ = m["message"].(string)
		}
	}
	if old == state && (ready || oldMsg == msg) {
		return nil
	}
	patch := map[string]any{"status": map[string]any{"state": state, "conditions": []any{map[string]any{
		"type": "Ready", "status": string(cond), "reason": "StandIn", "message": msg,
		"lastTransitionTime": time.Now().UTC().Format(time.RFC3339),
	}}}}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(dgdGVK)
	u.SetNamespace(d.GetNamespace())
	u.SetName(d.GetName())
	raw, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	if err := s.c.Status().Patch(ctx, u, client.RawPatch(types.MergePatchType, raw)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("status: %w", err)
	}
	return nil
}

// engineSpec is the pod of one engine replica: the simulated engine, non-root with a read-only root
// filesystem as Pod Security's restricted level requires, ready when /health answers.
func engineSpec(model string) corev1.PodSpec {
	return corev1.PodSpec{
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		TerminationGracePeriodSeconds: ptr.To[int64](2),
		Containers: []corev1.Container{{
			Name: "engine", Image: simengineImage, ImagePullPolicy: corev1.PullIfNotPresent,
			Args:  []string{"--addr=:8000", "--model=" + model},
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: profiler.FrontendPort}},
			ReadinessProbe: &corev1.Probe{
				ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/health", Port: intstr.FromInt32(profiler.FrontendPort)}},
				PeriodSeconds: 1,
			},
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("5m"), corev1.ResourceMemory: resource.MustParse("16Mi"),
			}},
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true), RunAsNonRoot: ptr.To(true),
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
		}},
	}
}
