package main_test

import (
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/llm/llmtest"
)

// TestLogsHoldNoCredentials: outside text that reaches a log line (here a
// request path a client pasted a key into) is redacted there; the request
// is answered as before.
func TestLogsHoldNoCredentials(t *testing.T) {
	leaked := "sk-" + "proj-" + strings.Repeat("Qw7E", 8) // built from pieces: no file holds a key-shaped string
	p := start(t, llmtest.NewServer(t), t.TempDir())
	if r := p.do("GET", "/v1/sessions/"+leaked, acmeKey, ""); r.Status != 404 {
		t.Fatalf("GET a pasted key as a session = %d %s", r.Status, r.Raw)
	}
	if !p.logged(`"path":"/v1/sessions/[REDACTED:`) {
		t.Fatalf("the access log line is not redacted:\n%s", p.logs.String())
	}
	if strings.Contains(p.logs.String(), leaked) {
		t.Errorf("the log holds the key:\n%s", p.logs.String())
	}
}
