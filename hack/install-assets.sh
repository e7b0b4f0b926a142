#!/usr/bin/env bash
# install-assets.sh — build the control plane the tests run against, from source, with nothing but `go`.
#
#   usage: hack/install-assets.sh [DEST]            DEST defaults to $HOME/.cache/envtest-assets
#
# Builds kube-apiserver, kube-controller-manager, kubectl (k8s.io/kubernetes $K8S_VERSION) and etcd (the
# go.etcd.io/etcd/server/v3 version that k8s.io/kubernetes pins) from the Go module proxy into
# DEST/<version>/, and points DEST/<binary> at them. internal/testenv finds them there (or through
# KUBEBUILDER_ASSETS=DEST). Prebuilt binaries (setup-envtest's bucket) are not reachable on our machines.
#
#   K8S_VERSION=v1.35.4   the k8s.io/kubernetes tag; its staging modules are used at v0.<minor>.<patch>
#   WITH_NODE=1           also build kube-scheduler, kubelet and kube-proxy (the single node of make e2e;
#                         hack/install-node.sh adds containerd, runc and the CNI plugins)
#
# Each binary gets a stamp (DEST/<version>/.<binary>.stamp) once it is built and its --version checked,
# so a re-run with everything stamped only re-points the links (well under a second). A binary already
# in DEST/<version>/ without a stamp (put there by an older installer) is adopted when its --version is
# right; only what is missing is built, and Go's build cache makes that incremental.
# Cold: about 6 minutes on 2 cores and 3.5 GiB of Go caches; stdout is only `export KUBEBUILDER_ASSETS=DEST`.
set -Eeuo pipefail

K8S_VERSION="${K8S_VERSION:-v1.35.4}"
WITH_NODE="${WITH_NODE:-0}"
DEST="${1:-$HOME/.cache/envtest-assets}"

step="checking the settings"
build_dir=""
say() { echo "install-assets: $*" >&2; }
fail() { say "error: $*"; exit 1; }
# set -E runs the ERR trap in subshells too: report once, from the script itself.
trap 'rc=$?; [[ $BASHPID == "$$" ]] || exit $rc
	say "error: $step failed (exit $rc); the Go module proxy ($(go env GOPROXY 2>/dev/null)) must serve k8s.io/kubernetes@$K8S_VERSION and ~3.5 GiB of disk must be free for the Go caches"' ERR
trap '[[ -z $build_dir ]] || rm -rf "$build_dir"' EXIT

