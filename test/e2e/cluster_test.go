package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dgdr-dev/dgdr/internal/testenv"
)

// The node's network: the node (kubelet, containerd, kube-proxy and the pods behind its bridge) lives in
// network namespace netnsName, joined to this host by one veth pair. The API server listens on the host
// end only; pods reach it through the kubernetes Service (kube-proxy in the node), and it reaches the
// webhook's pods by their IPs (--enable-aggregator-routing) over the veth. Nothing listens elsewhere.
const (
	netnsName   = "dgdr-e2e"
	vethHost    = "dgdr-e2e-h"
	vethNode    = "dgdr-e2e-n"
	hostIP      = "10.213.0.1"
	nodeIP      = "10.213.0.2"
	linkCIDR    = "/30"
	podCIDR     = "10.214.0.0/24"
	serviceCIDR = "10.215.0.0/24"
	kubeSvcIP   = "10.215.0.1"
	nodeName    = "dgdr-e2e-node"
	apiPort     = 6443

	// stateDir holds sockets and runtime state (containerd's, runc's, the pods' network namespaces);
	// dataDir everything else. Fixed paths, so a run killed before its cleanup is swept by the next.
	stateDir = "/run/dgdr-e2e"
	dataDir  = "/var/tmp/dgdr-e2e"
)

// cluster is a running single-node cluster.
type cluster struct {
	dir        string
	kubeconfig string // system:masters
	config     *rest.Config
	client     client.Client
	clientset  *kubernetes.Clientset
	caPEM      []byte
	ca         *ca
	procs      map[string]*proc
	ctrAddress string
	dns        *serviceDNS
	timings    []timing
}

type timing struct {
	what string
	d    time.Duration
}

func (c *cluster) timed(what string, since time.Time) {
	c.timings = append(c.timings, timing{what, time.Since(since)})
}

// startCluster brings the cluster up, or fails the test saying which part did not start and with its
// log; teardown runs on every path.
func startCluster(t *testing.T, assets string) *cluster {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("make e2e runs as root: it makes a network namespace, mounts and cgroups for the node")
	}
	if err := sweep(t.Logf); err != nil {
		t.Fatalf("removing what an earlier run left: %v", err)
	}
	c := &cluster{dir: dataDir, procs: map[string]*proc{}, ctrAddress: filepath.Join(stateDir, "containerd", "containerd.sock")}
	t.Cleanup(func() { c.teardown(t) })
	for _, d := range []string{c.dir, stateDir, filepath.Join(c.dir, "pki"), filepath.Join(c.dir, "logs")} {
		must(t, os.MkdirAll(d, 0o755), "making %s", d)
	}

	began := time.Now()
	c.network(t)
	c.pki(t)
	c.controlPlane(t, assets)
	var err error
	c.dns, err = startServiceDNS(c.client, hostIP)
	must(t, err, "serving the cluster DNS stand-in on %s:53", hostIP)
	c.timed("control plane up", began)
	began = time.Now()
	c.node(t, assets)
	c.timed("node Ready", began)
	return c
}

func must(t testing.TB, err error, what string, args ...any) { testenv.Must(t, err, what, args...) }

