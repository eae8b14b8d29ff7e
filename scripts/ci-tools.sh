#!/usr/bin/env bash
# Installs and builds what the deployment checks (scripts/ci-docker.sh,
# scripts/ci-k8s.sh) need, on a machine that has only Go, gcc and a docker CLI:
#
#   Debian packages  docker.io (dockerd, containerd, runc), busybox-static,
#                    etcd-server, containernetworking-plugins
#   built once       docker compose v2, kube-apiserver, kube-controller-manager,
#                    kube-scheduler, kubelet, kube-proxy, kubectl, CoreDNS (the
#                    cluster DNS), kubeconform and the Kubernetes JSON schemas,
#                    from the Go module proxy, into
#                    ${AGENTD_CI_CACHE:-/var/cache/agentd-ci}/<component>-<version>/
#
# A component already in the cache is not rebuilt (a Kubernetes binary missing
# from an older cache is built alone). A build goes to a temporary
# directory first and is moved into place only when complete. Nothing is
# started. A failed install or build does not stop the script: it prints
# "UNAVAILABLE: <tool>: <reason>" and leaves the reason in
# $CI_CACHE/unavailable/<tool>, and the check that needs the tool then reports
# itself SKIPPED with that reason. Exit status 0 unless the script itself breaks.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/ci/lib.sh

mkdir -p "$CI_CACHE/unavailable" "$CI_CACHE/logs" || { echo "cannot create $CI_CACHE" >&2; exit 1; }
rm -rf "$CI_CACHE"/.build.* # left by an interrupted run

# quiet LOG CMD...: run CMD with its output in $CI_CACHE/logs/LOG; show the
# end of it if CMD fails.
quiet() {
	local logf=$CI_CACHE/logs/$1
	shift
	if "$@" >"$logf" 2>&1; then return 0; fi
	echo "--- $* failed; the end of $logf:"
	tail -n 30 "$logf"
	return 1
}

unavailable() {
	echo "UNAVAILABLE: $1: $2"
	echo "$2" >"$CI_CACHE/unavailable/$1"
}
available() { rm -f "$CI_CACHE/unavailable/$1"; }

