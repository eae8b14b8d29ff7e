#!/usr/bin/env bash
# The container checks, on a real Docker engine started here and stopped at
# the end: the real Dockerfile and docker-compose.yml (plus
# scripts/ci/docker-compose.ci.yml, which only adds build arguments and a fake
# model endpoint), with base images made locally by `docker import` since no
# image registry is reachable.
#
#   scripts/ci-tools.sh && scripts/ci-docker.sh
#
# Checks: image under 25 MB, uid 10001, busybox shell and config tree inside;
# `docker compose up --wait` reaches healthy; a real turn through the published
# port; docker inspect shows read-only root, CapDrop ALL, no-new-privileges,
# user 10001, 2 GiB memory, 1 CPU; run_shell_command works in the container;
# `docker compose stop` during a turn in flight, then `up`: the session is
# there, its history valid, the interrupted turn cancelled with reason
# shutdown, and a new turn works; the same after `down` + `up` (the named
# volume keeps the data); the hostile-tenant suite (cmd/agentd
# attack_e2e_test.go) inside the image as uid 10001 with the compose
# hardening, against the image's own agentd.
#
# AGENTD_CI_IMAGES=FILE  also `docker save` the images (agentd, fakellm, pause)
#                        there for scripts/ci-k8s.sh.
# A missing tool is a loud "SKIPPED: ..." (see scripts/ci/lib.sh), not a pass.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/ci/lib.sh

# --- what is needed -----------------------------------------------------------
reason=
if ! command -v dockerd >/dev/null || ! command -v containerd >/dev/null; then
	reason="dockerd is not installed ($(cat "$CI_CACHE/unavailable/docker" 2>/dev/null || echo 'run scripts/ci-tools.sh'))"
elif [ ! -x /bin/busybox ]; then
	reason="/bin/busybox (busybox-static) is not installed"
elif [ ! -x "$COMPOSE_DIR/docker-compose" ]; then
	reason="docker compose $COMPOSE_VERSION is not built ($(cat "$CI_CACHE/unavailable/compose" 2>/dev/null || echo 'run scripts/ci-tools.sh'))"
fi
if [ -n "$reason" ]; then
	skip "docker: image build, compose up, hardening, turn, shell tool, stop during a turn" "$reason"
	exit 0
fi
docker=docker
[ -x /usr/bin/docker ] && docker=/usr/bin/docker # Debian's client matches the 20.10 daemon

W=$(mktemp -d "${TMPDIR:-/tmp}/agentd-ci-docker.XXXXXX")
export DOCKER_HOST=unix://$W/docker.sock
export DOCKER_CONFIG=$W/docker-config
export COMPOSE_PROJECT_NAME=agentd-ci
export COMPOSE_BAKE=false
export DOCKER_BUILDKIT=1
mkdir -p "$DOCKER_CONFIG/cli-plugins"
ln -s "$COMPOSE_DIR/docker-compose" "$DOCKER_CONFIG/cli-plugins/docker-compose"
compose() { "$docker" compose -f docker-compose.yml -f scripts/ci/docker-compose.ci.yml "$@"; }

dockerd_pid=
hang_pid=
had_docker0=
forward_policy=ACCEPT
cleanup() {
	local rc=$?
	set +e
	phase_end
	[ -n "$hang_pid" ] && kill "$hang_pid" 2>/dev/null
	if [ -n "$dockerd_pid" ]; then
		if [ "$rc" != 0 ]; then
			echo "--- docker compose ps / logs (the check failed)"
			compose ps -a
			compose logs --no-color --tail 60
		fi
		compose down -v --timeout 5 >/dev/null 2>&1
		kill "$dockerd_pid" 2>/dev/null
		for _ in $(seq 1 30); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
		kill -9 "$dockerd_pid" 2>/dev/null
		wait "$dockerd_pid" 2>/dev/null
		[ "$rc" != 0 ] && { echo "--- dockerd log (tail)"; tail -20 "$W/dockerd.log"; }
		# dockerd leaves its bridge, iptables chains and FORWARD policy behind:
		# put the machine's network back as it was (unless another Docker
		# was there before).
		if [ -z "$had_docker0" ]; then
			ip link del docker0 2>/dev/null
			[ -s "$W/iptables.before" ] && iptables-restore <"$W/iptables.before"
			drop_chains DOCKER
			iptables -t nat -S POSTROUTING 2>/dev/null | grep -- '-o docker0 -j MASQUERADE' | sed 's/^-A /-D /' |
				while read -r r; do eval "iptables -t nat $r"; done
			# dockerd's FORWARD rules for docker0 (there is no "before" to
			# restore on a machine that had no iptables rules at all)
			iptables -S FORWARD 2>/dev/null | grep -E -- '-[io] docker0' | sed 's/^-A /-D /' |
				while read -r r; do eval "iptables $r"; done
			iptables -P FORWARD "$forward_policy" 2>/dev/null
		fi
	fi
	grep " $W/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
	rm -rf "$W"
	log "docker: torn down (dockerd stopped, $W removed)"
	exit "$rc"
}
trap cleanup EXIT

