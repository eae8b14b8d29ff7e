// Package acp serves the Agent Client Protocol (ACP v1) over agentd's
// session pool, so that ACP clients (editors, the official SDKs) drive the
// same sessions as the HTTP API.
//
// # Transports
//
// A connection is JSON-RPC 2.0 over a Transport: NDJSON over stdio
// (NewStdio, for `agentd acp`: one compact message per line, nothing else
// on stdout) or one message per WebSocket text frame (Server.Handler, for
// GET /v1/acp). A connection acts for one tenant and end user (a Peer):
// over WebSocket the API key ("Authorization: Bearer <key>") names the
// tenant and X-Agentd-User (or the "user" query parameter) the user; over
// stdio the process's flags do.
//
// Requests are handled concurrently: a session/cancel, a $/cancel_request
// or the answer to a session/request_permission is handled as it arrives,
// never behind a running prompt, and responses may come out of order.
// Writes are serialised in call order, so every session/update a handler
// sends reaches the wire before its response (session/load's "replay, then
// answer"). agentd's own requests have ids "srv_<16 hex>". Errors: -32700
// unparseable (id null), -32600 not JSON-RPC 2.0, a batch, a request before
// initialize, or a session that is busy, -32601 unknown method, -32602 bad
// params, -32603 internal (details only in the log), -32002 unknown session
// (data.sessionId).
//
// # Sessions
//
// The ACP sessionId is the agentd session id: session/load works on any
// stored session of the tenant, also one made over HTTP and across
// restarts, and the HTTP API sees sessions made over ACP. session/load
// replays the whole stored history (user messages without their
// <system-reminder>, reasoning, agent text, every tool call completed with
// its arguments, every tool result) before it answers; a session whose turn
// is running cannot be loaded (-32600). Sessions are the tenant's, as in
// the HTTP API: any user of the tenant may load or cancel one.
//
// cwd must be an absolute path (POSIX or Windows: the client's machine may
// be another) but is otherwise ignored: a session works in its own
// workspace on the agentd host, DATA/workspaces/<tenant>/<session>.
// mcpServers must be an array; the client's servers are accepted and
// ignored (logged), because agentd's tools are the operator's to configure
// and a client must not start processes on a shared host. No modes are
// offered (the permission rules are the operator's, per canary cohort);
// the one config option is "model", a select over the catalog, switched
// with session/set_config_option.
//
// # Turns
//
// session/prompt takes text and resource_link blocks (a link becomes
// "[Resource: name](uri)"; other blocks are refused, as promptCapabilities
// say) and runs one turn through the pool: one at a time per session
// (-32600 otherwise), saved after every step. Its events become updates:
// llm_text → agent_message_chunk, thinking → agent_thought_chunk,
// tool_start → tool_call (pending, the model's call id, a kind from the
// tool's name), tool_output → tool_call_update (in_progress, the output's
// tail), tool_complete → tool_call_update (completed, or failed for errors,
// denials, rejections and cancels), tool_result → tool_call_update with the
// result, error → agent_message_chunk "Error: …". The stop reason follows
// Agentao: cancelled > max_turn_requests (max_iterations, doom_loop) >
// max_tokens (length_truncated) > end_turn. A cancel is never an error.
//
// A call the permission rules ask about is shown first (tool_call,
// pending), then asked with session/request_permission (Agentao's four
// options, the option id being the decision); the answer goes to the pool
// as an approval. "cancelled", an error, an unknown option or a disconnect
// rejects. The pool's approval timeout still applies; when the pool decides
// without the client (timeout, cancel, an answer over HTTP) agentd
// withdraws its request with $/cancel_request.
//
// session/cancel (a notification, or a request answered with null) cancels
// the session's running turn with reason "acp-session-cancel", whoever
// started it. When a connection ends (EOF, a closed WebSocket, a failed
// write) its running turns are cancelled with reason "connection-closed"
// and Serve returns once they are saved; Shutdown and a done Serve context
// cancel them with reason "shutdown" and answer their prompts "cancelled"
// first.
package acp
