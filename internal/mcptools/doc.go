// Package mcptools is agentd's MCP client: it reads .agentao/mcp.json,
// connects the servers it names and offers their tools to the agent as
// agent.Tool values. It is the only importer of github.com/mark3labs/mcp-go.
// How it behaves (transports, tool names, trust and confirmation, calls,
// results, retries, process lifecycle) is in docs/mcp.md.
//
// [Parse] reads Agentao's format and fails closed, reporting every problem
// with its field and line as a *[ConfigError]. [New] returns a [Manager]
// for one tenant's servers: the caller makes one per tenant and never shares
// it, because a server's process, environment (tokens) and directory belong
// to that tenant. [Manager.Start] connects every server concurrently within
// its startup timeout; [Manager.Tools] returns the tools of the connected
// servers; [Manager.Close] ends every server and reaps its processes. A
// Manager is safe for concurrent use.
package mcptools
