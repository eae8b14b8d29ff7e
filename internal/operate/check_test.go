package operate_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/operate"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string // a problem starting with each
	}{
		{"no files", nil, nil},
		{"valid files", map[string]string{
			operate.BudgetsFile: `{"default": {"daily_tokens": 1000}}`,
			operate.AlertsFile:  `{"session_tokens": 80000}`,
			operate.ProbesFile:  `{"prompts": [{"name": "capital", "content": "What is the capital of France?"}]}`,
		}, nil},
		{"each invalid", map[string]string{
			operate.BudgetsFile: `{"tenants": {"acme": {"daily_token": 5}}}`,
			operate.AlertsFile:  `{"llm_5xx_rate": 5}`,
			operate.ProbesFile:  `{"every": "1s"}`,
		}, []string{operate.BudgetsFile + ": ", operate.AlertsFile + ": ", operate.ProbesFile + ": "}},
		{"malformed JSON", map[string]string{operate.AlertsFile: `{`}, []string{operate.AlertsFile + ": "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				p := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got := operate.Check(dir)
			if len(got) != len(tt.want) {
				t.Fatalf("problems %q; want %d", got, len(tt.want))
			}
			for i, prefix := range tt.want {
				if !strings.HasPrefix(got[i], prefix) {
					t.Errorf("problem %q; want it to start with %q", got[i], prefix)
				}
			}
		})
	}
}
