package acp

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// JSON-RPC and ACP error codes. Append only: clients branch on them.
const (
	CodeParseError     = -32700 // the message is not JSON (id null)
	CodeInvalidRequest = -32600 // not a JSON-RPC 2.0 message, a batch, before initialize, or the session is busy
	CodeMethodNotFound = -32601 // no such method
	CodeInvalidParams  = -32602 // the params do not have the shape the method takes
	CodeInternalError  = -32603 // see the agentd log
	CodeNotFound       = -32002 // unknown session (data.sessionId names it)
)

// Error is a JSON-RPC error object.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("%s (%d)", e.Message, e.Code) }

func errInvalidParams(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidParams, Message: "Invalid params: " + fmt.Sprintf(format, args...)}
}

func errInvalidRequest(msg string) *Error {
	return &Error{Code: CodeInvalidRequest, Message: "Invalid request: " + msg}
}

func errSessionNotFound(id string) *Error {
	return &Error{Code: CodeNotFound, Message: "Resource not found: no session " + quote(id), Data: map[string]string{"sessionId": id}}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// message is any JSON-RPC message once split into its members. A request
// has a method and an id, a notification a method and no id, a response an
// id and a result or an error.
type message struct {
	ID       json.RawMessage // nil: absent (a notification); "null" is a present null id
	Method   string
	Params   json.RawMessage
	Result   json.RawMessage
	Error    *Error
	isMethod bool
}

var nullID = json.RawMessage("null")

// parse splits data into a message, or returns the error to answer with
// (and the id to answer it under, null when unknown).
func parse(data []byte) (message, json.RawMessage, *Error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		switch {
		case !json.Valid(data):
			return message{}, nullID, &Error{Code: CodeParseError, Message: "Parse error: the message is not valid JSON"}
		case bytes.HasPrefix(bytes.TrimSpace(data), []byte("[")):
			return message{}, nullID, errInvalidRequest("JSON-RPC batches are not supported")
		default:
			return message{}, nullID, errInvalidRequest("a message must be a JSON object")
		}
	}
	var m message
	if id, ok := members["id"]; ok {
		if !validID(id) {
			return message{}, nullID, errInvalidRequest("id must be a string, a number or null")
		}
		m.ID = id
	}
	answerID := m.ID
	if answerID == nil {
		answerID = nullID
	}
	var version string
	if err := json.Unmarshal(members["jsonrpc"], &version); err != nil || version != "2.0" {
		return message{}, answerID, errInvalidRequest(`"jsonrpc" must be "2.0"`)
	}
	if raw, ok := members["method"]; ok {
		if err := json.Unmarshal(raw, &m.Method); err != nil || m.Method == "" {
			return message{}, answerID, errInvalidRequest(`"method" must be a non-empty string`)
		}
		m.isMethod = true
		m.Params = members["params"]
		if len(m.Params) > 0 && m.Params[0] != '{' && !bytes.Equal(m.Params, nullID) {
			return message{}, answerID, errInvalidParams("params must be an object")
		}
		return m, answerID, nil
	}
	result, hasResult := members["result"]
	rawErr, hasError := members["error"]
	if m.ID == nil || hasResult == hasError {
		return message{}, answerID, errInvalidRequest(`a message needs a "method", or an "id" and one of "result" and "error"`)
	}
	m.Result = result
	if hasError {
		m.Error = &Error{}
		if err := json.Unmarshal(rawErr, m.Error); err != nil {
			m.Error = &Error{Code: CodeInternalError, Message: "unreadable error object"}
		}
	}
	return m, nil, nil
}

func validID(id json.RawMessage) bool {
	if len(id) == 0 {
		return false
	}
	switch id[0] {
	case '"', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return true
	}
	return false
}

// Outgoing messages. Result has no omitempty: a null result is "result": null.
type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result"`
}

type errorResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   *Error          `json:"error"`
}

type request struct {
	JSONRPC string `json:"jsonrpc"`
	ID      string `json:"id,omitempty"` // "" for a notification
	Method  string `json:"method"`
	Params  any    `json:"params,omitempty"`
}

// encode renders v as one compact line of JSON without a trailing newline;
// encoding/json escapes newlines inside strings, so the line has none.
func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// newRequestID returns the id of a request agentd sends to the client:
// "srv_" and 16 hex digits (Agentao's shape), never a number, so it cannot
// collide with the client's own ids in logs.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "srv_" + hex.EncodeToString(b[:])
}

// decodeParams decodes params (an object, or absent) into v.
func decodeParams(params json.RawMessage, v any) *Error {
	if len(params) == 0 || bytes.Equal(params, nullID) {
		params = json.RawMessage("{}")
	}
	if err := json.Unmarshal(params, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return errInvalidParams("%s must be %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
		}
		return errInvalidParams("%v", err)
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int64", "float64":
		return "an integer"
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "map", "struct":
		return "an object"
	case "bool":
		return "a boolean"
	}
	return "of another type"
}
