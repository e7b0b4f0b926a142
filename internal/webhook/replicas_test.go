package webhook

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
	"github.com/dgdr-dev/dgdr/internal/profiler"
	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
)

// burstInFlight is how many creates TestGarbageCollection's burst keeps in flight.
const burstInFlight = 20

var (
	benchAdmission = flag.Bool("bench-admission", false, "run TestBenchAdmission: 200 concurrent DGDR creates, printing latencies (make bench-admission)")
	benchInFlight  = flag.Int("bench-in-flight", 200, "TestBenchAdmission: how many of the 200 creates are in flight at once")
)

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
	cl.env.Config.QPS = -1 // the test's own clients: no client-side rate limit, the burst is the point
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
		asWebhook.QPS, asWebhook.Burst = ClientQPS, ClientBurst // as Run sets them
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

// profilerClient binds the profiler's RBAC in ns as manifests/profiler-namespace does and returns a client
// acting as the profiler's ServiceAccount there: the claims below run with exactly its rights (and under
// OwnerReferencesPermissionEnforcement, on in testenv).
func (cl *cluster) profilerClient(t *testing.T, ns string) client.Client {
	t.Helper()
	kustomization, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "manifests", "profiler-namespace", "kustomization.yaml"))
	require.NoError(t, err)
	k := strings.Replace(string(kustomization), "\nnamespace: default\n", "\nnamespace: "+ns+"\n", 1)
	r := render(t, "profiler-namespace", map[string][]byte{"profiler-namespace/kustomization.yaml": []byte(k)})
	for _, u := range r {
		if err := cl.env.Client.Create(t.Context(), u.DeepCopy()); err != nil && !apierrors.IsAlreadyExists(err) {
			require.NoError(t, err, "creating %s %s", u.GetKind(), u.GetName())
		}
	}
	cfg := rest.CopyConfig(cl.env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":" + v1alpha1.ProfilerServiceAccount,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
	c, err := client.New(cfg, client.Options{Scheme: cl.env.Scheme})
	require.NoError(t, err)
	return c
}

// claim runs what the profiler of job does first (dgdr-profiler --uid, as the Job passes it), waiting up
// to wait for its DGDR.
func claim(ctx context.Context, c client.Client, job *batchv1.Job, wait time.Duration) error {
	return profiler.Claim(ctx, profiler.Options{Namespace: job.Namespace, Name: job.Labels[v1alpha1.LabelDGDRName], UID: v1alpha1.JobDGDRUID(job),
		JobName: job.Name, Client: c, PollInterval: 50 * time.Millisecond, DGDRWait: wait})
}

// assertOneJobEach: every stored DGDR of ns has exactly one Job, made for its UID (and owned by it when
// claimed), and no Job was made for a UID that is not stored.
func (cl *cluster) assertOneJobEach(t *testing.T, ns string, claimed bool) {
	t.Helper()
	dgdrs := &v1alpha1.DynamoGraphDeploymentRequestList{}
	require.NoError(t, cl.env.Client.List(t.Context(), dgdrs, client.InNamespace(ns)))
	jobs := &batchv1.JobList{}
	require.NoError(t, cl.env.Client.List(t.Context(), jobs, client.InNamespace(ns)))
	made := map[types.UID]int{}
	for _, j := range jobs.Items {
		uid := v1alpha1.JobDGDRUID(&j)
		assert.NotEmpty(t, uid, "Job %s names no DGDR UID", j.Name)
		if claimed {
			owner := metav1.GetControllerOf(&j)
			if assert.NotNil(t, owner, "Job %s was claimed", j.Name) {
				assert.Equal(t, uid, owner.UID, "Job %s is owned by the DGDR it was made for", j.Name)
				assert.Nil(t, owner.BlockOwnerDeletion)
			}
		}
		made[uid]++
	}
	stored := map[types.UID]bool{}
	for _, d := range dgdrs.Items {
		stored[d.UID] = true
		assert.Equal(t, 1, made[d.UID], "DGDR %s has one Job", d.Name)
	}
	for uid := range made {
		assert.True(t, stored[uid], "a Job made for %s, which is not stored: an orphan", uid)
	}
}

