// Package mcptest is a small MCP server for end-to-end tests of agentd's
// MCP client (cmd/fakemcp serves it over stdio). Its tools:
//
//   - echo {text}: answers "echo: <text>".
//   - probe {write, read}: reports what the server process can do: its
//     working directory and pid, whether OPENAI_API_KEY reached it, and the
//     outcome of writing the file `write` and reading the file `read`
//     (either may be empty), so a test can see the sandbox and the
//     environment scrub from inside.
package mcptest

import (
	"context"
	"encoding/json"
	"os"
	"sort"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Probe is the JSON answer of the probe tool.
type Probe struct {
	Dir       string   `json:"dir"`
	PID       int      `json:"pid"`
	OpenAIKey bool     `json:"openai_key"` // OPENAI_API_KEY is set
	Write     string   `json:"write"`      // "ok" or the error
	Read      string   `json:"read"`       // "ok" or the error
	Env       []string `json:"env"`        // the names of its environment variables, sorted
}

// New returns the server.
func New() *server.MCPServer {
	s := server.NewMCPServer("agentd-fakemcp", "1.0.0", server.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool("echo", mcp.WithDescription("Echoes text back."), mcp.WithString("text", mcp.Required())),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("echo: " + req.GetString("text", "")), nil
		})
	s.AddTool(mcp.NewTool("probe", mcp.WithDescription("Reports what this server process can do."),
		mcp.WithString("write"), mcp.WithString("read")),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			p := Probe{PID: os.Getpid()}
			p.Dir, _ = os.Getwd()
			_, p.OpenAIKey = os.LookupEnv("OPENAI_API_KEY")
			for _, kv := range os.Environ() {
				name, _, _ := strings.Cut(kv, "=")
				p.Env = append(p.Env, name)
			}
			sort.Strings(p.Env)
			if f := req.GetString("write", ""); f != "" {
				p.Write = outcome(os.WriteFile(f, []byte("written by fakemcp\n"), 0o644))
			}
			if f := req.GetString("read", ""); f != "" {
				_, err := os.ReadFile(f)
				p.Read = outcome(err)
			}
			b, _ := json.Marshal(p)
			return mcp.NewToolResultText(string(b)), nil
		})
	return s
}

func outcome(err error) string {
	if err != nil {
		return err.Error()
	}
	return "ok"
}

// ServeStdio serves New over stdin and stdout until stdin closes.
func ServeStdio() error { return server.ServeStdio(New()) }
