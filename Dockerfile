# agentd's container image: the static agentd binary on scratch, with a static
# busybox so that the run_shell_command tool has /bin/sh and the basic
# utilities (see docs/deploy.md). Under 25 MB; runs as uid 10001.
#
#   docker build -t agentd:dev --build-arg VERSION=$(git describe --always --dirty) .
#
# Both base images are build arguments so that a build without an image
# registry can pass images it made itself (scripts/ci-docker.sh does):
# GO_IMAGE needs Go 1.26, a POSIX shell and /etc/ssl/certs/ca-certificates.crt;
# BUSYBOX_IMAGE needs a statically linked /bin/busybox.
ARG GO_IMAGE=golang:1.26
ARG BUSYBOX_IMAGE=busybox:1.37-musl

FROM ${BUSYBOX_IMAGE} AS busybox

FROM ${GO_IMAGE} AS build
WORKDIR /src
ENV CGO_ENABLED=0
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /rootfs/usr/local/bin/agentd ./cmd/agentd
COPY --from=busybox /bin/busybox /rootfs/bin/busybox
# The final stage cannot run anything: lay out its whole tree here.
RUN set -eu; \
    cd /rootfs; \
    for a in $(bin/busybox --list); do [ -e "bin/$a" ] || ln -s busybox "bin/$a"; done; \
    mkdir -p etc/ssl/certs etc/agentd data tmp; \
    chmod 1777 tmp; \
    cp /etc/ssl/certs/ca-certificates.crt etc/ssl/certs/; \
    printf 'root:x:0:0:root:/root:/sbin/nologin\nagentd:x:10001:10001:agentd:/tmp:/bin/sh\n' > etc/passwd; \
    printf 'root:x:0:\nagentd:x:10001:\n' > etc/group; \
    cp -R /src/AGENTAO.md /src/skills /src/.agentao etc/agentd/; \
    if [ -d /src/instructions ]; then cp -R /src/instructions etc/agentd/; fi; \
    chown 10001:10001 data; \
    /rootfs/usr/local/bin/agentd version

FROM scratch
COPY --from=build /rootfs/ /
ENV PATH=/usr/local/bin:/bin \
    HOME=/tmp \
    TMPDIR=/tmp \
    AGENTD_CONFIG_DIR=/etc/agentd \
    AGENTD_DATA=/data \
    AGENTD_ADDR=:8080
USER 10001:10001
WORKDIR /data
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/agentd", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/agentd"]
CMD ["serve"]