# --- dockerd --------------------------------------------------------------------
phase "docker: start dockerd"
had_docker0=$(ip link show docker0 2>/dev/null || true)
iptables-save >"$W/iptables.before" 2>/dev/null || true
forward_policy=$(iptables -S FORWARD 2>/dev/null | awk '$1 == "-P" {print $3}')
forward_policy=${forward_policy:-ACCEPT}
dockerd --host "$DOCKER_HOST" --data-root "$W/root" --exec-root "$W/exec" --pidfile "$W/dockerd.pid" \
	>"$W/dockerd.log" 2>&1 &
dockerd_pid=$!
wait_for 60 dockerd "$docker" info
"$docker" version --format 'engine {{.Server.Version}}, client {{.Client.Version}}'
"$docker" compose version

# --- base images, made here (no registry) --------------------------------------------
phase "docker: import base images (busybox, Go builder, pause)"
rootfs=$W/rootfs
mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/root" "$rootfs/etc/ssl/certs"
chmod 1777 "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/"
for a in $(/bin/busybox --list); do [ -e "$rootfs/bin/$a" ] || ln -s busybox "$rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
tar -C "$rootfs" -c . | "$docker" import -c 'CMD ["/bin/sh"]' - local/busybox:ci >/dev/null
tar -C "$rootfs" -c . | "$docker" import -c 'CMD ["/bin/sleep", "2147483647"]' - local/pause:ci >/dev/null
# The Go builder: busybox, this machine's Go, and the module cache the build
# needs (GOPROXY=off in the image: the build itself never goes to the network).
modroot=$W/modroot
mkdir -p "$modroot/src" "$modroot/root/go/pkg/mod"
cp go.mod go.sum "$modroot/src/"
(cd "$modroot/src" && GOFLAGS=-modcacherw GOMODCACHE="$modroot/root/go/pkg/mod" \
	GOPROXY="file://$(go env GOMODCACHE)/cache/download,$(go env GOPROXY)" go mod download)
rm -rf "$modroot/src"
goroot=$(go env GOROOT)
tar -C "$rootfs" -c . -C "$modroot" root/go -C "$(dirname "$goroot")" --transform "s,^$(basename "$goroot"),usr/local/go," "$(basename "$goroot")" |
	"$docker" import -c 'ENV PATH=/usr/local/go/bin:/bin' -c 'ENV HOME=/root' -c 'ENV GOTOOLCHAIN=local' \
		-c 'ENV GOPROXY=off' -c 'ENV GOFLAGS=-buildvcs=false' - local/gobuilder:ci >/dev/null
"$docker" run --rm local/gobuilder:ci go version
export CI_GO_IMAGE=local/gobuilder:ci CI_BUSYBOX_IMAGE=local/busybox:ci
export CI_VERSION="ci-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
export AGENTD_TAG=ci

# --- the settings a user puts in .env -------------------------------------------------
key=ci-key-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
export OPENAI_API_KEY= OPENAI_MODEL=fake-model OPENAI_BASE_URL=http://fakellm:8081/v1
export TENANT_ID=ci AGENTD_API_KEYS="$key=ci"
port=
for p in 18480 18481 18482 18483 18484; do
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || die "no free port in 18480-18484"
export AGENTD_PORT=$port
url=http://127.0.0.1:$port
check=$W/agentdcheck
go build -o "$check" ./scripts/ci/agentdcheck

# --- image ------------------------------------------------------------------------------
phase "docker: build the images with the real Dockerfile (docker compose build)"
compose config --quiet
compose build >"$W/build.log" 2>&1 || { tail -n 60 "$W/build.log"; die "docker compose build"; }
tail -n 4 "$W/build.log"
image=agentd:ci

