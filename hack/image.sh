#!/usr/bin/env bash
# Builds the dgdr server image (Dockerfile) with the first container engine that works here:
# docker (when its daemon answers), podman, or buildah. Usage: hack/image.sh IMAGE[:TAG] [build flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -lt 1 ]]; then
	echo "usage: hack/image.sh IMAGE[:TAG] [build flags...]" >&2
	exit 2
fi
image=$1
shift
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
	exec docker build -f Dockerfile -t "$image" "$@" .
elif command -v podman >/dev/null; then
	exec podman build -f Dockerfile -t "$image" "$@" .
elif command -v buildah >/dev/null; then
	exec buildah build -f Dockerfile -t "$image" "$@" .
fi
if command -v docker >/dev/null; then
	echo "error: docker is installed but its daemon does not answer (docker info failed), and neither podman nor buildah is installed" >&2
else
	echo "error: no container engine: none of docker, podman or buildah is installed" >&2
fi
echo "hint: start the Docker daemon or install podman/buildah, or build the same binaries without an image: make build" >&2
exit 1
