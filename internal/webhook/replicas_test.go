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
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/dgdr-dev/dgdr/internal/lifecycle"
	"github.com/dgdr-dev/dgdr/internal/profiler"
	"github.com/dgdr-dev/dgdr/internal/testenv"
	"github.com/dgdr-dev/dgdr/pkg/apis/nvidia/v1alpha1"
	"github.com/dgdr-dev/dgdr/pkg/expand"
)

// burstInFlight is how many creates TestGarbageCollection's burst keeps in flight.
const burstInFlight = 20

// testClaimWait is the replicas' ClaimWait: how long a refused create's Job lives here (2m in a cluster).
const testClaimWait = 10 * time.Second

var (
	benchAdmission = flag.Bool("bench-admission", false, "run TestBenchAdmission: 200 concurrent DGDR creates, printing latencies (make bench-admission)")
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

// take returns what was recorded and starts afresh.
func (l *latencies) take() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.d
	l.d = nil
	return d
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

// timedServer times every admission request its handlers serve, per path, and how much of that they spent
// waiting for the API server (the handler's client is wrapped by timedClient).
type timedServer struct {
	webhook.Server
	paths map[string]*pathTimes
}

type pathTimes struct {
	rec, api, own latencies // the whole handling, the API calls in it, the rest
}

func newTimedServer() *timedServer {
	return &timedServer{paths: map[string]*pathTimes{MutatePath: {}, ValidatePath: {}}}
}

// apiWaitKey carries a request's *atomic.Int64 of nanoseconds spent in API calls.
type apiWaitKey struct{}

func (s timedServer) Register(path string, h http.Handler) {
	times := s.paths[path]
	s.Server.Register(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var wait atomic.Int64
		start := time.Now()
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), apiWaitKey{}, &wait)))
		took, waited := time.Since(start), time.Duration(wait.Load())
		times.rec.add(took)
		times.api.add(waited)
		times.own.add(took - waited)
	}))
}

