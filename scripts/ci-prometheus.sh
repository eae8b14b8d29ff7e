#!/usr/bin/env bash
# The Prometheus alerting rules, as .ci/run checks them (docs/metrics.md):
#
#   1. promtool (github.com/prometheus/prometheus/cmd/promtool at
#      $PROMTOOL_VERSION), built once from the Go module proxy into
#      ${AGENTD_CI_CACHE:-/var/cache/agentd-ci}/promtool-<version>/ (6 to 8
#      minutes cold on 2 cores; cached after);
#   2. promtool check rules deploy/prometheus/agentd-rules.yml;
#   3. promtool test rules deploy/prometheus/agentd-rules.test.yml: every
#      alert fires and resolves on its input series;
#   4. the PrometheusRule of deploy/k8s/prometheus: rendered with kustomize
#      (when scripts/ci-tools.sh has cached kubectl; .ci/run runs this after
#      the deployment checks, so it has), decoded strictly into the Prometheus
#      Operator's own types (scripts/ci/promrule: the CRD's schema is not on
#      the module proxy, so kubeconform has nothing to check it against),
#      shown to reject an unknown field, and its rule groups checked by
#      promtool. That it holds exactly agentd-rules.yml's groups is
#      TestPrometheusRuleManifest (go test ./internal/metrics/).
#
# A check that cannot run prints "SKIPPED: <check>: <reason>" and fails the
# script unless AGENTD_CI_ALLOW_SKIP=1; a failed check fails it.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/ci/lib.sh

skipped=0
skip_check() { skip "$1" "$2"; skipped=1; }
fail() { echo "FAILED: $*"; exit 1; }

mkdir -p "$CI_CACHE/unavailable" "$CI_CACHE/logs" || { echo "cannot create $CI_CACHE" >&2; exit 1; }
rm -rf "$CI_CACHE"/.build.promtool.* # left by an interrupted run

phase "prometheus: promtool $PROMTOOL_VERSION"
promtool=$PROMTOOL_DIR/promtool
if [ -x "$promtool" ]; then
	log "cached: $PROMTOOL_DIR"
else
	# Built into a directory of the cache (same filesystem: the mv is
	# atomic), with a Go build cache of its own there, so an interrupted
	# build resumes; the build cache goes once promtool is in place.
	b=$(mktemp -d "$CI_CACHE/.build.promtool.XXXXXX")
	log "building promtool (6 to 8 minutes cold on 2 cores)"
	if (cd / && CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOBIN="$b/out" GOCACHE=$CI_CACHE/.gocache-promtool \
		nice go install -trimpath -ldflags "-s -w" "github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_VERSION") \
		>"$CI_CACHE/logs/promtool.log" 2>&1 &&
		rm -rf "$PROMTOOL_DIR" && mv "$b/out" "$PROMTOOL_DIR"; then
		log "built $promtool"
		rm -f "$CI_CACHE/unavailable/promtool"
		rm -rf "$CI_CACHE/.gocache-promtool"
	else
		echo "--- the end of $CI_CACHE/logs/promtool.log:"
		tail -n 20 "$CI_CACHE/logs/promtool.log"
		echo "go install promtool@$PROMTOOL_VERSION failed (the Go module proxy unreachable?)" >"$CI_CACHE/unavailable/promtool"
	fi
	rm -rf "$b"
fi

if [ ! -x "$promtool" ]; then
	skip_check "prometheus: promtool check rules, promtool test rules, the PrometheusRule's rules" \
		"promtool $PROMTOOL_VERSION: $(cat "$CI_CACHE/unavailable/promtool" 2>/dev/null || echo "not built")"
else
	phase "prometheus: promtool check rules"
	"$promtool" check rules deploy/prometheus/agentd-rules.yml || fail "promtool check rules deploy/prometheus/agentd-rules.yml"
	phase "prometheus: promtool test rules (each alert fires and resolves)"
	"$promtool" test rules deploy/prometheus/agentd-rules.test.yml || fail "promtool test rules deploy/prometheus/agentd-rules.test.yml"
fi

phase "prometheus: the PrometheusRule manifest (deploy/k8s/prometheus)"
W=$(mktemp -d "${TMPDIR:-/tmp}/agentd-ci-prometheus.XXXXXX")
trap 'rm -rf "$W"' EXIT
manifest=deploy/k8s/prometheus/prometheusrule.yaml
if [ -x "$K8S_DIR/kubectl" ]; then
	"$K8S_DIR/kubectl" kustomize deploy/k8s/prometheus >"$W/rendered.yaml" || fail "kubectl kustomize deploy/k8s/prometheus"
	manifest=$W/rendered.yaml
	log "rendered deploy/k8s/prometheus with kubectl $K8S_VERSION's kustomize"
else
	# Not a skip: the kustomization only lists the manifest, which is
	# validated below all the same.
	log "kubectl $K8S_VERSION not cached (scripts/ci-tools.sh builds it): validating $manifest without the kustomize render"
fi
# The validator is its own module (scripts/ci/promrule/go.mod): the
# operator's types are a CI dependency, not agentd's.
if ! (cd scripts/ci/promrule && GOFLAGS=-buildvcs=false go build -o "$W/promrule" .) >"$W/promrule-build.log" 2>&1; then
	cat "$W/promrule-build.log"
	skip_check "prometheus: PrometheusRule validation" "building scripts/ci/promrule (the Prometheus Operator's types from the Go module proxy) failed"
else
	"$W/promrule" -groups "$W/groups.yml" "$manifest" || fail "the PrometheusRule manifest is invalid"
	sed 's/^spec:$/spec:\n  bogusField: 1/' "$manifest" >"$W/bad.yaml"
	if "$W/promrule" "$W/bad.yaml" >"$W/bad.out" 2>&1; then fail "promrule accepted an unknown field"; fi
	grep -q bogusField "$W/bad.out" || fail "promrule refused the bad manifest, but not for its unknown field: $(cat "$W/bad.out")"
	log "an unknown field is refused: $(cat "$W/bad.out")"
	if [ -x "$promtool" ]; then
		"$promtool" check rules "$W/groups.yml" || fail "promtool check rules on the PrometheusRule's groups"
	fi
fi
phase_end

if [ "$skipped" = 1 ]; then
	if [ "${AGENTD_CI_ALLOW_SKIP:-}" = 1 ]; then
		echo "AGENTD_CI_ALLOW_SKIP=1: the skipped Prometheus checks (above) are accepted"
		exit 0
	fi
	echo "a Prometheus check was skipped (above): a skip fails CI; set AGENTD_CI_ALLOW_SKIP=1 to accept it on a machine that cannot build the tools"
	exit 1
fi
echo "prometheus rules: all checks passed"
