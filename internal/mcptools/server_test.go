package mcptools

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// serverModeEnv makes the test binary an MCP server on stdio: "stdio" is
// the mcp-go test server, "raw" a hand-written JSON-RPC one, "stubborn"
// the raw one ignoring SIGTERM and the end of its stdin.
const serverModeEnv = "MCPTOOLS_TEST_SERVER"

func TestMain(m *testing.M) {
	switch os.Getenv(serverModeEnv) {
	case "":
		os.Exit(m.Run())
	case "stdio":
		fmt.Fprintln(os.Stderr, "test MCP server: serving stdio")
		if err := mcpserver.ServeStdio(newTestServer(3)); err != nil {
			fmt.Fprintln(os.Stderr, "test MCP server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	case "raw":
		os.Exit(serveRaw(os.Stdin, os.Stdout))
	case "stubborn":
		// Ignores SIGTERM and outlives its stdin: only SIGKILL ends it.
		signal.Ignore(syscall.SIGTERM)
		serveRaw(os.Stdin, os.Stdout)
		select {}
	default:
		fmt.Fprintln(os.Stderr, "unknown", serverModeEnv)
		os.Exit(2)
	}
}

// imageBytes is the size of the image tool's picture.
const imageBytes = 1234

// newTestServer is the in-repo MCP server: echo, add, fail (isError),
// slow (blocks until canceled), image, peek (readOnlyHint), wipe
// (destructiveHint), env, structured, resource, pid, add_tool (announces
// tools/list_changed), with tools/list pages of pageSize.
func newTestServer(pageSize int) *mcpserver.MCPServer {
	s := mcpserver.NewMCPServer("mcptools-test", "1.0.0",
		mcpserver.WithToolCapabilities(true),
		mcpserver.WithPaginationLimit(pageSize))
	text := mcp.NewToolResultText
	s.AddTool(mcp.NewTool("echo", mcp.WithDescription("Echoes text."), mcp.WithString("text", mcp.Required()),
		mcp.WithDestructiveHintAnnotation(false)),
		func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return text("echo: " + r.GetString("text", "")), nil
		})
	s.AddTool(mcp.NewTool("add", mcp.WithDescription("Adds a and b."), mcp.WithNumber("a", mcp.Required()), mcp.WithNumber("b", mcp.Required())),
		func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return text(fmt.Sprint(r.GetFloat("a", 0) + r.GetFloat("b", 0))), nil
		})
	s.AddTool(mcp.NewTool("fail", mcp.WithDescription("Always fails.")),
		func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultError("it failed on purpose"), nil
		})
	s.AddTool(mcp.NewTool("slow", mcp.WithDescription("Runs until canceled."), mcp.WithString("marker")),
		func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if m := r.GetString("marker", ""); m != "" {
				_ = os.WriteFile(m, []byte("started"), 0o600)
			}
			<-ctx.Done()
			return nil, ctx.Err()
		})
	s.AddTool(mcp.NewTool("image", mcp.WithDescription("Returns a picture.")),
		func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			data := base64.StdEncoding.EncodeToString(make([]byte, imageBytes))
			return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewImageContent(data, "image/png")}}, nil
		})
	s.AddTool(mcp.NewTool("peek", mcp.WithDescription("Reads."), mcp.WithReadOnlyHintAnnotation(true)),
		func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return text("peeked"), nil
		})
	s.AddTool(mcp.NewTool("wipe", mcp.WithDescription("Destroys."), mcp.WithDestructiveHintAnnotation(true)),
		func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return text("wiped"), nil
		})
	s.AddTool(mcp.NewTool("env", mcp.WithDescription("Reports environment variables."), mcp.WithArray("names", mcp.WithStringItems())),
		func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var lines []string
			for _, n := range r.GetStringSlice("names", nil) {
				if v, ok := os.LookupEnv(n); ok {
					lines = append(lines, n+"="+v)
				} else {
					lines = append(lines, n+" unset")
				}
			}
			wd, _ := os.Getwd()
			lines = append(lines, "cwd="+wd)
			return text(strings.Join(lines, "\n")), nil
		})
	s.AddTool(mcp.NewTool("structured", mcp.WithDescription("Structured content only.")),
		func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{}, StructuredContent: map[string]any{"answer": 42}}, nil
		})
	s.AddTool(mcp.NewTool("resource", mcp.WithDescription("Embedded resources.")),
		func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{
				mcp.NewEmbeddedResource(mcp.TextResourceContents{URI: "file:///a.txt", MIMEType: "text/plain", Text: "resource text"}),
				mcp.NewEmbeddedResource(mcp.BlobResourceContents{URI: "file:///b.bin", MIMEType: "application/octet-stream", Blob: "AAECAw=="}),
			}}, nil
		})
	s.AddTool(mcp.NewTool("pid", mcp.WithDescription("Process id.")),
		func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return text(fmt.Sprint(os.Getpid())), nil
		})
	s.AddTool(mcp.NewTool("add_tool", mcp.WithDescription("Adds a tool."), mcp.WithString("name", mcp.Required())),
		func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			name := r.GetString("name", "")
			mcpserver.ServerFromContext(ctx).AddTool(mcp.NewTool(name, mcp.WithDescription("Added later.")),
				func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
					return text("I am " + name), nil
				})
			return text("added " + name), nil
		})
	return s
}

