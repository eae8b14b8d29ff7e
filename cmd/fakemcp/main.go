// Command fakemcp is a small MCP server over stdio for agentd's end-to-end
// tests (see internal/mcptools/mcptest for its tools). List it in
// .agentao/mcp.json as {"mcpServers": {"fake": {"command": "/path/to/fakemcp"}}}.
package main

import (
	"fmt"
	"os"

	"github.com/agentd/agentd/internal/mcptools/mcptest"
)

func main() {
	if err := mcptest.ServeStdio(); err != nil {
		fmt.Fprintln(os.Stderr, "fakemcp:", err)
		os.Exit(1)
	}
}
