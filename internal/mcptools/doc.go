// Package mcptools is agentd's MCP client: it reads .agentao/mcp.json,
// connects the servers it names and offers their tools to the agent as
// agent.Tool values. It is the only importer of github.com/mark3labs/mcp-go.
//
// # Configuration
//
// Parse reads Agentao's format, {"mcpServers": {"<name>": {...}}}. A server
// runs as a child process (command, args, env, cwd: stdio) or is reached
// at a URL (url, headers) over Streamable HTTP ("type": "http", also
// spelled streamable-http, streamable_http, streamablehttp) or the older
// HTTP+SSE transport ("type": "sse", which must be explicit). Without a
// type, command means stdio and url means http. "trust" (default false)
// lets the server's annotations count; "timeout" is the startup timeout in
// seconds (default 60) or {"startup": N, "request": N} (no request timeout
// by default: only the turn bounds a call). $VAR and ${VAR} are expanded
// at load from the caller's lookup; an unknown variable becomes "".
// Validation fails closed and reports every problem with its field and
// line, as a *ConfigError: a typo in a field name, an unknown type, a
// missing or doubled command/url, a bad timeout, a server name that gives
// no usable tool prefix. Merging user and project files (Agentao: user
// authoritative, project add-only) is the caller's business.
//
// # One Manager per tenant
//
// New returns a Manager for one tenant's servers; the caller creates one
// per tenant and never shares it, because a server process, its
// environment (tokens) and its working directory belong to that tenant.
// Start connects every server concurrently, each within its startup
// timeout (connect, handshake and the first tools/list). Tools returns the
// tools of the connected servers; Close ends everything.
//
// # Tool names and flags
//
// A tool is named mcp_<server>_<tool>, every character outside
// [a-zA-Z0-9_] replaced by "_" (so permission rules are written as
// regexes like mcp_github_.*). A name longer than 64 characters (the
// OpenAI limit) is cut to 55 and given "_" and 8 hex digits of a hash of
// the server and tool names, so it stays unique and does not change from
// one call to the next. When two tools still get the same name, the one
// whose name needed no change keeps it, else the first by (server, tool);
// the others get a hash suffix: the outcome depends only on the set of
// tools. The description is "[MCP:<server>] " and the server's; the
// parameters are the tool's inputSchema ({"type":"object","properties":{}}
// when it has none). tools/list is followed page by page, at most 100
// pages and 1024 tools per server; a cursor that repeats ends it.
//
// Trust decides confirmation. A tool of an untrusted server always asks
// (Confirm) and is never read-only: its annotations are its own claims and
// are ignored. On a trusted server, readOnlyHint true makes a tool
// read-only without confirmation; otherwise destructiveHint true makes it
// ask; otherwise it does not ask. (MCP's defaults are readOnlyHint false
// and destructiveHint true, and mcp-go servers send them explicitly.)
//
// # Calls
//
// A call runs tools/call with the model's JSON object, bounded by the
// turn's context and by the server's request timeout if it has one; a
// canceled context returns at once with the context's error (over stdio
// the server is sent notifications/cancelled). The result text is the text
// parts joined by newlines; an image or audio part becomes a line such as
// "[image: image/png, 1234 bytes]"; an embedded resource gives its text,
// or a line naming its URI and MIME type; structuredContent is given as
// JSON when no part carried text. A result with isError true is returned
// as an error with its text, so the agent counts a failed call. A
// transport failure returns an error that names the server and says it
// may have stopped.
//
// # Failures
//
// A server that fails is never fatal: Health reports it (state failed and
// the error, with the last lines of a stdio server's stderr), the others
// work. A failed server, and one whose connection died (its process
// exited, its SSE stream ended, a call failed in the transport), is
// reconnected in the background by a later Tools call, at most once per
// RetryInterval (30 s by default) after the previous attempt; its tools
// are back in the Tools call after it has connected. A server that sends
// notifications/tools/list_changed is listed again on the next Tools call
// (on protocol 2026-07-28 agentd asks for these notifications with
// subscriptions/listen; on earlier versions over Streamable HTTP they
// arrive only with responses, as agentd opens no standalone GET stream).
//
// # Processes
//
// A stdio server starts from the caller's base environment (os.Environ by
// default; agentd passes the sandbox's allowlist, sandbox.CommandEnv)
// without the provider keys of tools.DefaultScrubEnv and every AGENTD_* and
// *_API_KEY variable, as shell commands do, then the server's own env is
// applied on top (so an explicit GITHUB_TOKEN or SOME_API_KEY is passed). It runs in the tenant's directory (Options.Dir;
// a relative cwd is relative to it) and in its own process group. Its
// stderr is logged line by line (cut at 2 KiB, at most 300 lines a
// minute), never copied to agentd's stdout or stderr. agentd uses its own
// stdio transport rather than mcp-go's so that it owns the process: Close
// closes the server's stdin, sends SIGTERM to the whole group, SIGKILL
// after KillGrace (2 s), and reaps the child; the leader is reaped only
// after the last group signal, so a grandchild (npx's node, a shell's
// background job) cannot survive and the group id cannot have been
// reused. A server that dies by itself has its group killed and is reaped
// at once. Only a process that leaves the group (setsid) escapes; a
// cgroup or PID namespace is the wall for that. Children counts the live
// server processes for a gauge.
//
// Close cancels the calls in flight and waits for them, then closes every
// connection and returns once every child is reaped. It is idempotent, and
// the Manager's tools return ErrClosed afterwards.
package mcptools