// testToolNames are newTestServer's tools.
var testToolNames = []string{"echo", "add", "fail", "slow", "image", "peek", "wipe", "env", "structured", "resource", "pid", "add_tool"}

// startHTTP serves srv over Streamable HTTP on 127.0.0.1.
func startHTTP(t *testing.T, srv *mcpserver.MCPServer) string {
	t.Helper()
	ts := httptest.NewServer(mcpserver.NewStreamableHTTPServer(srv))
	t.Cleanup(ts.Close)
	return ts.URL + "/mcp"
}

// startSSE serves srv over the HTTP+SSE transport on 127.0.0.1.
func startSSE(t *testing.T, srv *mcpserver.MCPServer) string {
	t.Helper()
	sse := mcpserver.NewSSEServer(srv, mcpserver.WithUseFullURLForMessageEndpoint(false))
	ts := httptest.NewServer(sse)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sse.Shutdown(ctx)
		ts.Close()
	})
	return ts.URL + "/sse"
}

// serveRaw is a hand-written MCP server on the legacy handshake, for what
// mcp-go's server does not do:
//   - it sends notifications/tools/list_changed before the initialize
//     response (as server-everything does);
//   - it rejects server/discover;
//   - tools/list returns RAW_PAGES pages of one tool each, and with
//     RAW_CURSOR_LOOP=1 the cursor never changes;
//   - of the calls "first" and "second", the one that comes first is held
//     until the other has been answered, so responses arrive out of order.
func serveRaw(in *os.File, out *os.File) int {
	pages := 2
	fmt.Sscan(os.Getenv("RAW_PAGES"), &pages)
	loop := os.Getenv("RAW_CURSOR_LOOP") == "1"
	var mu sync.Mutex
	send := func(v any) {
		b, _ := json.Marshal(v)
		mu.Lock()
		defer mu.Unlock()
		out.Write(append(b, '\n'))
	}
	var held json.RawMessage
	var heldName string
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		}
		if json.Unmarshal(sc.Bytes(), &msg) != nil || msg.ID == nil {
			continue // notifications
		}
		result := func(r any) { send(map[string]any{"jsonrpc": "2.0", "id": msg.ID, "result": r}) }
		switch msg.Method {
		case "initialize":
			send(map[string]any{"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
			result(map[string]any{
				"protocolVersion": "2025-06-18",
				"capabilities":    map[string]any{"tools": map[string]any{"listChanged": true}},
				"serverInfo":      map[string]any{"name": "raw", "version": "1"},
			})
		case "tools/list":
			var p struct {
				Cursor string `json:"cursor"`
			}
			json.Unmarshal(msg.Params, &p)
			n := 0
			fmt.Sscan(p.Cursor, &n)
			tool := map[string]any{"name": fmt.Sprintf("t%d", n), "inputSchema": map[string]any{"type": "object"}}
			if n == 0 {
				tool = map[string]any{"name": "first", "inputSchema": map[string]any{"type": "object"}}
			}
			if n == 1 {
				tool = map[string]any{"name": "second", "inputSchema": map[string]any{"type": "object"}}
			}
			r := map[string]any{"tools": []any{tool}}
			switch {
			case loop:
				r["nextCursor"] = "1"
			case n+1 < pages:
				r["nextCursor"] = fmt.Sprint(n + 1)
			}
			result(r)
		case "tools/call":
			var p struct {
				Name string `json:"name"`
			}
			json.Unmarshal(msg.Params, &p)
			textResult := func(s string) map[string]any {
				return map[string]any{"content": []any{map[string]any{"type": "text", "text": s}}}
			}
			switch p.Name {
			case "first", "second":
				if held == nil {
					held, heldName = msg.ID, p.Name
					break
				}
				result(textResult(p.Name + " done"))
				send(map[string]any{"jsonrpc": "2.0", "id": held, "result": textResult(heldName + " done")})
				held = nil
			default:
				result(textResult("called " + p.Name))
			}
		case "ping":
			result(map[string]any{})
		default:
			send(map[string]any{"jsonrpc": "2.0", "id": msg.ID, "error": map[string]any{"code": -32601, "message": "Method not found"}})
		}
	}
	return 0
}