// timedClient adds the time of each call c makes to the request's apiWaitKey counter.
func timedClient(c client.WithWatch) client.Client {
	timed := func(ctx context.Context, call func() error) error {
		start := time.Now()
		err := call()
		if wait, ok := ctx.Value(apiWaitKey{}).(*atomic.Int64); ok {
			wait.Add(int64(time.Since(start)))
		}
		return err
	}
	return interceptor.NewClient(c, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, k client.ObjectKey, o client.Object, opts ...client.GetOption) error {
			return timed(ctx, func() error { return c.Get(ctx, k, o, opts...) })
		},
		List: func(ctx context.Context, c client.WithWatch, o client.ObjectList, opts ...client.ListOption) error {
			return timed(ctx, func() error { return c.List(ctx, o, opts...) })
		},
		Create: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.CreateOption) error {
			return timed(ctx, func() error { return c.Create(ctx, o, opts...) })
		},
		Delete: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.DeleteOption) error {
			return timed(ctx, func() error { return c.Delete(ctx, o, opts...) })
		},
	})
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
func startReplicated(t *testing.T, gc bool) (*cluster, *front, *timedServer) {
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
	timing := newTimedServer()
	for range 2 {
		asWebhook := rest.CopyConfig(cl.env.Config)
		asWebhook.Impersonate = webhookUser
		asWebhook.QPS, asWebhook.Burst = ClientQPS, ClientBurst // as Run sets them
		c, err := client.NewWithWatch(asWebhook, client.Options{Scheme: lifecycle.Scheme()})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		// Background: a killed replica's claims stop with it, as a crashed pod's would.
		h := &Handler{Client: timedClient(c), DefaultImage: DefaultImage, ProfilerImage: testProfilerImage, Background: ctx, ClaimWait: testClaimWait}
		if cl.handler == nil {
			cl.handler = h
		}
		port := freePort(t)
		srv := webhook.NewServer(webhook.Options{Host: wio.LocalServingHost, Port: port, CertDir: wio.LocalServingCertDir})
		Register(timedServer{Server: srv, paths: timing.paths}, h)
		go func() { _ = srv.Start(ctx) }()
		require.Eventually(t, func() bool { return srv.StartedChecker()(nil) == nil }, 20*time.Second, 50*time.Millisecond)
		f.replicas = append(f.replicas, &replica{addr: net.JoinHostPort(wio.LocalServingHost, strconv.Itoa(port)), alive: true, cancel: cancel, conns: map[net.Conn]struct{}{}})
	}
	go f.serve()
	return cl, f, timing
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

	// owned waits until every Job of ns is owned by a stored DGDR and none is left for a create that was
	// not stored: the webhook's claims have settled them.
	owned := func(t *testing.T, ns string) {
		t.Helper()
		require.Eventually(t, func() bool {
			jobs := &batchv1.JobList{}
			require.NoError(t, c.List(t.Context(), jobs, client.InNamespace(ns)))
			for _, j := range jobs.Items {
				if metav1.GetControllerOf(&j) == nil {
					return false
				}
			}
			return true
		}, testClaimWait+30*time.Second, 200*time.Millisecond, "the webhook's claims settle every Job")
		cl.collected(t, ns)
		cl.assertOneJobEach(t, ns, true)
	}

	t.Run("a DGDR refused after the webhook: its Job is deleted, and the name can be created again at once", func(t *testing.T) {
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
		left := cl.jobsFor(t, ns, "refused")
		require.Len(t, left, 1, "the webhook created the Job before the quota refused the DGDR")

		// The same name again, fixed, while the refused create's Job still exists: admitted at once, with
		// its own Job built from its own spec.
		require.NoError(t, c.Delete(t.Context(), q))
		d := newDGDR(ns, "refused", func(d *v1alpha1.DynamoGraphDeploymentRequest) { d.Spec.SearchStrategy = v1alpha1.SearchThorough })
		require.Eventually(t, func() bool { _, err = cl.create(t, d); return err == nil }, 30*time.Second, 200*time.Millisecond, "%v", err)
		mine := &batchv1.Job{}
		require.NoError(t, c.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: expand.ProfilingJobName(d.Name, d.UID)}, mine))
		assert.NotEqual(t, left[0].Name, mine.Name)
		assert.Equal(t, expand.ThoroughDeadlineSeconds, *mine.Spec.ActiveDeadlineSeconds, "built from the new spec")

		// The webhook deletes the refused create's Job even though its pod never starts (none does here).
		require.Eventually(t, func() bool { return len(cl.jobsFor(t, ns, "refused")) == 1 }, testClaimWait+30*time.Second, 200*time.Millisecond,
			"the refused create's Job is deleted by the webhook's claim")
		// Its profiler, had its pod started, would find another UID and leave the new Job alone.
		require.ErrorIs(t, claim(t.Context(), pc, &left[0], 2*time.Second), profiler.ErrNotAdmitted)
		owned(t, ns)
	})

	testAdaptCronJob(t, cl)

	t.Run("a stored DGDR's Job survives the collector, is claimed at once, and goes with the DGDR even if its pod never ran", func(t *testing.T) {
		ns := cl.namespace(t, "gc-kept", false)
		d := newDGDR(ns, "kept", nil)
		_, err := cl.create(t, d)
		require.NoError(t, err)
		owned(t, ns)
		// The collector has had its chance: it caught up with a probe created after the Job, and a few
		// seconds more.
		time.Sleep(3 * time.Second)
		jobs := cl.jobsFor(t, ns, "kept")
		require.Len(t, jobs, 1, "the collector left the Job alone")
		assert.Equal(t, d.UID, v1alpha1.JobDGDRUID(&jobs[0]))

		require.NoError(t, c.Delete(t.Context(), d))
		require.Eventually(t, func() bool { return len(cl.jobsFor(t, ns, "kept")) == 0 }, 60*time.Second, 200*time.Millisecond,
			"the collector deletes the Job of the deleted DGDR")
	})

	t.Run("creates of one name in flight at once: the stored one has its Job, the others' are deleted", func(t *testing.T) {
		ns := cl.namespace(t, "same-name", false)
		pc := cl.profilerClient(t, ns)
		c2, err := client.New(cl.env.Config, client.Options{Scheme: cl.env.Scheme})
		require.NoError(t, err)
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			stored = map[string]types.UID{}
		)
		for n := range 10 {
			name := fmt.Sprintf("race-%d", n)
			for range 5 {
				wg.Go(func() {
					d := newDGDR(ns, name, nil)
					if err := c2.Create(t.Context(), d); err == nil {
						mu.Lock()
						stored[name] = d.UID
						mu.Unlock()
					} else {
						assert.True(t, apierrors.IsAlreadyExists(err), "%v", err)
					}
				})
			}
		}
		wg.Wait()
		require.Len(t, stored, 10, "one create of each name is stored")
		owned(t, ns)
		// A profiler of a create that lost (its pod started before the webhook deleted its Job) changes nothing.
		for name, uid := range stored {
			job := &batchv1.Job{}
			require.NoError(t, c.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: expand.ProfilingJobName(name, uid)}, job))
			require.NoError(t, claim(t.Context(), pc, job, 10*time.Second))
		}
		cl.assertOneJobEach(t, ns, true)
	})

	t.Run("a webhook replica killed mid-burst: one Job per stored DGDR, every other Job removed by a claim", func(t *testing.T) {
		ns := cl.namespace(t, "burst", false)
		pc := cl.profilerClient(t, ns)
		created, _, failed := cl.burst(t, ns, 200, burstInFlight, func() { f.kill(0) })
		t.Logf("%d created, %d refused while a replica died", len(created), failed)
		require.Greater(t, len(created), 100, "the surviving replica serves the rest")
		cl.collected(t, ns)

		// The killed replica's claims stopped with it: every Job's profiler claims it, as its pod would on start.
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
		owned(t, ns)
		for name, uid := range created {
			d := &v1alpha1.DynamoGraphDeploymentRequest{}
			require.NoError(t, c.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, d))
			assert.Equal(t, uid, d.UID)
		}
	})
}

