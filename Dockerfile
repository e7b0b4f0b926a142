# syntax=docker/dockerfile:1
# The dgdr server image, ghcr.io/dgdr-dev/dgdr: the admission webhook (the entrypoint) and
# dgdr-profiler (the profiling Job's command). Build it with `make image`, which passes the Makefile's
# LDFLAGS so `version` reports the release. Both binaries are static (CGO off), so the runtime base is
# distroless/static: no shell, no libc, user 65532, nothing written to the root filesystem (it can be
# mounted read-only). test/ship/image checks the binaries and the names the manifests use.

# The builder runs on the build machine's platform and cross-compiles for the target's.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS TARGETARCH
ARG LDFLAGS="-s -w"
ENV CGO_ENABLED=0
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags "$LDFLAGS" -o /out/dgdr-webhook ./cmd/webhook
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags "$LDFLAGS" -o /out/dgdr-profiler ./cmd/dgdr-profiler

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dgdr-webhook /usr/local/bin/dgdr-webhook
COPY --from=build /out/dgdr-profiler /usr/local/bin/dgdr-profiler
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/dgdr-webhook"]
