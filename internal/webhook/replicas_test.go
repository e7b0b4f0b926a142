package webhook

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
)

var benchAdmission = flag.Bool("bench-admission", false, "run TestBenchAdmission: 200 concurrent DGDR creates, printing latencies (make bench-admission)")

// latencies records how long the webhook's handlers took, per request.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.d = append(l.d, d)
}

func (l *latencies) snapshot() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.d)
}

// percentile of ds (sorted in place), nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(float64(len(ds))*p+0.5) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

// timedServer times every admission request its handlers serve.
type timedServer struct {
	webhook.Server
	rec *latencies
}

func (s timedServer) Register(path string, h http.Handler) {
	s.Server.Register(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h.ServeHTTP(w, r)
		s.rec.add(time.Since(start))
	}))
}

// front is a TCP front (TLS passes through) on the address the webhook configurations call, spreading
// connections over webhook replicas the way a Service does; kill stops one replica and cuts its connections.
type front struct {
	ln       net.Listener
	mu       sync.Mutex
	replicas []*replica
	next     int
}

type replica struct {
	addr   string
	alive  bool
	cancel context.CancelFunc
	conns  map[net.Conn]struct{}
}

func (f *front) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		go f.handle(c)
	}
}

func (f *front) pick() *replica {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range f.replicas {
		r := f.replicas[f.next%len(f.replicas)]
		f.next++
		if r.alive {
			return r
		}
	}
	return nil
}

func (f *front) handle(c net.Conn) {
	for range f.replicas {
		r := f.pick()
		if r == nil {
			break
		}
		bc, err := net.Dial("tcp", r.addr)
		if err != nil {
			continue
		}
		f.mu.Lock()
		if !r.alive {
			f.mu.Unlock()
			_ = bc.Close()
			continue
		}
		r.conns[c], r.conns[bc] = struct{}{}, struct{}{}
		f.mu.Unlock()
		go func() { _, _ = io.Copy(bc, c); _ = bc.Close() }()
		_, _ = io.Copy(c, bc)
		_ = c.Close()
		f.mu.Lock()
		delete(r.conns, c)
		delete(r.conns, bc)
		f.mu.Unlock()
		return
	}
	_ = c.Close()
}

// kill stops replica i at once: no new connections, open ones cut mid-request (as a crashed pod's).
func (f *front) kill(i int) {
	f.mu.Lock()
	r := f.replicas[i]
	r.alive = false
	for c := range r.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	r.cancel()
}

// startReplicated is startCluster with two webhook replicas behind a front, each acting as the webhook's
// ServiceAccount, and optionally kube-controller-manager's garbage collector.
func startReplicated(t *testing.T, gc bool) (*cluster, *front, *latencies) {
	t.Helper()
	install := render(t, ".", nil)
	m, v := install.webhookConfigs(t)
	cl := &cluster{}
	cl.env = testenv.Start(t, testenv.Options{
		MutatingWebhooks:   []*admissionregistrationv1.MutatingWebhookConfiguration{m},
		ValidatingWebhooks: []*admissionregistrationv1.ValidatingWebhookConfiguration{v},
		GarbageCollector:   gc,
	})
	cl.env.Config.QPS = -1 // no client-side rate limit: the burst is the point
	for _, u := range install {
		switch u.GetKind() {
		case "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding":
			require.NoError(t, cl.env.Client.Create(t.Context(), u.DeepCopy()), "creating %s %s", u.GetKind(), u.GetName())
		}
	}

	wio := cl.env.Env.WebhookInstallOptions
	ln, err := net.Listen("tcp", net.JoinHostPort(wio.LocalServingHost, strconv.Itoa(wio.LocalServingPort)))
	require.NoError(t, err)
	f := &front{ln: ln}
	t.Cleanup(func() { _ = ln.Close() })
	rec := &latencies{}
	for range 2 {
		asWebhook := rest.CopyConfig(cl.env.Config)
		asWebhook.Impersonate = webhookUser
		c, err := client.New(asWebhook, client.Options{Scheme: lifecycle.Scheme()})
		require.NoError(t, err)
		h := &Handler{Client: c, DefaultImage: DefaultImage, ProfilerImage: testProfilerImage}
		if cl.handler == nil {
			cl.handler = h
		}
		port := freePort(t)
		srv := webhook.NewServer(webhook.Options{Host: wio.LocalServingHost, Port: port, CertDir: wio.LocalServingCertDir})
		Register(timedServer{Server: srv, rec: rec}, h)
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		go func() { _ = srv.Start(ctx) }()
		require.Eventually(t, func() bool { return srv.StartedChecker()(nil) == nil }, 20*time.Second, 50*time.Millisecond)
		f.replicas = append(f.replicas, &replica{addr: net.JoinHostPort(wio.LocalServingHost, strconv.Itoa(port)), alive: true, cancel: cancel, conns: map[net.Conn]struct{}{}})
	}
	go f.serve()
	return cl, f, rec
}

