#!/usr/bin/env bash
# install-node.sh — what `make e2e`'s single-node cluster needs beyond the control plane.
#
#   usage: hack/install-node.sh [DEST]            DEST defaults to $HOME/.cache/envtest-assets
#
# 1. kubelet, kube-scheduler and kube-proxy, built from the same k8s.io/kubernetes module as
#    kube-apiserver (hack/install-assets.sh with WITH_NODE=1; cached in DEST/<version>/ like the others).
# 2. Debian's containerd, runc, CNI plugins (bridge, host-local, loopback, portmap) and iptables (kube-proxy),
#    with apt-get, as root. Nothing is pulled from an image registry: test/e2e writes its images itself.
# Stdout is only `export KUBEBUILDER_ASSETS=DEST`; progress goes to stderr.
set -Eeuo pipefail

say() { echo "install-node: $*" >&2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

WITH_NODE=1 bash "$here/install-assets.sh" "$@"

# The Debian packages and a file each ships that the node uses.
declare -A probe=(
	[containerd]=/usr/bin/containerd
	[runc]=/usr/sbin/runc
	[containernetworking-plugins]=/usr/lib/cni/bridge
	[iptables]=/usr/sbin/iptables
)
missing=()
for p in containerd runc containernetworking-plugins iptables; do
	[[ -x ${probe[$p]} ]] || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
	say "cached: containerd runc containernetworking-plugins iptables"
	exit 0
fi
if [[ $(id -u) != 0 ]]; then
	say "error: the node needs the Debian packages ${missing[*]}: run 'sudo apt-get install -y ${missing[*]}' (make e2e runs as root: it makes network namespaces, mounts and cgroups)"
	exit 1
fi
command -v apt-get >/dev/null || { say "error: no apt-get: install ${missing[*]} (containerd 1.6+, runc, the CNI reference plugins in /usr/lib/cni) by other means"; exit 1; }
say "installing ${missing[*]} with apt-get"
apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >&2
say "ready: containerd runc containernetworking-plugins iptables"