phase "docker: image checks"
size=$("$docker" image inspect "$image" --format '{{.Size}}')
echo "image $image: $size bytes ($(( size / 1024 / 1024 )) MiB), limit 25000000"
[ "$size" -lt 25000000 ] || die "image is $size bytes, not under 25 MB"
cfg=$("$docker" image inspect "$image" --format 'user={{.Config.User}} workdir={{.Config.WorkingDir}} entrypoint={{.Config.Entrypoint}} health={{.Config.Healthcheck.Test}} interval={{.Config.Healthcheck.Interval}}')
echo "$cfg"
[[ $cfg == *"user=10001:10001 workdir=/data entrypoint=[/usr/local/bin/agentd]"* ]] || die "image config: $cfg"
[[ $cfg == *"health=[CMD /usr/local/bin/agentd healthcheck]"* ]] || die "image healthcheck: $cfg"
envs=$("$docker" image inspect "$image" --format '{{join .Config.Env " "}}')
for e in HOME=/tmp TMPDIR=/tmp AGENTD_CONFIG_DIR=/etc/agentd AGENTD_DATA=/data; do
	[[ " $envs " == *" $e "* ]] || die "image env lacks $e: $envs"
done
"$docker" run --rm "$image" version | tee "$W/version"
grep -q "agentd $CI_VERSION " "$W/version" || die "version is not $CI_VERSION"
# busybox as the shell, the real binary (not a link) for the sandbox re-exec,
# the config tree, /data owned by 10001, CA certificates, a read-only root.
# A named volume on /data starts as a copy of the image's /data (owner 10001).
"$docker" run --rm --read-only --tmpfs /tmp -v agentd-ci-probe:/data --entrypoint /bin/sh "$image" -c '
	set -e
	echo "uid=$(id -u) gid=$(id -g) user=$(id -un) home=$HOME"
	[ "$(id -u)" = 10001 ] && [ "$(id -un)" = agentd ]
	[ -f /usr/local/bin/agentd ] && [ ! -L /usr/local/bin/agentd ]
	ls /bin/sh /bin/ls /bin/grep /bin/cat >/dev/null
	ls /etc/agentd/AGENTAO.md /etc/agentd/skills /etc/agentd/.agentao/sandbox.json >/dev/null
	[ "$(stat -c %u /data)" = 10001 ]
	touch /data/probe
	rm /data/probe
	[ -s /etc/ssl/certs/ca-certificates.crt ]
	if touch /probe 2>/dev/null; then echo "root filesystem is writable"; exit 1; fi
	touch /tmp/probe
	echo "busybox shell, config tree, /data writable by 10001, CA certificates, read-only /: ok"
'
"$docker" volume rm agentd-ci-probe >/dev/null
# The image proves its sandbox on this kernel, hardened as deployed, and
# says what it enforces (the command docs/deploy.md gives operators).
"$docker" run --rm --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges "$image" check --sandbox >"$W/check.out" 2>&1 ||
	{ cat "$W/check.out"; die "agentd check --sandbox in the image"; }
grep -E 'Landlock ABI|processes:|REFUSED|NOT ENFORCED' "$W/check.out"
grep -q 'workspace-write-no-network (in use): ok' "$W/check.out" || die "the image's default sandbox profile is not enforced on this kernel"

# --- compose up ----------------------------------------------------------------------------
phase "docker: docker compose up --wait (healthcheck every 30s: the first one decides)"
compose up -d --wait --wait-timeout 120 --no-build
compose ps
cid=$(compose ps -q agentd)
curl -fsS "$url/healthz" >/dev/null && curl -fsS "$url/readyz" >/dev/null || die "healthz/readyz through 127.0.0.1:$port"

phase "docker: docker inspect (hardening as deployed)"
got=$("$docker" inspect "$cid" --format 'ro={{.HostConfig.ReadonlyRootfs}} capdrop={{.HostConfig.CapDrop}} secopt={{.HostConfig.SecurityOpt}} user={{.Config.User}} mem={{.HostConfig.Memory}} cpus={{.HostConfig.NanoCpus}} restart={{.HostConfig.RestartPolicy.Name}} tmpfs={{.HostConfig.Tmpfs}} health={{.State.Health.Status}}')
echo "$got"
for want in ro=true "capdrop=[ALL]" "secopt=[no-new-privileges:true]" user=10001:10001 mem=2147483648 \
	cpus=1000000000 restart=unless-stopped "tmpfs=map[/tmp:size=512M]" health=healthy; do
	[[ " $got " == *" $want "* ]] || die "docker inspect: want $want in: $got"
done
"$docker" exec "$cid" sh -c 'id -u; if touch /x 2>/dev/null; then exit 1; fi; grep -q "^CapEff:.*0000000000000000" /proc/self/status' >/dev/null ||
	die "inside the container: not uid 10001, a writable root, or capabilities left"

phase "docker: a real turn through the published port"
curl -fsS -X POST "$url/v1/sessions" -H "Authorization: Bearer $key" -H "X-Agentd-User: curl" | grep -q '"id":"' ||
	die "curl POST /v1/sessions"