// network makes the node's namespace and the veth pair, with a route from the host to the pods through
// the node. The node has no default route: nothing in it reaches beyond the host end of the veth (an
// image pull fails at once instead of trying a registry).
func (c *cluster) network(t *testing.T) {
	steps := [][]string{
		{"ip", "netns", "add", netnsName},
		{"ip", "link", "add", vethHost, "type", "veth", "peer", "name", vethNode},
		{"ip", "link", "set", vethNode, "netns", netnsName},
		{"ip", "addr", "add", hostIP + linkCIDR, "dev", vethHost},
		{"ip", "link", "set", vethHost, "up"},
		{"ip", "netns", "exec", netnsName, "ip", "addr", "add", nodeIP + linkCIDR, "dev", vethNode},
		{"ip", "netns", "exec", netnsName, "ip", "link", "set", vethNode, "up"},
		{"ip", "netns", "exec", netnsName, "ip", "link", "set", "lo", "up"},
		{"ip", "netns", "exec", netnsName, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		{"ip", "route", "add", podCIDR, "via", nodeIP, "dev", vethHost},
	}
	for _, s := range steps {
		_, err := run(s...)
		must(t, err, "making the node's network")
	}
}

func (c *cluster) pki(t *testing.T) {
	var err error
	c.ca, err = newCA("dgdr-e2e-ca")
	must(t, err, "making the cluster CA")
	c.caPEM = c.ca.certPEM
	must(t, os.WriteFile(c.path("pki/ca.crt"), c.caPEM, 0o644), "writing the CA")
}

func (c *cluster) path(p string) string { return filepath.Join(c.dir, p) }

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err, "finding a free port")
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (c *cluster) start(t *testing.T, name, netns string, argv ...string) *proc {
	p, err := start(c.dir, name, netns, argv...)
	must(t, err, "starting %s", name)
	c.procs[name] = p
	return p
}

