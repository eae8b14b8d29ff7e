package mcptools

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
)

// resultText turns a tools/call result into the text the model sees: text
// parts and the text of embedded resources as they are, one line naming
// each image, audio clip, binary resource or resource link, and the
// structuredContent as JSON when no part carried text. Parts are joined by
// newlines.
func resultText(r *mcp.CallToolResult) string {
	var lines []string
	hasText := false
	for _, c := range r.Content {
		switch c := c.(type) {
		case mcp.TextContent:
			lines = append(lines, c.Text)
			hasText = true
		case mcp.ImageContent:
			lines = append(lines, fmt.Sprintf("[image: %s, %d bytes]", orUnknown(c.MIMEType), base64Len(c.Data)))
		case mcp.AudioContent:
			lines = append(lines, fmt.Sprintf("[audio: %s, %d bytes]", orUnknown(c.MIMEType), base64Len(c.Data)))
		case mcp.EmbeddedResource:
			switch res := c.Resource.(type) {
			case mcp.TextResourceContents:
				lines = append(lines, res.Text)
				hasText = true
			case mcp.BlobResourceContents:
				lines = append(lines, fmt.Sprintf("[resource: %s, %s, %d bytes]", res.URI, orUnknown(res.MIMEType), base64Len(res.Blob)))
			default:
				lines = append(lines, "[resource]")
			}
		case mcp.ResourceLink:
			line := "[resource link: " + c.URI
			if c.MIMEType != "" {
				line += ", " + c.MIMEType
			}
			if c.Name != "" {
				line += ", " + c.Name
			}
			lines = append(lines, line+"]")
		default:
			lines = append(lines, fmt.Sprintf("[%T content]", c))
		}
	}
	if !hasText {
		if s := structuredJSON(r); s != "" {
			lines = append(lines, s)
		}
	}
	return strings.Join(lines, "\n")
}

func structuredJSON(r *mcp.CallToolResult) string {
	if len(r.RawStructuredContent) > 0 && string(r.RawStructuredContent) != "null" {
		return string(r.RawStructuredContent)
	}
	if r.StructuredContent == nil {
		return ""
	}
	b, err := json.Marshal(r.StructuredContent)
	if err != nil {
		return ""
	}
	return string(b)
}

func orUnknown(mime string) string {
	if mime == "" {
		return "unknown type"
	}
	return mime
}

// base64Len is the decoded size of standard or URL base64 s, padded or
// not, ignoring whitespace.
func base64Len(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '=', ' ', '\n', '\r', '\t':
		default:
			n++
		}
	}
	return n * 3 / 4
}