// collected waits until the garbage collector has caught up: a ConfigMap with a dangling owner, created
// now, is deleted.
func (cl *cluster) collected(t *testing.T, ns string) {
	t.Helper()
	probe := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "gc-probe-", Namespace: ns,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "absent", UID: "00000000-0000-0000-0000-0000000000aa"}}}}
	require.NoError(t, cl.env.Client.Create(t.Context(), probe))
	require.Eventually(t, func() bool {
		return apierrors.IsNotFound(cl.env.Client.Get(t.Context(), client.ObjectKeyFromObject(probe), &corev1.ConfigMap{}))
	}, 60*time.Second, 100*time.Millisecond, "the garbage collector catches up")
}

// burst creates n DGDRs, inFlight at a time, and returns the stored ones by name with their end-to-end
// create latency; afterKilled, when set, runs once half of them have answered.
func (cl *cluster) burst(t *testing.T, ns string, n, inFlight int, atHalf func()) (map[string]types.UID, []time.Duration, int) {
	t.Helper()
	c, err := client.New(cl.env.Config, client.Options{Scheme: cl.env.Scheme})
	require.NoError(t, err)
	var (
		mu      sync.Mutex
		created = map[string]types.UID{}
		e2e     []time.Duration
		failed  int
		done    atomic.Int32
		half    sync.Once
		wg      sync.WaitGroup
		slots   = make(chan struct{}, inFlight)
	)
	for i := range n {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			d := newDGDR(ns, fmt.Sprintf("b-%03d", i), nil)
			start := time.Now()
			err := c.Create(t.Context(), d)
			took := time.Since(start)
			mu.Lock()
			if err == nil {
				created[d.Name] = d.UID
				e2e = append(e2e, took)
			} else {
				failed++
				t.Logf("create %s: %v", d.Name, err)
			}
			mu.Unlock()
			if int(done.Add(1)) >= n/2 && atHalf != nil {
				half.Do(atHalf)
			}
		})
	}
	wg.Wait()
	return created, e2e, failed
}

// controllerUID is the UID of job's controller, "" when it has none.
func controllerUID(job *batchv1.Job) types.UID {
	if ref := metav1.GetControllerOf(job); ref != nil {
		return ref.UID
	}
	return ""
}

// assertOneJobEach: every stored DGDR of ns has exactly one Job, owned by its UID, and no Job is owned by
// anything else (no orphans).
func (cl *cluster) assertOneJobEach(t *testing.T, ns string) {
	t.Helper()
	dgdrs := &v1alpha1.DynamoGraphDeploymentRequestList{}
	require.NoError(t, cl.env.Client.List(t.Context(), dgdrs, client.InNamespace(ns)))
	jobs := &batchv1.JobList{}
	require.NoError(t, cl.env.Client.List(t.Context(), jobs, client.InNamespace(ns)))
	owners := map[types.UID]int{}
	for _, j := range jobs.Items {
		if _, anchor := j.Labels[LabelAnchorFor]; anchor {
			continue
		}
		uid := controllerUID(&j)
		assert.NotEmpty(t, uid, "Job %s has no owner", j.Name)
		owners[uid]++
	}
	stored := map[types.UID]bool{}
	for _, d := range dgdrs.Items {
		stored[d.UID] = true
		assert.Equal(t, 1, owners[d.UID], "DGDR %s has one Job", d.Name)
	}
	for uid := range owners {
		assert.True(t, stored[uid], "Job owned by %s, which is not stored: an orphan", uid)
	}
}

