// Package llmtest is a scriptable fake of an OpenAI-compatible chat-completions
// server, for tests of every package and for end-to-end runs of the real
// agentd binary (see cmd/fakellm).
//
// It speaks the wire format go-openai and real providers use, without sharing
// code with the client: POST /v1/chat/completions, streamed as Server-Sent
// Events (Content-Type text/event-stream, one "data: <chat.completion.chunk>"
// frame per piece, flushed as it is written, a first frame with role
// "assistant", an optional usage frame with empty choices when the request set
// stream_options.include_usage, then "data: [DONE]") or as one
// chat.completion JSON object when stream is false; and GET /v1/models.
// Errors are OpenAI-shaped: {"error": {"message", "type", "param", "code"}}.
//
// Like the real API, the fake rejects, with HTTP 400, a request without a model
// or messages, a message without content (an assistant message with tool_calls
// may omit it), a tool message that does not answer a tool call of the
// assistant message before it, and an assistant tool_calls message whose calls
// are not all answered before the next non-tool message. Such a request is
// still recorded but consumes no reply.
//
// # Scripting
//
// Each chat request takes its reply from, in order: the queue filled by
// [Server.Enqueue], else the responder set by [Server.SetResponder], else
// [DefaultResponder]. [Server.Requests] returns what the server received.
// A Server is safe for concurrent use.
//
// # Directives of the default responder
//
// DefaultResponder is deterministic and reads directives in the last user
// message, so that the real binary can be driven end to end without per-test
// scripting:
//
//	[[tool NAME {json args}]]  call tool NAME with these arguments (an object;
//	                           "{}" when omitted). Several tool directives make
//	                           parallel calls. Only while no tool result follows
//	                           that user message.
//	[[error CODE]]             answer HTTP CODE (400-599) with an OpenAI error.
//	[[sleep DURATION]]         open the stream, then wait DURATION (Go syntax:
//	                           "2s", "150ms") before the first content chunk.
//	[[hang]]                   open the stream, then send nothing more until the
//	                           client goes away or the server closes.
//
// Otherwise the reply is "echo: TEXT", TEXT being the last user message with
// the directives and <system-reminder> blocks removed and surrounding space
// trimmed. Once a tool result
// follows the last user message, the reply is "tool said: RESULT", RESULT being
// the first 200 characters of the last tool message. Unknown or malformed
// directives are left in the text. The same grammar is in [Directives].
package llmtest
