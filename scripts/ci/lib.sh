# shellcheck shell=bash
# Helpers shared by scripts/ci-*.sh (sourced, not run).
#
# AGENTD_CI_CACHE  where tools built once are kept, outside the clone
#                  (default /var/cache/agentd-ci): <component>-<version>/
# AGENTD_CI_SKIPS  file that collects "SKIPPED: <check>: <reason>" lines, so
#                  that scripts/ci-deploy.sh can fail the run on a skip

CI_CACHE=${AGENTD_CI_CACHE:-/var/cache/agentd-ci}
COMPOSE_VERSION=v2.40.3
K8S_VERSION=v1.37.2
K8S_STAGING_VERSION=v0.37.2
KUBECONFORM_VERSION=v0.8.0
COREDNS_VERSION=v1.14.7
# The Prometheus module's version for Prometheus 3.16's promtool.
PROMTOOL_VERSION=v0.316.0

COMPOSE_DIR=$CI_CACHE/compose-$COMPOSE_VERSION
K8S_DIR=$CI_CACHE/kubernetes-$K8S_VERSION
KUBECONFORM_DIR=$CI_CACHE/kubeconform-$KUBECONFORM_VERSION
SCHEMA_DIR=$CI_CACHE/k8s-schemas-$K8S_VERSION
COREDNS_DIR=$CI_CACHE/coredns-$COREDNS_VERSION
PROMTOOL_DIR=$CI_CACHE/promtool-$PROMTOOL_VERSION

# Tool builds need the Go module proxy, wherever this runs.
export GOTOOLCHAIN=local

ci_t0=$(date +%s)
phase_name=
phase_t0=

# log MSG: a line stamped with the seconds since the script started.
log() { echo "[+$(( $(date +%s) - ci_t0 ))s] $*"; }

# phase NAME: start timing NAME (ends the previous phase).
phase() {
	phase_end
	phase_name=$1
	phase_t0=$(date +%s)
	echo "== $phase_name"
}

# phase_end: print the time of the running phase, if any.
phase_end() {
	if [ -n "$phase_name" ]; then
		echo "TIMING: $phase_name: $(( $(date +%s) - phase_t0 ))s"
		phase_name=
	fi
}

# skip CHECK REASON: say loudly that CHECK did not run, and record it.
skip() {
	echo "SKIPPED: $1: $2"
	if [ -n "${AGENTD_CI_SKIPS:-}" ]; then
		echo "SKIPPED: $1: $2" >>"$AGENTD_CI_SKIPS"
	fi
}

# die MSG: fail the check.
die() {
	echo "FAILED: $*" >&2
	exit 1
}

# wait_for SECONDS DESCRIPTION CMD...: run CMD every half second until it
# succeeds; fail after SECONDS.
wait_for() {
	local secs=$1 what=$2 i
	shift 2
	for ((i = 0; i < secs * 2; i++)); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.5
	done
	echo "timed out after ${secs}s waiting for $what" >&2
	return 1
}

# apt_install PKG...: install Debian packages that are missing (apt-get
# update once per run). Returns non-zero if the install failed.
apt_updated=
apt_install() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ -z "$apt_updated" ]; then
		apt-get update -qq || return 1
		apt_updated=1
	fi
	log "apt-get install ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# go_mod_dir MODULE@VERSION: download a module and print its directory.
# Run outside any module, so that no go.mod or go.sum is touched.
go_mod_dir() {
	local out dir
	out=$(cd / && GOFLAGS= go mod download -json "$1" 2>&1)
	dir=$(echo "$out" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	if [ -z "$dir" ]; then
		echo "go mod download $1 failed: $(echo "$out" | sed -n 's/^[[:space:]]*"Error": "\(.*\)",*$/\1/p' | head -1)" >&2
		return 1
	fi
	echo "$dir"
}

# drop_chains PREFIX: remove the iptables and ip6tables chains named
# PREFIX* (in the filter, nat and mangle tables) and the rules that jump to
# them: what a kubelet or dockerd started by a check leaves behind.
drop_chains() {
	local prefix=$1 ipt table rule chain
	for ipt in iptables ip6tables; do
		command -v "$ipt-save" >/dev/null || continue
		for table in filter nat mangle; do
			"$ipt-save" -t "$table" 2>/dev/null | grep -E -- "^-A [A-Z]+ .*-j $prefix" | sed 's/^-A /-D /' |
				while read -r rule; do eval "$ipt -t $table $rule" 2>/dev/null || true; done
			for chain in $("$ipt-save" -t "$table" 2>/dev/null | grep -oE "^:$prefix[^ ]*" | tr -d ':'); do
				"$ipt" -t "$table" -F "$chain" 2>/dev/null || true
			done
			for chain in $("$ipt-save" -t "$table" 2>/dev/null | grep -oE "^:$prefix[^ ]*" | tr -d ':'); do
				"$ipt" -t "$table" -X "$chain" 2>/dev/null || true
			done
		done
	done
}
