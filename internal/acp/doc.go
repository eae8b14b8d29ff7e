// Package acp serves the Agent Client Protocol (ACP v1) over agentd's
// session pool, so that ACP clients (editors, the official SDKs) drive the
// same sessions as the HTTP API.
//
// A Server (New) serves connections: Serve runs one over a Transport for
// a Peer, the tenant and end user it acts for. NewStdio is the transport
// of `agentd acp` (one JSON-RPC message per line; nothing else is written
// to w); Server.Handler serves GET /v1/acp over WebSocket, one message
// per text frame, and authenticates the peer itself (the API key names
// the tenant, X-Agentd-User or ?user= the user). Shutdown ends every
// connection and waits for them.
//
// The protocol is github.com/coder/acp-go-sdk's: its AgentSideConnection
// decodes each request into the SDK's types, calls agentd's handler in a
// goroutine of its own and writes the response. Between the Transport and
// the SDK a small adapter (wire.go, admit.go) does what the SDK's
// Connection lacks, each piece documented with the SDK function it makes
// up for: the size limit, answers to malformed messages, in-order
// admission of requests, and agentd's request ids.
//
// What a client sees:
//
//   - requests are handled concurrently: a session/cancel, a
//     $/cancel_request or a permission answer is never queued behind a
//     running prompt, and responses may come out of order; still, a
//     session/cancel or session/close acts on what was read before it,
//     never after;
//   - every session/update a handler sends reaches the wire before its
//     response (session/load replays the whole history, then answers);
//   - the ACP sessionId is the agentd session id: any stored session of
//     the tenant can be listed, loaded, resumed, prompted or closed, also
//     one made over HTTP or before a restart;
//   - when a connection ends its running turns are cancelled
//     ("connection-closed"), and Serve returns once they are saved;
//     Shutdown and a done Serve context cancel them with reason
//     "shutdown" and answer their prompts "cancelled" first.
//
// In a fleet (Config.Fleet), a WebSocket connection relays the requests
// about a session another replica owns to the owner, over an ACP client
// connection of the SDK opened with the client's own key and user
// (relay.go); the client sees no difference, but -32053
// (owner_unavailable) when the owner cannot be reached. Stdio serves
// this replica's sessions only.
//
// The methods, the mapping of turn events to session updates, permission
// requests, the fleet relay and the error codes are specified in
// docs/acp.md.
package acp