sid=$("$check" open -url "$url" -key "$key" -user alice)
echo "session $sid: turn 1 ok"

phase "docker: GET /metrics (no key) counts that turn"
curl -fsS "$url/metrics" | grep -E '^agentd_turns_total\{.*status="ok"\} [1-9]' ||
	die "GET /metrics does not count the turn"

phase "docker: run_shell_command in the container (busybox /bin/sh)"
if ! "$check" shell -url "$url" -key "$key" -user shell-user; then
	echo "run_shell_command does not work in the container: see the tool result above (a sandbox failure is agentd's, not the image's)" >&2
	exit 1
fi

phase "docker: the hostile-tenant suite inside the image (uid 10001, read-only root, no capabilities, no-new-privileges)"
# The end-to-end test binary, static, runs in the image against the image's
# own agentd, with the hardening of docker-compose.yml (read_only, tmpfs
# /tmp, cap_drop ALL, no-new-privileges, user 10001, mem_limit): there the
# sandbox has no root to lean on, and agentd is not PID 1.
mkdir -p "$W/e2e"
CGO_ENABLED=0 go test -c -o "$W/e2e/agentd-e2e.test" ./cmd/agentd
chmod -R a+rX "$W/e2e"
"$docker" run --rm --read-only --tmpfs /tmp:size=512M --cap-drop ALL --security-opt no-new-privileges \
	--user 10001:10001 --memory 2g -v "$W/e2e:/e2e:ro" -e AGENTD_E2E_BINARY=/usr/local/bin/agentd \
	--entrypoint /e2e/agentd-e2e.test "$image" -test.run '^(TestHostileTenant|TestEvictionEndsCommands|TestShutdownEndsCommands)$' -test.v -test.count=1 \
	>"$W/attack.log" 2>&1 || { grep -v '^{"level"' "$W/attack.log" | tail -n 80; die "the hostile-tenant suite failed inside the image"; }
grep -E '^(---|ok|PASS)' "$W/attack.log"
if grep -E -- '--- SKIP' "$W/attack.log"; then die "a hostile-tenant test skipped inside the image"; fi
grep -q -- '--- PASS: TestHostileTenant ' "$W/attack.log" || die "TestHostileTenant did not run and pass inside the image"

phase "docker: docker compose stop (SIGTERM) during a turn in flight"
rm -f "$W/ready"
"$check" hang -url "$url" -key "$key" -user alice -session "$sid" -ready "$W/ready" >"$W/hang.out" 2>&1 &
hang_pid=$!
wait_for 30 "the [[hang]] turn to be in flight" test -f "$W/ready" || { cat "$W/hang.out"; die "no turn in flight"; }
t0=$(date +%s)
compose stop agentd
stop_s=$(( $(date +%s) - t0 ))
hang_rc=0
wait "$hang_pid" || hang_rc=$?
hang_pid=
cat "$W/hang.out"
[ "$hang_rc" = 0 ] || die "the client of the in-flight turn did not get a done event cancelled with reason shutdown"
state=$("$docker" inspect "$cid" --format 'exit={{.State.ExitCode}} oomkilled={{.State.OOMKilled}}')
echo "agentd stopped in ${stop_s}s (stop_grace_period 15s): $state"
[ "$state" = "exit=0 oomkilled=false" ] || die "agentd did not exit 0 on SIGTERM: $state"
[ "$stop_s" -lt 15 ] || die "agentd took ${stop_s}s: it was killed, not drained"
compose logs --no-color agentd 2>&1 | grep -i -E 'shutdown|signal|drain' | tail -n 5 || true

phase "docker: docker compose up again: the session survived"
compose up -d --wait --wait-timeout 120 --no-build
"$check" verify -url "$url" -key "$key" -user alice -session "$sid" -turns 2

phase "docker: docker compose down (volume kept) + up: the data is on the named volume"
compose down --timeout 15
compose up -d --wait --wait-timeout 120 --no-build
"$check" open -url "$url" -key "$key" -user bob >/dev/null
n=$(curl -fsS "$url/v1/sessions/$sid" -H "Authorization: Bearer $key" | grep -o '"n":[0-9]*' | wc -l)
[ "$n" = 3 ] || die "session $sid has $n turns after down/up, want 3"
echo "session $sid: 3 turns after the container was recreated"

if [ -n "${AGENTD_CI_IMAGES:-}" ]; then
	phase "docker: save the images for the cluster check"
	"$docker" save -o "$AGENTD_CI_IMAGES" agentd:ci agentd-fakellm:ci local/pause:ci
	ls -l "$AGENTD_CI_IMAGES"
fi
phase_end
echo "docker checks passed"