// TestGarbageCollection runs kube-controller-manager's garbage collector beside two webhook replicas and
// runs the profiler's claim (as the profiler's ServiceAccount) where the profiling pod would: what a
// refused request's Job becomes, what a stored DGDR's Job stays, and a webhook replica killed mid-burst.
func TestGarbageCollection(t *testing.T) {
	cl, f, _ := startReplicated(t, true)
	c := cl.env.Client

	t.Run("a DGDR refused after the webhook: its profiler deletes the Job, and the name can be created again", func(t *testing.T) {
		ns := cl.namespace(t, "quota", false)
		pc := cl.profilerClient(t, ns)
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
		jobs := cl.jobsFor(t, ns, "refused")
		require.Len(t, jobs, 1, "the webhook created the Job before the quota refused the DGDR")
		assert.Empty(t, jobs[0].OwnerReferences)
		err = claim(t.Context(), pc, &jobs[0], 2*time.Second)
		require.ErrorIs(t, err, profiler.ErrNotAdmitted)
		t.Log(err)
		require.Eventually(t, func() bool { return len(cl.jobsFor(t, ns, "refused")) == 0 }, 30*time.Second, 100*time.Millisecond,
			"the profiler deletes the Job of the DGDR that was never stored")

		// A Job left by a refused create whose profiler has not run yet is replaced by the next create,
		// which gets a Job built from its own spec.
		_, err = cl.create(t, newDGDR(ns, "refused", nil))
		require.True(t, apierrors.IsForbidden(err), "%v", err)
		left := cl.jobsFor(t, ns, "refused")
		require.Len(t, left, 1)
		require.NoError(t, c.Delete(t.Context(), q))
		d := newDGDR(ns, "refused", func(d *v1alpha1.DynamoGraphDeploymentRequest) { d.Spec.SearchStrategy = v1alpha1.SearchThorough })
		require.Eventually(t, func() bool { _, err = cl.create(t, d); return err == nil }, 30*time.Second, 200*time.Millisecond, "%v", err)
		jobs = cl.jobsFor(t, ns, "refused")
		require.Len(t, jobs, 1)
		assert.NotEqual(t, left[0].UID, jobs[0].UID, "a fresh Job")
		assert.Equal(t, d.UID, v1alpha1.JobDGDRUID(&jobs[0]))
		assert.Equal(t, expand.ThoroughDeadlineSeconds, *jobs[0].Spec.ActiveDeadlineSeconds, "built from the new spec")

		// The refused create's profiler, if its pod still starts, leaves the new Job alone.
		err = claim(t.Context(), pc, &left[0], 2*time.Second)
		require.ErrorIs(t, err, profiler.ErrNotAdmitted)
		require.NoError(t, claim(t.Context(), pc, &jobs[0], 10*time.Second))
		cl.collected(t, ns)
		cl.assertOneJobEach(t, ns, true)
	})

	t.Run("a stored DGDR's Job survives the collector, is claimed, and goes with the DGDR", func(t *testing.T) {
		ns := cl.namespace(t, "gc-kept", false)
		pc := cl.profilerClient(t, ns)
		d := newDGDR(ns, "kept", nil)
		_, err := cl.create(t, d)
		require.NoError(t, err)
		// The collector has had its chance: it caught up with a probe created after the Job, and a few
		// seconds more.
		cl.collected(t, ns)
		time.Sleep(3 * time.Second)
		jobs := cl.jobsFor(t, ns, "kept")
		require.Len(t, jobs, 1, "the collector left the Job alone")
		assert.Equal(t, d.UID, v1alpha1.JobDGDRUID(&jobs[0]))

		require.NoError(t, claim(t.Context(), pc, &jobs[0], 10*time.Second))
		cl.collected(t, ns)
		cl.assertOneJobEach(t, ns, true)

		require.NoError(t, c.Delete(t.Context(), d))
		require.Eventually(t, func() bool { return len(cl.jobsFor(t, ns, "kept")) == 0 }, 60*time.Second, 200*time.Millisecond,
			"the collector deletes the Job of the deleted DGDR")
	})

	t.Run("delete and recreate with a changed spec gets a Job from the new spec", func(t *testing.T) {
		ns := cl.namespace(t, "gc-recreate", false)
		pc := cl.profilerClient(t, ns)
		first := newDGDR(ns, "again", nil)
		_, err := cl.create(t, first)
		require.NoError(t, err)
		before := cl.jobsFor(t, ns, "again")
		require.Len(t, before, 1)
		require.NoError(t, claim(t.Context(), pc, &before[0], 10*time.Second))
		require.NoError(t, c.Delete(t.Context(), first))
		second := newDGDR(ns, "again", func(d *v1alpha1.DynamoGraphDeploymentRequest) { d.Spec.SearchStrategy = v1alpha1.SearchThorough })
		_, err = cl.create(t, second)
		require.NoError(t, err)
		cl.collected(t, ns)
		jobs := cl.jobsFor(t, ns, "again")
		require.Len(t, jobs, 1)
		assert.Equal(t, second.UID, v1alpha1.JobDGDRUID(&jobs[0]))
		assert.Equal(t, expand.ThoroughDeadlineSeconds, *jobs[0].Spec.ActiveDeadlineSeconds)

		// The first DGDR's profiler (a retry of its pod) finds another UID and leaves the new Job alone.
		require.ErrorIs(t, claim(t.Context(), pc, &before[0], 2*time.Second), profiler.ErrNotAdmitted)
		require.NoError(t, claim(t.Context(), pc, &jobs[0], 10*time.Second))
		cl.collected(t, ns)
		cl.assertOneJobEach(t, ns, true)
	})

	t.Run("a webhook replica killed mid-burst: one Job per stored DGDR, every other Job removed by its claim", func(t *testing.T) {
		ns := cl.namespace(t, "burst", false)
		pc := cl.profilerClient(t, ns)
		created, _, failed := cl.burst(t, ns, 200, burstInFlight, func() { f.kill(0) })
		t.Logf("%d created, %d refused while a replica died", len(created), failed)
		require.Greater(t, len(created), 100, "the surviving replica serves the rest")
		cl.collected(t, ns)

		// Every Job's profiler claims it, as its pod would on start.
		jobs := &batchv1.JobList{}
		require.NoError(t, c.List(t.Context(), jobs, client.InNamespace(ns)))
		var (
			wg       sync.WaitGroup
			slots    = make(chan struct{}, 20)
			released atomic.Int32
		)
		for i := range jobs.Items {
			job := &jobs.Items[i]
			wg.Go(func() {
				slots <- struct{}{}
				defer func() { <-slots }()
				err := claim(t.Context(), pc, job, 2*time.Second)
				if errors.Is(err, profiler.ErrNotAdmitted) {
					released.Add(1)
					return
				}
				assert.NoError(t, err, "claiming %s", job.Name)
			})
		}
		wg.Wait()
		t.Logf("%d Jobs, %d of them made for a create that was not stored and deleted by their claim", len(jobs.Items), released.Load())
		cl.collected(t, ns)
		cl.assertOneJobEach(t, ns, true)
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
	created, e2e, failed := cl.burst(t, ns, 200, *benchInFlight, nil)
	wall := time.Since(start)
	hook := rec.snapshot()
	fmt.Printf("bench-admission: %d DGDRs created, %d in flight, in %v (%d webhook calls, %d creates failed)\n",
		len(created), *benchInFlight, wall.Round(time.Millisecond), len(hook), failed)
	fmt.Printf("  webhook handling  p50 %v  p99 %v  max %v\n", percentile(hook, 0.5).Round(10*time.Microsecond), percentile(hook, 0.99).Round(10*time.Microsecond), percentile(hook, 1).Round(10*time.Microsecond))
	fmt.Printf("  end-to-end create p50 %v  p99 %v  max %v\n", percentile(e2e, 0.5).Round(time.Millisecond), percentile(e2e, 0.99).Round(time.Millisecond), percentile(e2e, 1).Round(time.Millisecond))
	require.Zero(t, failed)
	cl.assertOneJobEach(t, ns, false)
}