# Build directories live inside the cache (same filesystem, so the final mv
# is atomic) and are removed on exit.
build_dirs=()
cleanup() { [ ${#build_dirs[@]} -eq 0 ] || rm -rf "${build_dirs[@]}"; }
trap cleanup EXIT
# put_in_place SRC DST: replace DST (a partial earlier result) by SRC.
put_in_place() { rm -rf "$2" && mv "$1" "$2"; }
# new_build_dir: set b to a fresh build directory.
new_build_dir() {
	b=$(mktemp -d "$CI_CACHE/.build.XXXXXX")
	build_dirs+=("$b")
}

phase "tools: Debian packages"
if apt_install docker.io containerd runc busybox-static iptables; then
	available docker
else
	unavailable docker "apt-get install docker.io containerd runc busybox-static failed"
fi
if apt_install etcd-server containernetworking-plugins; then
	available etcd
else
	unavailable etcd "apt-get install etcd-server containernetworking-plugins failed"
fi

# Tools below are built with the machine's Go; the Go build cache for the
# big Kubernetes build lives in the cache too, so that an interrupted build
# resumes, and is removed once every binary is in place (it is ~4 GB).
tools_gocache=$CI_CACHE/.gocache

phase "tools: docker compose $COMPOSE_VERSION"
if [ -x "$COMPOSE_DIR/docker-compose" ]; then
	log "cached: $COMPOSE_DIR"
	available compose
else
	# go install cannot build it (exclude directives): build it as the main
	# module of a copy of its source.
	new_build_dir
	if src=$(go_mod_dir "github.com/docker/compose/v2@$COMPOSE_VERSION") && [ -n "$src" ] &&
		cp -r "$src" "$b/src" && chmod -R u+w "$b/src" &&
		(cd "$b/src" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOCACHE=$tools_gocache quiet compose.log nice go build -trimpath \
			-ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" \
			-o "$b/out/docker-compose" ./cmd) &&
		put_in_place "$b/out" "$COMPOSE_DIR"; then
		log "built $COMPOSE_DIR/docker-compose"
		available compose
	else
		unavailable compose "building docker compose $COMPOSE_VERSION from the Go module proxy failed"
	fi
fi

phase "tools: kubeconform $KUBECONFORM_VERSION"
if [ -x "$KUBECONFORM_DIR/kubeconform" ]; then
	log "cached: $KUBECONFORM_DIR"
	available kubeconform
else
	new_build_dir
	if (cd / && CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOBIN="$b/out" GOCACHE=$tools_gocache quiet kubeconform.log nice go install -trimpath \
		-ldflags "-s -w" "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION") &&
		put_in_place "$b/out" "$KUBECONFORM_DIR"; then
		log "built $KUBECONFORM_DIR/kubeconform"
		available kubeconform
	else
		unavailable kubeconform "go install kubeconform@$KUBECONFORM_VERSION failed"
	fi
fi

phase "tools: Kubernetes $K8S_VERSION JSON schemas"
if [ -f "$SCHEMA_DIR/statefulset-apps-v1.json" ]; then
	log "cached: $SCHEMA_DIR"
	available schemas
else
	new_build_dir
	if kdir=$(go_mod_dir "k8s.io/kubernetes@$K8S_VERSION") && [ -n "$kdir" ] &&
		go build -o "$b/oas2js" ./scripts/ci/oas2js &&
		"$b/oas2js" -out "$b/out" "$kdir"/api/openapi-spec/v3/*.json &&
		put_in_place "$b/out" "$SCHEMA_DIR"; then
		available schemas
	else
		unavailable schemas "generating JSON schemas from k8s.io/kubernetes@$K8S_VERSION failed"
	fi
fi

phase "tools: CoreDNS $COREDNS_VERSION"
if [ -x "$COREDNS_DIR/coredns" ]; then
	log "cached: $COREDNS_DIR"
	available coredns
else
	# Only the plugins the test cluster's DNS uses (CoreDNS's documented way
	# to choose plugins: plugin.cfg, then go generate): the full set would
	# build the cloud providers' SDKs too. Built as the main module of a copy
	# of its source, like compose.
	new_build_dir
	if src=$(go_mod_dir "github.com/coredns/coredns@$COREDNS_VERSION") && [ -n "$src" ] &&
		cp -r "$src" "$b/src" && chmod -R u+w "$b/src" &&
		(
			cd "$b/src" && printf '%s\n' bind:bind ready:ready errors:errors log:log kubernetes:kubernetes >plugin.cfg &&
				export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOCACHE=$tools_gocache &&
				quiet coredns-generate.log go generate coredns.go &&
				quiet coredns.log nice go build -trimpath -ldflags "-s -w" -o "$b/out/coredns" .
		) &&
		put_in_place "$b/out" "$COREDNS_DIR"; then
		log "built $COREDNS_DIR/coredns ($("$COREDNS_DIR/coredns" -plugins | grep -c .) plugins)"
		available coredns
	else
		unavailable coredns "building CoreDNS $COREDNS_VERSION from the Go module proxy failed"
	fi
fi

phase "tools: Kubernetes $K8S_VERSION binaries"
k8s_bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
missing=()
for bin in "${k8s_bins[@]}"; do [ -x "$K8S_DIR/$bin" ] || missing+=("$bin"); done
if [ ${#missing[@]} -eq 0 ]; then
	log "cached: $K8S_DIR"
	available kubernetes
else
	# go install cannot build it either (replace directives into ./staging):
	# copy the source, point the staging modules at their published versions,
	# and build it as the main module.
	new_build_dir
	v="-X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
	v="$v -X k8s.io/component-base/version.gitMajor=$(echo "$K8S_VERSION" | cut -d. -f1 | tr -d v)"
	v="$v -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)"
	pkgs=()
	for bin in "${missing[@]}"; do pkgs+=("./cmd/$bin"); done
	log "building ${missing[*]} (all of them: about 8-11 minutes cold on 2 cores)"
	if kdir=$(go_mod_dir "k8s.io/kubernetes@$K8S_VERSION") && [ -n "$kdir" ] &&
		cp -r "$kdir" "$b/src" && chmod -R u+w "$b/src" &&
		(
			cd "$b/src" && rm -rf vendor go.work go.work.sum &&
				args=() &&
				for m in $(grep '=> ./staging' go.mod | awk '{print $1}' | sort -u); do
					args+=("-dropreplace=$m" "-require=$m@$K8S_STAGING_VERSION")
				done &&
				go mod edit "${args[@]}" &&
				CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false" GOCACHE=$tools_gocache quiet kubernetes.log nice go build -trimpath \
					-ldflags "-s -w $v" -o "$b/out/" "${pkgs[@]}"
		) &&
		{ [ ! -d "$K8S_DIR" ] || cp -n "$K8S_DIR"/* "$b/out/"; } &&
		put_in_place "$b/out" "$K8S_DIR"; then
		log "built $K8S_DIR"
		available kubernetes
	else
		unavailable kubernetes "building Kubernetes $K8S_VERSION from the Go module proxy failed"
	fi
fi
phase_end

# Every tool in place: the build cache is no longer needed.
if [ -z "$(ls "$CI_CACHE/unavailable")" ]; then
	rm -rf "$tools_gocache"
fi
du -sh "$CI_CACHE" 2>/dev/null | sed 's/^/cache size: /'
exit 0