[[ $K8S_VERSION =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || fail "K8S_VERSION must look like v1.35.4, not '$K8S_VERSION'"
minor=${BASH_REMATCH[1]}
staging_version="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
[[ $WITH_NODE == 0 || $WITH_NODE == 1 ]] || fail "WITH_NODE must be 0 or 1, not '$WITH_NODE'"
command -v go >/dev/null || fail "no go on PATH (Go >= 1.25 builds $K8S_VERSION)"

# Our Go only: no toolchain download, no go.work, no caller GOFLAGS (e.g. -mod=vendor) in the build module.
export GOTOOLCHAIN=local GOWORK=off GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0

# binary name -> Go package
declare -A pkg=(
	[kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
	[kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
	[kubectl]=k8s.io/kubernetes/cmd/kubectl
	[etcd]=go.etcd.io/etcd/server/v3
	[kube-scheduler]=k8s.io/kubernetes/cmd/kube-scheduler
	[kubelet]=k8s.io/kubernetes/cmd/kubelet
	[kube-proxy]=k8s.io/kubernetes/cmd/kube-proxy
)
want=(kube-apiserver etcd kubectl kube-controller-manager)
[[ $WITH_NODE == 0 ]] || want+=(kube-scheduler kubelet kube-proxy)

mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
vdir="$DEST/$K8S_VERSION"
platform="$(go env GOOS)/$(go env GOARCH)"
mkdir -p "$vdir"

# One installer per DEST at a time (parallel go test runs, two checkouts on one machine).
exec 9>"$DEST/.install.lock"
command -v flock >/dev/null && flock 9

stamp_of() { echo "k8s=$K8S_VERSION platform=$platform binary=$1"; }
stamped() { [[ -x $vdir/$1 && -f $vdir/.$1.stamp && $(<"$vdir/.$1.stamp") == "$(stamp_of "$1")" ]]; }
link() {
	local b
	for b in "${want[@]}"; do ln -sfn "$K8S_VERSION/$b" "$DEST/$b"; done
	echo "export KUBEBUILDER_ASSETS=$DEST"
}

missing=()
for b in "${want[@]}"; do stamped "$b" || missing+=("$b"); done
if ((${#missing[@]} == 0)); then
	say "cached: ${want[*]} $K8S_VERSION in $vdir"
	link
	exit 0
fi

# The expected --version line of each binary; etcd's comes from the version kubernetes pins.
step="reading k8s.io/kubernetes@$K8S_VERSION's go.mod from the module proxy"
build_dir=$(mktemp -d "${TMPDIR:-/tmp}/install-assets.XXXXXX")
info=$(cd "$build_dir" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION") ||
	fail "$step: $(sed -n 's/^\t"Error": "\(.*\)"$/\1/p' <<<"$info")"
k8s_gomod=$(sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p' <<<"$info")
[[ -f $k8s_gomod ]] || fail "$step: no go.mod came back"
need_go=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$k8s_gomod")
have_go=$(go env GOVERSION); have_go=${have_go#go}
[[ $(printf '%s\n%s\n' "$need_go" "$have_go" | sort -V | head -n1) == "$need_go" ]] ||
	fail "k8s.io/kubernetes@$K8S_VERSION needs Go >= $need_go; this is Go $have_go (GOTOOLCHAIN=local: no download)"
etcd_version=$(awk '$1 == "go.etcd.io/etcd/server/v3" {print $2; exit}' "$k8s_gomod")
[[ -n $etcd_version ]] || fail "k8s.io/kubernetes@$K8S_VERSION's go.mod pins no go.etcd.io/etcd/server/v3"
reports() {
	case $1 in
	etcd) "$vdir/etcd" --version 2>/dev/null | grep -qx "etcd Version: ${etcd_version#v}" ;;
	kubectl) "$vdir/kubectl" version --client 2>/dev/null | grep -qx "Client Version: $K8S_VERSION" ;;
	*) [[ $("$vdir/$1" --version 2>/dev/null) == "Kubernetes $K8S_VERSION" ]] ;;
	esac
}

build=()
for b in "${missing[@]}"; do
	if [[ -x $vdir/$b ]] && reports "$b"; then
		say "adopting $vdir/$b (its --version is right)"
		stamp_of "$b" >"$vdir/.$b.stamp"
	else
		build+=("$b")
	fi
done

if ((${#build[@]} > 0)); then
	# k8s.io/kubernetes replaces its staging modules with ./staging/..., which a dependent module cannot
	# see, so a throwaway module requires it and points each staging module at its published version.
	step="writing the build module"
	{
		printf 'module installassets\n\ngo %s\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$need_go" "$K8S_VERSION"
		awk -v v="$staging_version" '/^replace \(/ {on = 1; next} on && /^\)/ {exit}
			on && $2 == "=>" && $3 ~ /^\.\/staging\// {printf "\t%s => %s %s\n", $1, $1, v}' "$k8s_gomod"
		printf ')\n'
	} >"$build_dir/go.mod"
	grep -q ' => ' "$build_dir/go.mod" || fail "no staging replace lines in k8s.io/kubernetes@$K8S_VERSION's go.mod"
	{
		printf '//go:build tools\n\npackage tools\n\nimport (\n'
		for b in "${build[@]}"; do printf '\t_ "%s"\n' "${pkg[$b]}"; done
		printf ')\n'
	} >"$build_dir/tools.go"

	step="go mod tidy in $build_dir"
	(cd "$build_dir" && go mod tidy)
	got=$(cd "$build_dir" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
	[[ $got == "$etcd_version" ]] || fail "the build module selected etcd $got, kubernetes pins $etcd_version"

	# Without these the binaries call themselves v0.0.0-master and clients warn about version skew.
	date=$(cd "$build_dir" && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
	ldflags="-s -w"
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=$date"
	done

	step="go build ${build[*]}"
	say "building ${build[*]} ($K8S_VERSION, etcd $etcd_version): ~6 min on 2 cores cold, ~1-2 min with a warm build cache"
	start=$SECONDS
	pkgs=()
	for b in "${build[@]}"; do pkgs+=("${pkg[$b]}"); done
	# One go build for all: the packages compile and link in parallel.
	(cd "$build_dir" && go build -trimpath -ldflags "$ldflags" -o out/ "${pkgs[@]}")
	# go names the etcd binary after its package path without the major version: server.
	[[ ! -f $build_dir/out/server ]] || mv "$build_dir/out/server" "$build_dir/out/etcd"
	say "built in $((SECONDS - start))s"

	step="installing into $vdir"
	for b in "${build[@]}"; do
		mv -f "$build_dir/out/$b" "$vdir/$b"
		reports "$b" || fail "$vdir/$b does not report version $K8S_VERSION (etcd $etcd_version)"
		stamp_of "$b" >"$vdir/.$b.stamp"
	done
fi
say "ready: ${want[*]} in $vdir"
link
