#!/usr/bin/env bash
# The deployment checks (Dockerfile, docker-compose.yml, deploy/k8s), as
# .ci/run runs them: install and build the tools (scripts/ci-tools.sh, cached
# in ${AGENTD_CI_CACHE:-/var/cache/agentd-ci}), then the Docker checks
# (scripts/ci-docker.sh), then the Kubernetes checks (scripts/ci-k8s.sh) on the
# images the Docker step built. Every daemon and cluster they start is stopped
# before they return. Needs root (apt-get, dockerd, kubelet).
#
# A check that cannot run prints "SKIPPED: <check>: <reason>". A skip fails
# this script, as a failed check does, unless AGENTD_CI_ALLOW_SKIP=1 (for a
# machine that cannot run Docker or a cluster: the skips are still listed).
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/ci/lib.sh

work=$(mktemp -d "${TMPDIR:-/tmp}/agentd-ci-deploy.XXXXXX")
trap 'rm -rf "$work"' EXIT
export AGENTD_CI_SKIPS=$work/skips AGENTD_CI_IMAGES=$work/images.tar
: >"$AGENTD_CI_SKIPS"

if [ "$(id -u)" != 0 ]; then
	skip "deployment checks (docker, k8s)" "they need root (apt-get, dockerd, containerd, kubelet); running as uid $(id -u)"
else
	failed=()
	timings=()
	step() {
		local name=$1 t0 rc=0
		shift
		t0=$(date +%s)
		echo "=== $name: $*"
		bash "$@" || rc=$?
		timings+=("$name $(( $(date +%s) - t0 ))s")
		[ "$rc" = 0 ] || failed+=("$name")
	}
	step tools scripts/ci-tools.sh
	step docker scripts/ci-docker.sh
	step k8s scripts/ci-k8s.sh
	echo "=== deployment checks: time per step: ${timings[*]}"
	if [ ${#failed[@]} -gt 0 ]; then
		echo "=== deployment checks FAILED: ${failed[*]}"
		sort -u "$AGENTD_CI_SKIPS"
		exit 1
	fi
fi

if [ -s "$AGENTD_CI_SKIPS" ]; then
	echo "=== deployment checks that did NOT run:"
	sort -u "$AGENTD_CI_SKIPS"
	if [ "${AGENTD_CI_ALLOW_SKIP:-}" = 1 ]; then
		echo "=== AGENTD_CI_ALLOW_SKIP=1: skipped checks allowed"
		exit 0
	fi
	echo "=== a skipped check fails CI; set AGENTD_CI_ALLOW_SKIP=1 to accept skips on a machine that cannot run them"
	exit 1
fi
echo "=== deployment checks passed, none skipped"
