package agent

import (
	"context"
	"encoding/json"
)

// Tool is something the model can call. Implementations must be safe for
// concurrent use by different turns; one turn never runs two calls of the
// same tool at once.
//
// A failure the model should see (file not found, command failed) is returned
// as an error: the loop turns it into the tool's result text and goes on.
type Tool interface {
	Spec() ToolSpec
	Run(ctx context.Context, c Call) (string, error)
}

// Call is one validated invocation of a tool.
type Call struct {
	ID   string
	Name string
	Args json.RawMessage // a JSON object
	// Output streams partial output (shell stdout/stderr) to the client as
	// tool_output events. Never nil.
	Output func(chunk string)
}