// waitFor polls ok until it returns true, failing the test after timeout with what was awaited, the last
// error and the log of the processes named.
func (c *cluster) waitFor(t *testing.T, what string, timeout time.Duration, ok func() (bool, error), logs ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		done, err := ok()
		if done {
			return
		}
		if err != nil {
			last = err
		}
		for _, n := range logs {
			if p := c.procs[n]; p != nil {
				if ended, perr := p.exited(); ended {
					t.Fatalf("%s: %s exited (%v) while waiting:\n%s", what, n, perr, p.tail(40))
				}
			}
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, n := range logs {
				if p := c.procs[n]; p != nil {
					fmt.Fprintf(&b, "\n--- %s (last lines of %s)\n%s", n, p.log, p.tail(40))
				}
			}
			t.Fatalf("%s: not within %s (last error: %v)%s", what, timeout, last, b.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (c *cluster) controlPlane(t *testing.T, assets string) {
	bin := func(n string) string { return filepath.Join(assets, n) }
	pki := c.path("pki")
	etcdPort, peerPort := freePort(t), freePort(t)
	c.start(t, "etcd", "", bin("etcd"),
		"--data-dir="+c.path("etcd"), "--name=e2e",
		"--listen-client-urls=http://127.0.0.1:"+strconv.Itoa(etcdPort), "--advertise-client-urls=http://127.0.0.1:"+strconv.Itoa(etcdPort),
		"--listen-peer-urls=http://127.0.0.1:"+strconv.Itoa(peerPort), "--initial-advertise-peer-urls=http://127.0.0.1:"+strconv.Itoa(peerPort),
		"--initial-cluster=e2e=http://127.0.0.1:"+strconv.Itoa(peerPort), "--unsafe-no-fsync", "--log-level=warn")

	serving, servingKey, err := c.ca.writeIssued(pki, "apiserver", "kube-apiserver", nil,
		[]string{hostIP, kubeSvcIP, "127.0.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"})
	must(t, err, "issuing the API server's certificate")
	kcrt, kkey, err := c.ca.writeIssued(pki, "apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}, nil)
	must(t, err, "issuing the API server's kubelet client certificate")
	saKey, saPub, err := writeServiceAccountKey(pki)
	must(t, err, "writing the service-account key")
	c.start(t, "kube-apiserver", "", bin("kube-apiserver"),
		"--etcd-servers=http://127.0.0.1:"+strconv.Itoa(etcdPort),
		"--bind-address="+hostIP, "--advertise-address="+hostIP, "--secure-port="+strconv.Itoa(apiPort),
		"--tls-cert-file="+serving, "--tls-private-key-file="+servingKey, "--client-ca-file="+c.path("pki/ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+saPub, "--service-account-signing-key-file="+saKey,
		"--service-cluster-ip-range="+serviceCIDR,
		"--authorization-mode=Node,RBAC",
		// The admission plugins of a real cluster besides the defaults (OwnerReferencesPermissionEnforcement as
		// on OpenShift).
		"--enable-admission-plugins=NodeRestriction,PodSecurity,ResourceQuota,OwnerReferencesPermissionEnforcement",
		"--kubelet-client-certificate="+kcrt, "--kubelet-client-key="+kkey,
		// The node's name resolves nowhere: reach the kubelet (logs, exec) at its InternalIP.
		"--kubelet-preferred-address-types=InternalIP",
		// Webhooks and aggregated APIs are called at their endpoints' pod IPs: the host has no kube-proxy.
		"--enable-aggregator-routing=true",
		"--cert-dir="+c.path("pki/apiserver-generated"), "--profiling=false", "--v=1")

	crt, key, err := c.ca.writeIssued(pki, "admin", "dgdr-e2e-admin", []string{"system:masters"}, nil)
	must(t, err, "issuing the admin certificate")
	c.kubeconfig = c.path("admin.kubeconfig")
	server := fmt.Sprintf("https://%s:%d", hostIP, apiPort)
	must(t, kubeconfig(c.kubeconfig, server, c.path("pki/ca.crt"), crt, key), "writing the admin kubeconfig")
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	must(t, err, "reading the admin kubeconfig")
	cfg.QPS, cfg.Burst = 100, 200
	c.config = cfg
	c.clientset, err = kubernetes.NewForConfig(cfg)
	must(t, err, "making a clientset")
	c.waitFor(t, "the API server ready", 90*time.Second, func() (bool, error) {
		body, err := c.clientset.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(context.Background())
		return err == nil && string(body) == "ok", err
	}, "etcd", "kube-apiserver")
	c.client, err = client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	must(t, err, "making a client")

	c.start(t, "kube-controller-manager", "", bin("kube-controller-manager"),
		"--kubeconfig="+c.kubeconfig, "--leader-elect=false", "--secure-port=0",
		"--use-service-account-credentials=true", "--root-ca-file="+c.path("pki/ca.crt"),
		"--service-account-private-key-file="+saKey, "--v=1")
	c.start(t, "kube-scheduler", "", bin("kube-scheduler"),
		"--kubeconfig="+c.kubeconfig, "--leader-elect=false", "--secure-port=0", "--v=1")
	// The root CA ConfigMap every namespace gets (kube-root-ca.crt) says the controller manager is running.
	c.waitFor(t, "kube-controller-manager publishing kube-root-ca.crt", 90*time.Second, func() (bool, error) {
		_, err := c.clientset.CoreV1().ConfigMaps("default").Get(context.Background(), "kube-root-ca.crt", metav1.GetOptions{})
		return err == nil, err
	}, "kube-controller-manager")
}

// node starts containerd, imports the images, and starts kube-proxy and the kubelet in the node's
// namespace, then waits for the node to be Ready.
func (c *cluster) node(t *testing.T, assets string) {
	pki := c.path("pki")
	server := fmt.Sprintf("https://%s:%d", hostIP, apiPort)
	cni := c.path("cni/net.d")
	must(t, os.MkdirAll(cni, 0o755), "making the CNI config directory")
	must(t, os.WriteFile(filepath.Join(cni, "10-dgdr-e2e.conflist"), fmt.Appendf(nil, `{
  "cniVersion": "0.4.0",
  "name": "dgdr-e2e",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, podCIDR, c.path("cni/ipam")), 0o644), "writing the CNI config")

	// containerd: its own root, state and socket; the CRI sandbox is our pause image; runc (crun fails on
	// hybrid cgroups); restrict_oom_score_adj because the node has no CAP_SYS_RESOURCE (without it runc
	// fails writing oom_score_adj, reporting only "can't get final child's PID from pipe: EOF").
	must(t, os.WriteFile(c.path("containerd.toml"), fmt.Appendf(nil, `version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = %q
[plugins."io.containerd.internal.v1.opt"]
  path = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = %q
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
`, c.path("containerd"), filepath.Join(stateDir, "containerd"), c.ctrAddress, c.path("opt"), pauseImage,
		filepath.Join(stateDir, "runc"), cni), 0o644), "writing containerd's config")
	began := time.Now()
	c.start(t, "containerd", netnsName, "/usr/bin/containerd", "--config", c.path("containerd.toml"))
	c.waitFor(t, "containerd serving", 30*time.Second, func() (bool, error) {
		_, err := run("ctr", "--address", c.ctrAddress, "version")
		return err == nil, err
	}, "containerd")
	c.timed("containerd up", began)

	began = time.Now()
	for _, a := range imageArchives {
		_, err := run("ctr", "--address", c.ctrAddress, "-n", "k8s.io", "images", "import", "--no-unpack=false", a)
		must(t, err, "importing %s", a)
	}
	c.timed("images imported", began)

	// kube-proxy makes the Services work inside the node (the pods' way to the API server).
	pcrt, pkey, err := c.ca.writeIssued(pki, "kube-proxy", "system:kube-proxy", nil, nil)
	must(t, err, "issuing kube-proxy's certificate")
	must(t, kubeconfig(c.path("kube-proxy.kubeconfig"), server, c.path("pki/ca.crt"), pcrt, pkey), "writing kube-proxy's kubeconfig")
	must(t, os.WriteFile(c.path("kube-proxy.yaml"), fmt.Appendf(nil, `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %q
mode: iptables
hostnameOverride: %s
clusterCIDR: %s
iptables:
  masqueradeAll: true
conntrack:
  maxPerCore: 0
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
`, c.path("kube-proxy.kubeconfig"), nodeName, podCIDR), 0o644), "writing kube-proxy's config")
	c.start(t, "kube-proxy", netnsName, filepath.Join(assets, "kube-proxy"), "--config="+c.path("kube-proxy.yaml"), "--v=1")

	// The kubelet: the node's identity for NodeRestriction, client certificates from our CA accepted, the
	// API server's requests authorized by the API server; the settings this machine needs (cgroup v1
	// hybrid, no CAP_SYS_RESOURCE) are from issue 13.
	kcrt, kkey, err := c.ca.writeIssued(pki, "kubelet", "system:node:"+nodeName, []string{"system:nodes"}, nil)
	must(t, err, "issuing the kubelet's certificate")
	must(t, kubeconfig(c.path("kubelet.kubeconfig"), server, c.path("pki/ca.crt"), kcrt, kkey), "writing the kubelet's kubeconfig")
	must(t, os.WriteFile(c.path("kubelet.yaml"), fmt.Appendf(nil, `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
containerRuntimeEndpoint: unix://%s
address: %s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %q}
authorization:
  mode: Webhook
clusterDomain: cluster.local
clusterDNS: [%s]
podLogsDir: %q
failSwapOn: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "50Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
maxPods: 60
serializeImagePulls: false
`, c.ctrAddress, nodeIP, c.path("pki/ca.crt"), hostIP, c.path("pod-logs")), 0o644), "writing the kubelet's config")
	began = time.Now()
	c.start(t, "kubelet", netnsName, filepath.Join(assets, "kubelet"),
		"--config="+c.path("kubelet.yaml"), "--kubeconfig="+c.path("kubelet.kubeconfig"),
		"--root-dir="+c.path("kubelet"), "--cert-dir="+c.path("kubelet/pki"),
		"--hostname-override="+nodeName, "--node-ip="+nodeIP, "--v=1")
	c.waitFor(t, "node "+nodeName+" Ready", 120*time.Second, func() (bool, error) {
		n, err := c.clientset.CoreV1().Nodes().Get(context.Background(), nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				return cond.Status == corev1.ConditionTrue, fmt.Errorf("Ready=%s: %s", cond.Status, cond.Message)
			}
		}
		return false, nil
	}, "kubelet", "containerd", "kube-proxy")
	c.timed("kubelet to node Ready", began)
}

// teardown stops everything and removes what the run made; it logs the last lines of every log when the
// test failed.
func (c *cluster) teardown(t *testing.T) {
	if t.Failed() {
		for _, n := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "containerd", "kube-proxy", "kubelet"} {
			if p := c.procs[n]; p != nil {
				t.Logf("--- %s (last lines of %s)\n%s", n, p.log, p.tail(25))
			}
		}
	}
	began := time.Now()
	step := func(what string) {
		t.Logf("teardown: %-22s %s", what, time.Since(began).Round(time.Millisecond))
	}
	if p := c.procs["kubelet"]; p != nil {
		p.stop(20 * time.Second)
	}
	step("kubelet stopped")
	// Every container and sandbox, while containerd still runs: kill, then delete (the shims exit).
	if p := c.procs["containerd"]; p != nil {
		if done, _ := p.exited(); !done {
			c.removeContainers(t)
		}
	}
	step("containers removed")
	for _, n := range []string{"kube-proxy", "containerd", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"} {
		if p := c.procs[n]; p != nil {
			p.stop(15 * time.Second)
		}
	}
	step("processes stopped")
	if c.dns != nil {
		c.dns.close()
	}
	if err := sweep(t.Logf); err != nil {
		t.Errorf("teardown: %v", err)
	}
	step("swept")
}

func (c *cluster) removeContainers(t *testing.T) {
	ctr := func(args ...string) (string, error) {
		return run(append([]string{"ctr", "--address", c.ctrAddress, "-n", "k8s.io"}, args...)...)
	}
	out, err := ctr("tasks", "ls", "-q")
	if err != nil {
		t.Logf("teardown: listing tasks: %v", err)
	}
	for _, id := range strings.Fields(out) {
		_, _ = ctr("tasks", "kill", "-s", "SIGKILL", "--all", id)
	}
	// Kill is asynchronous: delete each task once it has stopped (its shim then exits).
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		out, _ := ctr("tasks", "ls")
		left := 0
		for _, line := range strings.Split(out, "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 3 {
				continue
			}
			if f[2] == "STOPPED" {
				_, _ = ctr("tasks", "delete", f[0])
			}
			left++
		}
		if left == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	out, _ = ctr("containers", "ls", "-q")
	if ids := strings.Fields(out); len(ids) > 0 {
		_, _ = ctr(append([]string{"containers", "delete"}, ids...)...)
	}
}

// sweep removes what a run leaves when it is killed before its cleanup, and what teardown's graceful
// stops missed: processes in the node's namespace or naming its state directory (containerd's shims),
// mounts under the state and data directories, the namespace (its veth goes with it) and the directories.
// It touches nothing else: every name it removes is this suite's.
func sweep(logf func(string, ...any)) error {
	var errs []string
	netnsPath := "/run/netns/" + netnsName
	for range 3 {
		pids := append(procsInNetns(netnsPath), procsMentioning(stateDir)...)
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if pids := append(procsInNetns(netnsPath), procsMentioning(stateDir)...); len(pids) > 0 {
		errs = append(errs, fmt.Sprintf("processes still running: %v", pids))
	}
	for _, d := range []string{stateDir, dataDir} {
		if err := unmountAll(d); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if _, err := os.Stat(netnsPath); err == nil {
		if _, err := run("ip", "netns", "del", netnsName); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if _, err := net.InterfaceByName(vethHost); err == nil {
		if _, err := run("ip", "link", "del", vethHost); err != nil {
			errs = append(errs, err.Error())
		}
	}
	for _, d := range []string{stateDir, dataDir} {
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, err.Error())
		}
	}
	// containerd's shims make their sockets' directory and leave it behind empty; removed only when empty.
	_ = os.Remove("/run/containerd/s")
	_ = os.Remove("/run/containerd")
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}
