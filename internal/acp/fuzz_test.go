package acp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/acp"
	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/agent/agenttest"
	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/session/sessiontest"
)

// FuzzFrames sends arbitrary bytes, read as lines of JSON-RPC, through one
// stdio connection of the real adapter over a real pool on bbolt, with the
// scripted model. "$SID" in the input is replaced with a session of the
// connection's user, so prompts, loads and cancels reach a real session.
// The connection never panics or hangs, writes only JSON-RPC 2.0 objects,
// each response has exactly one of result and error, each error a numeric
// code and a message, and every request (a method and a non-null id) is
// answered.
func FuzzFrames(f *testing.F) {
	const init = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":1,"clientCapabilities":{}}}`
	for _, s := range []string{
		init + "\n" + `{"jsonrpc":"2.0","id":2,"method":"session/new","params":{"cwd":"/home/alice/project","mcpServers":[]}}`,
		init + "\n" + `{"jsonrpc":"2.0","id":2,"method":"session/prompt","params":{"sessionId":"$SID","prompt":[{"type":"text","text":"hi"}]}}` +
			"\n" + `{"jsonrpc":"2.0","method":"session/cancel","params":{"sessionId":"$SID"}}`,
		init + "\n" + `{"jsonrpc":"2.0","id":"l","method":"session/load","params":{"sessionId":"$SID","cwd":"/","mcpServers":[]}}`,
		init + "\n" + `{"jsonrpc":"2.0","id":"r","method":"session/resume","params":{"sessionId":"$SID","cwd":"/"}}` +
			"\n" + `{"jsonrpc":"2.0","id":3,"method":"session/set_config_option","params":{"sessionId":"$SID","configId":"model","value":"m2"}}`,
		init + "\n" + `{"jsonrpc":"2.0","id":4,"method":"session/list","params":{}}` + "\n" +
			`{"jsonrpc":"2.0","id":5,"method":"session/close","params":{"sessionId":"$SID"}}`,
		init + "\r\n\r\n" + `{"jsonrpc":"2.0","id":null,"method":"session/prompt","params":{"sessionId":"$SID","prompt":[{"type":"image","data":"x","mimeType":"image/png"},{"type":"resource_link","uri":"file:///a","name":"a"}]}}`,
		// Near misses (acp_test.go's table, and more).
		`{"jsonrpc":"2.0","id":1,"method":`, `[{"jsonrpc":"2.0","id":1,"method":"initialize"}]`,
		`{"jsonrpc":"1.0","id":7,"method":"initialize","params":{"protocolVersion":1}}`, `{"jsonrpc":"2.0","id":{"a":1},"method":"initialize"}`,
		`{"jsonrpc":"2.0","id":"s","method":"initialize","params":[1]}`, `{"jsonrpc":"2.0","id":4,"method":"session/fly"}`,
		`{"jsonrpc":"2.0","id":5,"method":"session/new","params":{"cwd":"/","mcpServers":[]}}`,
		init + "\n" + init + "\n" + `{"jsonrpc":"2.0","id":"srv_0000000000000000","result":{"outcome":{"outcome":"cancelled"}}}`,
		init + "\n" + `{"jsonrpc":"2.0","id":9,"method":"session/prompt","params":{"sessionId":"$SID","prompt":"hi"}}`,
		"\x00\xff\n{}\n null \n\"x\"\n1e999",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	db, err := boltdb.Open(filepath.Join(dir, "agentd.db"), boltdb.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	model := agenttest.NewModel()
	model.Default = func(agent.Request) agenttest.Step { return agenttest.Reply("done") }
	pool, err := session.NewPool(db.Sessions(), agent.New(model, agent.Config{}), (&sessiontest.Hooks{
		AssignFn: func(string, string) (session.Assignment, error) { return session.Assignment{Model: "m1"}, nil },
		ToolsFn:  func(*session.Session, string) ([]agent.Tool, io.Closer, error) { return nil, nil, nil },
		CheckModelFn: func(m string) error {
			if m != "m1" && m != "m2" {
				return fmt.Errorf("%w: model %q is not in the catalog: m1, m2", session.ErrInvalid, m)
			}
			return nil
		},
	}).Pool(), session.Config{Dir: filepath.Join(dir, "workspaces"), Logger: zap.NewNop()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { pool.Close() })
	srv := acp.New(pool, acp.Config{Models: func() []string { return []string{"m1", "m2"} }, Version: "fuzz", Logger: zap.NewNop()})

	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := pool.Create(t.Context(), "acme", "alice", "m1")
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Delete(context.WithoutCancel(t.Context()), "acme", s.ID)
		in := bytes.ReplaceAll(data, []byte("$SID"), []byte(s.ID))
		var out bytes.Buffer
		done := make(chan error, 1)
		go func() {
			done <- srv.Serve(t.Context(), acp.NewStdio(bytes.NewReader(in), &out, 0), acp.Peer{Tenant: "acme", User: "alice", Transport: "fuzz"})
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Serve = %v", err)
			}
		case <-time.After(30 * time.Second): // a hang, not a slow machine
			t.Fatalf("Serve did not return 30 s after the input ended; input %q", in)
		}
		answered := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
			if line == "" {
				continue
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal([]byte(line), &m); err != nil || string(m["jsonrpc"]) != `"2.0"` {
				t.Fatalf("the server wrote %q: not a JSON-RPC 2.0 object", line)
			}
			if _, isCall := m["method"]; isCall {
				continue
			}
			id, ok := m["id"]
			_, hasResult := m["result"]
			rawErr, hasError := m["error"]
			if !ok || hasResult == hasError {
				t.Fatalf("response %q needs an id and exactly one of result and error", line)
			}
			if hasError {
				var e struct {
					Code    *int    `json:"code"`
					Message *string `json:"message"`
				}
				if err := json.Unmarshal(rawErr, &e); err != nil || e.Code == nil || e.Message == nil || *e.Message == "" {
					t.Fatalf("error %s needs an integer code and a message", rawErr)
				}
			}
			answered[idKey(id)] = true
		}
		for _, line := range bytes.Split(in, []byte("\n")) {
			var m map[string]json.RawMessage
			if json.Unmarshal(bytes.TrimSpace(line), &m) != nil {
				continue
			}
			var method string
			id, hasID := m["id"]
			if json.Unmarshal(m["method"], &method) != nil || method == "" || !hasID || string(id) == "null" || (id[0] != '"' && (id[0] < '0' || id[0] > '9') && id[0] != '-') {
				continue
			}
			if !answered[idKey(id)] {
				t.Fatalf("request %q has no answer; the server wrote:\n%s", line, out.String())
			}
		}
	})
}

// idKey normalises a JSON-RPC id, as the server may re-encode it.
func idKey(id json.RawMessage) string {
	var v any
	_ = json.Unmarshal(id, &v)
	b, _ := json.Marshal(v)
	return string(b)
}
