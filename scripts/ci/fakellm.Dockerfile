# CI only: cmd/fakellm (a scripted fake OpenAI server) in a tiny image, the
# model endpoint of the deployment checks (scripts/ci/docker-compose.ci.yml,
# deploy/k8s/overlays/ci). Listens on :8081.
ARG GO_IMAGE=golang:1.26

FROM ${GO_IMAGE} AS build
WORKDIR /src
ENV CGO_ENABLED=0
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -trimpath -ldflags "-s -w" -o /out/fakellm ./cmd/fakellm

FROM scratch
COPY --from=build /out/fakellm /fakellm
USER 10001:10001
EXPOSE 8081
ENTRYPOINT ["/fakellm", "--addr", ":8081"]
