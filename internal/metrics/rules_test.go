package metrics_test

import (
	"os"
	"strings"
	"testing"
)

const (
	rulesFile    = "../../deploy/prometheus/agentd-rules.yml"
	manifestFile = "../../deploy/k8s/prometheus/prometheusrule.yaml"
)

// prometheusRule renders the PrometheusRule manifest from the rule file:
// the same groups, text for text (comments included), under spec.
func prometheusRule(rules string) string {
	_, groups, _ := strings.Cut(rules, "\ngroups:\n")
	var b strings.Builder
	b.WriteString(`# GENERATED from deploy/prometheus/agentd-rules.yml: do not edit; run
#   AGENTD_UPDATE_PROMETHEUSRULE=1 go test -run TestPrometheusRuleManifest ./internal/metrics/
# agentd's alerting rules for the Prometheus Operator (docs/metrics.md). The
# operator loads a PrometheusRule whose labels match its Prometheus's
# ruleSelector: add yours with a kustomize overlay (labels:).
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: agentd
  labels:
    app.kubernetes.io/name: agentd
    app.kubernetes.io/component: alerting-rules
spec:
  groups:
`)
	for _, line := range strings.SplitAfter(groups, "\n") {
		if strings.TrimSpace(line) != "" {
			b.WriteString("  ")
		}
		b.WriteString(line)
	}
	return b.String()
}

// TestPrometheusRuleManifest: the PrometheusRule in deploy/k8s/prometheus
// carries exactly the groups of deploy/prometheus/agentd-rules.yml (which
// promtool tests), so the two never drift. scripts/ci-prometheus.sh
// validates the manifest against the operator's types and its rules with
// promtool.
func TestPrometheusRuleManifest(t *testing.T) {
	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rules), "\ngroups:\n") {
		t.Fatalf("%s has no top-level groups: line", rulesFile)
	}
	want := prometheusRule(string(rules))
	if os.Getenv("AGENTD_UPDATE_PROMETHEUSRULE") == "1" {
		if err := os.WriteFile(manifestFile, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(manifestFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s is not the rendering of %s: run AGENTD_UPDATE_PROMETHEUSRULE=1 go test -run TestPrometheusRuleManifest ./internal/metrics/", manifestFile, rulesFile)
	}
}
