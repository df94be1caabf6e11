# Images of kvsync, one target per binary: kvsync-controller,
# kvsync-provider and fakevault. Each is a static binary on scratch with the
# CA bundle, running as 65532:65532, with no shell.
#
# `make docker-build` compiles the binaries on the host into bin/docker/ and
# builds the scratch targets, so no base image is pulled. Users with a
# registry can build from source instead with the *-from-source targets at
# the end of this file.

FROM scratch AS base
COPY bin/docker/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
USER 65532:65532

FROM base AS kvsync-controller
COPY bin/docker/kvsync-controller /kvsync-controller
ENTRYPOINT ["/kvsync-controller"]

FROM base AS kvsync-provider
COPY bin/docker/kvsync-provider /kvsync-provider
ENTRYPOINT ["/kvsync-provider"]

FROM base AS fakevault
COPY bin/docker/fakevault /fakevault
ENTRYPOINT ["/fakevault"]

# Building from source needs the golang image from a registry.
FROM golang:1.26 AS builder
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/ ./cmd/kvsync-controller ./cmd/kvsync-provider ./cmd/fakevault

FROM scratch AS kvsync-controller-from-source
COPY --from=builder /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=builder /out/kvsync-controller /kvsync-controller
USER 65532:65532
ENTRYPOINT ["/kvsync-controller"]
