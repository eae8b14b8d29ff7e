package main_test

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/agentd/agentd/internal/llm/llmtest"
)

// TestPrometheusRulesUseExportedSeries runs the real binary, makes a turn
// with a tool call, an LLM 5xx and a plain turn, scrapes /metrics, and
// checks that every series deploy/prometheus/agentd-rules.yml reads is one
// agentd exports, with every label its matchers name: a renamed metric or
// label fails here, not silently in an operator's Prometheus. It also finds
// the OpenTelemetry GenAI series of those calls. It needs serve.go to pass
// metrics.Sources.SessionTokensMax (the usage meter's) and every LLM call
// to Metrics.SessionCall (the pool's Meter hook).
func TestPrometheusRulesUseExportedSeries(t *testing.T) {
	llm := llmtest.NewServer(t)
	p := start(t, llm, t.TempDir())
	id := p.create(acmeKey)
	if r := p.turn(acmeKey, id, `look [[tool list_directory {}]]`); r.Status != 200 {
		t.Fatalf("turn with a tool call = %d %s", r.Status, r.Raw)
	}
	llm.Enqueue(llmtest.Reply{Status: 500})
	p.turn(acmeKey, id, "this one fails")
	if r := p.turn(acmeKey, id, "hello"); r.Status != 200 {
		t.Fatalf("turn = %d %s", r.Status, r.Raw)
	}
	m := p.do("GET", "/metrics", "", "")
	if m.Status != 200 {
		t.Fatalf("GET /metrics = %d", m.Status)
	}
	labels := exportedLabels(m.Raw)

	data, err := os.ReadFile("../../deploy/prometheus/agentd-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Rules []struct{ Record, Alert, Expr string }
		}
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			for _, sel := range selectors(r.Expr) {
				checked++
				have, ok := labels[sel.name]
				if !ok {
					t.Errorf("rule %s%s reads %s, which agentd does not export", r.Record, r.Alert, sel.name)
					continue
				}
				for _, l := range sel.labels {
					if !have[l] {
						t.Errorf("rule %s%s matches label %s of %s, which has only %v", r.Record, r.Alert, l, sel.name, keys(have))
					}
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked %d selectors of the rules; the parse is broken", checked)
	}

	// The GenAI series of the three turns' four LLM calls (the tool turn
	// makes two): every one timed, the 500 with its error_type.
	for _, want := range []string{
		`gen_ai_client_operation_duration_seconds_count{error_type="",feature_flag_instructions="stable",feature_flag_model="stable",feature_flag_rules="stable",feature_flag_sandbox="stable",feature_flag_skills="stable",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="stable-model"} 3`,
		`gen_ai_client_operation_duration_seconds_count{error_type="500",feature_flag_instructions="stable",feature_flag_model="stable",feature_flag_rules="stable",feature_flag_sandbox="stable",feature_flag_skills="stable",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="stable-model"} 1`,
		`gen_ai_client_token_usage_count{feature_flag_instructions="stable",feature_flag_model="stable",feature_flag_rules="stable",feature_flag_sandbox="stable",feature_flag_skills="stable",gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="stable-model",gen_ai_token_type="input"} 3`,
	} {
		if !strings.Contains(m.Raw, want) {
			t.Errorf("/metrics has no\n%s", want)
		}
	}
	if strings.Contains(m.Raw, "acme") || strings.Contains(m.Raw, id) {
		t.Errorf("/metrics names a tenant or a session")
	}
}

// exportedLabels maps each metric family in a text exposition (histogram
// and summary samples under their family name too) to its label names.
func exportedLabels(exposition string) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	lbl := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="`)
	for _, line := range strings.Split(exposition, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		for _, n := range []string{name, strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")} {
			if out[n] == nil {
				out[n] = map[string]bool{}
			}
			if i := strings.LastIndexByte(rest, '}'); i >= 0 {
				for _, m := range lbl.FindAllStringSubmatch(rest[:i], -1) {
					out[n][m[1]] = true
				}
			}
		}
	}
	return out
}

type selector struct {
	name   string
	labels []string // label names its matchers and label_replace read
}

var (
	// An agentd series and its matchers; not a part of a recording rule's
	// name (level:metric:operations), hence the colons excluded around it.
	seriesRE  = regexp.MustCompile(`(?:^|[^a-zA-Z0-9_:])(agentd_[a-zA-Z0-9_]*)(\{[^}]*\})?(?:[^a-zA-Z0-9_:]|$)`)
	matcherRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"`)
	// label_replace(v, "dst", "replacement", "src", "regex"): src is read
	// from the series in v.
	replaceRE = regexp.MustCompile(`label_replace\((.*?),\s*"[^"]*"\s*,\s*"[^"]*"\s*,\s*"([^"]*)"`)
)

// selectors finds the agentd series an expression reads and the labels
// it reads from them (a regexp pass, not a PromQL parser: promtool checks
// the syntax; this needs only the names).
func selectors(expr string) []selector {
	var out []selector
	for _, m := range seriesRE.FindAllStringSubmatch(expr, -1) {
		sel := selector{name: m[1]}
		for _, mm := range matcherRE.FindAllStringSubmatch(m[2], -1) {
			sel.labels = append(sel.labels, mm[1])
		}
		out = append(out, sel)
	}
	for _, m := range replaceRE.FindAllStringSubmatch(expr, -1) {
		for _, inner := range seriesRE.FindAllStringSubmatch(m[1], -1) {
			out = append(out, selector{name: inner[1], labels: []string{m[2]}})
		}
	}
	return out
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