// TestBenchAdmission is `make bench-admission`: 200 DGDR creates through the real API server and two webhook
// replicas, 1, 20 and all 200 in flight at once, printing the webhook's handling time (split into the time
// its API calls took and the rest) and the end-to-end create latency. Figures only; nothing is asserted
// about time.
func TestBenchAdmission(t *testing.T) {
	if !*benchAdmission {
		t.Skip("a measurement: run with -bench-admission (make bench-admission)")
	}
	cl, _, timing := startReplicated(t, false)
	// A cluster users profile on: Dynamo installed (testenv's default), a GPU node, the profiler ServiceAccount.
	require.NoError(t, cl.env.Client.Create(t.Context(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "gpu-0", Labels: map[string]string{LabelGPUPresent: "true"}}}))
	ns := cl.namespace(t, "bench", false)
	cl.burst(t, ns, 20, 20, nil) // warm up connections and caches
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }
	pair := func(ds []time.Duration) string { return ms(percentile(ds, 0.5)) + " / " + ms(percentile(ds, 0.99)) }
	fmt.Println("bench-admission: 200 DGDR creates per burst, two webhook replicas; times in ms, p50 / p99")
	fmt.Printf("%-9s %-8s %-9s %-16s %-16s %-16s %-16s\n", "in flight", "wall", "webhook", "handling", "API calls", "the rest", "end-to-end")
	for _, inFlight := range []int{1, 20, 200} {
		for _, p := range timing.paths {
			p.rec.take()
			p.api.take()
			p.own.take()
		}
		ns := cl.namespace(t, fmt.Sprintf("bench-%d", inFlight), false)
		start := time.Now()
		created, e2e, failed := cl.burst(t, ns, 200, inFlight, nil)
		wall := time.Since(start)
		require.Zero(t, failed)
		require.Len(t, created, 200)
		for i, path := range []string{MutatePath, ValidatePath} {
			p := timing.paths[path]
			first, e2eCol := []string{strconv.Itoa(inFlight), ms(wall)}, pair(e2e)
			if i > 0 {
				first, e2eCol = []string{"", ""}, ""
			}
			fmt.Printf("%-9s %-8s %-9s %-16s %-16s %-16s %-16s\n", first[0], first[1], strings.SplitN(path[1:], "-", 2)[0],
				pair(p.rec.take()), pair(p.api.take()), pair(p.own.take()), e2eCol)
		}
		cl.assertOneJobEach(t, ns, false)
	}
}
