package mcptools

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentd/agentd/internal/agent"
)

// MaxToolNameLen is the OpenAI function-name limit.
const MaxToolNameLen = 64

// hashLen is the length of the "_" + hex suffix of a shortened or
// disambiguated name.
const hashLen = 1 + 8

// Sanitize replaces every character outside [a-zA-Z0-9_] with "_", one
// "_" per character (not per byte), as Agentao does.
func Sanitize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// ToolName is the agent-side name of tool on server before duplicates are
// resolved: mcp_<server>_<tool>, sanitised. A name longer than 64 is cut to
// 55 characters and given "_" and 8 hex digits of a hash of the server and
// tool names, so that it stays unique and stable.
func ToolName(server, tool string) string {
	name := Sanitize("mcp_" + server + "_" + tool)
	if len(name) <= MaxToolNameLen {
		return name
	}
	return withHash(name, server, tool, 0)
}

func withHash(name, server, tool string, n int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d", server, tool, n))
	keep := min(len(name), MaxToolNameLen-hashLen)
	return name[:keep] + "_" + hex.EncodeToString(sum[:4])
}

// toolRef names one tool of one server.
type toolRef struct {
	server, tool string
}

// assignNames returns the agent-side name of each ref. Names are
// ToolName's, except where two refs get the same one: it goes to the ref
// whose name needed no change (tool "a_b" keeps mcp_s_a_b over "a-b"),
// else to the first by (server, tool) in byte order, and the others get a
// hash suffix as in ToolName. The result depends only on the set of refs,
// not on their order.
func assignNames(refs []toolRef) []string {
	order := make([]int, len(refs))
	for i := range order {
		order[i] = i
	}
	verbatim := func(r toolRef) int { // 0 sorts first
		if ToolName(r.server, r.tool) == "mcp_"+r.server+"_"+r.tool {
			return 0
		}
		return 1
	}
	slices.SortFunc(order, func(a, b int) int {
		ra, rb := refs[a], refs[b]
		return cmp.Or(cmp.Compare(verbatim(ra), verbatim(rb)),
			cmp.Compare(ra.server, rb.server), cmp.Compare(ra.tool, rb.tool))
	})
	// Plain names are claimed first, so that a hashed name never takes a
	// plain name from a later ref.
	names := make([]string, len(refs))
	used := make(map[string]bool, len(refs))
	var clashed []int
	for _, i := range order {
		n := ToolName(refs[i].server, refs[i].tool)
		if used[n] {
			clashed = append(clashed, i)
			continue
		}
		used[n] = true
		names[i] = n
	}
	for _, i := range clashed {
		base := ToolName(refs[i].server, refs[i].tool)
		for k := 1; ; k++ {
			n := withHash(base, refs[i].server, refs[i].tool, k)
			if !used[n] {
				used[n] = true
				names[i] = n
				break
			}
		}
	}
	return names
}

// emptySchema is the parameters of a tool without an input schema.
var emptySchema = json.RawMessage(`{"type":"object","properties":{}}`)

// toolDef is what agentd keeps of one tool of a server's tools/list.
type toolDef struct {
	remote      string // the server's name for it
	description string
	params      json.RawMessage
	readOnly    bool // annotations.readOnlyHint == true
	destructive bool // annotations.destructiveHint == true
}

func newToolDef(t mcp.Tool) (toolDef, string) {
	d := toolDef{
		remote:      t.Name,
		description: t.Description,
		readOnly:    t.Annotations.ReadOnlyHint != nil && *t.Annotations.ReadOnlyHint,
		destructive: t.Annotations.DestructiveHint != nil && *t.Annotations.DestructiveHint,
	}
	if d.description == "" {
		d.description = cmp.Or(t.Title, t.Annotations.Title, t.Name)
	}
	params, warn := schemaOf(t.InputSchema)
	d.params = params
	return d, warn
}

// schemaOf returns the tool's input schema as a JSON Schema object, or
// emptySchema when it has none; warn says why a schema was replaced.
func schemaOf(s mcp.ToolInputSchema) (params json.RawMessage, warn string) {
	switch s.Type {
	case "":
		if len(s.Properties) == 0 && len(s.Required) == 0 {
			return emptySchema, ""
		}
		s.Type = "object"
	case "object":
	default:
		return emptySchema, fmt.Sprintf("inputSchema has type %q, not object: the tool gets no parameters", s.Type)
	}
	b, err := json.Marshal(s)
	if err != nil {
		return emptySchema, fmt.Sprintf("inputSchema does not encode: %v", err)
	}
	return b, ""
}

// spec is the agent's view of d on a server called server with the given
// trust, named name.
func (d toolDef) spec(name, server string, trust bool) agent.ToolSpec {
	s := agent.ToolSpec{
		Name:        name,
		Description: "[MCP:" + server + "] " + d.description,
		Parameters:  d.params,
	}
	// MCP defines destructiveHint only for tools that are not read-only
	// (mcp-go's NewTool sends readOnlyHint false, destructiveHint true
	// unless told otherwise).
	switch {
	case !trust:
		// An untrusted server's hints are its own claims: ignore them.
		s.Confirm = true
	case d.readOnly:
		s.ReadOnly = true
	case d.destructive:
		s.Confirm = true
	}
	return s
}
