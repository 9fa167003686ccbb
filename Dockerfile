# syntax=docker/dockerfile:1
# The p2pgrid container image: the static binary, run as a non-root user,
# its data (key, ledger, state) in the volume /var/lib/p2pgrid, its
# configuration at /etc/p2pgrid/gateway.yaml (mounted), where `p2pgrid
# gateway` looks without --config. Multi-arch with buildx (make image):
# the binary is cross-compiled on the build machine, the final image holds
# no shell and no libc. deploy/compose.yaml runs it as the operator's
# clearer; deploy/deploy_test.go checks the files this names exist.

FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
ARG TARGETOS TARGETARCH TARGETVARIANT
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# TARGETVARIANT is v6 or v7 for linux/arm, empty elsewhere.
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH GOARM=${TARGETVARIANT#v} \
    go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o /out/usr/bin/p2pgrid ./cmd/p2pgrid
# The user (uid 10001, no login) and its data directory, for the image
# below, which has no useradd.
RUN mkdir -p /out/etc /out/var/lib/p2pgrid /out/etc/p2pgrid && \
    echo 'p2pgrid:x:10001:10001:p2pgrid gateway:/var/lib/p2pgrid:/sbin/nologin' > /out/etc/passwd && \
    echo 'p2pgrid:x:10001:' > /out/etc/group

FROM scratch
# The system's CA certificates, for https:// InfluxDB and mqtts:// brokers
# whose configuration gives no ca_file.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/etc/passwd /out/etc/group /etc/
COPY --from=build /out/etc/p2pgrid /etc/p2pgrid
COPY --from=build --chown=10001:10001 /out/var/lib/p2pgrid /var/lib/p2pgrid
COPY --from=build /out/usr/bin/p2pgrid /usr/bin/p2pgrid
USER 10001:10001
VOLUME /var/lib/p2pgrid
WORKDIR /var/lib/p2pgrid
# Prometheus /metrics and /healthz, where the configuration's http listens.
EXPOSE 9410
ENTRYPOINT ["/usr/bin/p2pgrid"]
CMD ["gateway"]