// TestGarbageCollection runs kube-controller-manager's garbage collector beside the webhook: what a
// refused request's Job becomes, what a stored DGDR's Job stays, and a webhook replica killed mid-burst.
func TestGarbageCollection(t *testing.T) {
	cl, f, _ := startReplicated(t, true)
	c := cl.env.Client

	t.Run("a DGDR refused after the webhook leaves no Job, and its name can be created again", func(t *testing.T) {
		ns := cl.namespace(t, "quota", false)
		// A quota refuses DGDRs after the webhooks (the ResourceQuota plugin runs last). Its status is
		// written here: no quota controller runs.
		q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "dgdrs", Namespace: ns},
			Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"count/dynamographdeploymentrequests.nvidia.com": resource.MustParse("0")}}}
		require.NoError(t, c.Create(t.Context(), q))
		q.Status = corev1.ResourceQuotaStatus{Hard: q.Spec.Hard, Used: corev1.ResourceList{"count/dynamographdeploymentrequests.nvidia.com": resource.MustParse("0")}}
		require.NoError(t, c.Status().Update(t.Context(), q))

		_, err := cl.create(t, newDGDR(ns, "refused", nil))
		require.True(t, apierrors.IsForbidden(err), "%v", err)
		assert.Contains(t, err.Error(), "exceeded quota")
		require.Eventually(t, func() bool { return len(cl.jobsFor(t, ns, "refused")) == 0 },
			time.Duration(AnchorTTLSeconds+60)*time.Second, 200*time.Millisecond, "the garbage collector removes the Job of the DGDR that was never stored, once its anchor expires")

		require.NoError(t, c.Delete(t.Context(), q))
		d := newDGDR(ns, "refused", nil)
		require.Eventually(t, func() bool { _, err = cl.create(t, d); return err == nil }, 30*time.Second, 200*time.Millisecond, "%v", err)
		cl.collected(t, ns)
		jobs := cl.jobsFor(t, ns, "refused")
		require.Len(t, jobs, 1)
		assert.Equal(t, d.UID, controllerUID(&jobs[0]), "a fresh Job, owned by the stored DGDR")
	})

	t.Run("delete and recreate with a changed spec gets a Job from the new spec", func(t *testing.T) {
		ns := cl.namespace(t, "gc-recreate", false)
		first := newDGDR(ns, "again", nil)
		_, err := cl.create(t, first)
		require.NoError(t, err)
		require.NoError(t, c.Delete(t.Context(), first))
		second := newDGDR(ns, "again", func(d *v1alpha1.DynamoGraphDeploymentRequest) { d.Spec.SearchStrategy = v1alpha1.SearchThorough })
		_, err = cl.create(t, second)
		require.NoError(t, err)
		cl.collected(t, ns)
		jobs := cl.jobsFor(t, ns, "again")
		require.Len(t, jobs, 1)
		assert.Equal(t, second.UID, controllerUID(&jobs[0]))
		assert.Equal(t, int64(6*60*60), *jobs[0].Spec.ActiveDeadlineSeconds)
	})

	t.Run("anchors expire and leave the stored DGDR's Job owned by it alone", func(t *testing.T) {
		ns := cl.namespace(t, "anchors", false)
		d := newDGDR(ns, "anchored", nil)
		_, err := cl.create(t, d)
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			jobs := cl.jobsFor(t, ns, "anchored")
			return len(jobs) == 1 && len(jobs[0].OwnerReferences) == 1 && jobs[0].OwnerReferences[0].UID == d.UID
		}, time.Duration(AnchorTTLSeconds+60)*time.Second, time.Second, "the TTL controller deletes the anchor; the collector drops its reference")
		anchors := &batchv1.JobList{}
		require.NoError(t, c.List(t.Context(), anchors, client.InNamespace(ns), client.HasLabels{LabelAnchorFor}))
		assert.Empty(t, anchors.Items)
	})

	t.Run("a webhook replica killed mid-burst: one Job per stored DGDR, no orphan", func(t *testing.T) {
		// The stored DGDRs' Jobs also survive the collector, which sees each Job before its DGDR is stored.
		ns := cl.namespace(t, "burst", false)
		created, _, failed := cl.burst(t, ns, 200, 20, func() { f.kill(0) })
		t.Logf("%d created, %d refused while a replica died", len(created), failed)
		require.Greater(t, len(created), 100, "the surviving replica serves the rest")
		cl.collected(t, ns)
		cl.assertOneJobEach(t, ns)
		for name, uid := range created {
			d := &v1alpha1.DynamoGraphDeploymentRequest{}
			require.NoError(t, c.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, d))
			assert.Equal(t, uid, d.UID)
		}
	})
}

// TestBenchAdmission is `make bench-admission`: 200 concurrent DGDR creates through the real API server and
// two webhook replicas, printing the webhook's handling time and the end-to-end create latency. Figures
// only; nothing is asserted about time.
func TestBenchAdmission(t *testing.T) {
	if !*benchAdmission {
		t.Skip("a measurement: run with -bench-admission (make bench-admission)")
	}
	cl, _, rec := startReplicated(t, false)
	ns := cl.namespace(t, "bench", false)
	cl.burst(t, ns, 20, 20, nil) // warm up connections and caches
	rec.mu.Lock()
	rec.d = nil
	rec.mu.Unlock()
	ns = cl.namespace(t, "bench-burst", false)
	start := time.Now()
	created, e2e, failed := cl.burst(t, ns, 200, 200, nil)
	wall := time.Since(start)
	hook := rec.snapshot()
	require.Zero(t, failed)
	cl.assertOneJobEach(t, ns)
	fmt.Printf("bench-admission: %d DGDRs created concurrently in %v (%d webhook calls)\n", len(created), wall.Round(time.Millisecond), len(hook))
	fmt.Printf("  webhook handling  p50 %v  p99 %v  max %v\n", percentile(hook, 0.5).Round(10*time.Microsecond), percentile(hook, 0.99).Round(10*time.Microsecond), percentile(hook, 1).Round(10*time.Microsecond))
	fmt.Printf("  end-to-end create p50 %v  p99 %v  max %v\n", percentile(e2e, 0.5).Round(time.Millisecond), percentile(e2e, 0.99).Round(time.Millisecond), percentile(e2e, 1).Round(time.Millisecond))
}
