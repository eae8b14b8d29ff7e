package mcptools

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

func TestToolName(t *testing.T) {
	long := strings.Repeat("x", 80)
	cases := []struct {
		server, tool, want string
	}{
		{"github", "get_issue", "mcp_github_get_issue"},
		{"everything", "get-sum", "mcp_everything_get_sum"},
		{"my.db", "run query", "mcp_my_db_run_query"},
		{"s", "héllo/wörld", "mcp_s_h_llo_w_rld"}, // one "_" per character, not per byte
		{"s", "a:b@c", "mcp_s_a_b_c"},
		{"s", strings.Repeat("a", 58), "mcp_s_" + strings.Repeat("a", 58)}, // exactly 64
	}
	for _, c := range cases {
		if got := ToolName(c.server, c.tool); got != c.want {
			t.Errorf("ToolName(%q, %q) = %q; want %q", c.server, c.tool, got, c.want)
		}
	}

	a, b := ToolName("s", long+"1"), ToolName("s", long+"2")
	for _, n := range []string{a, b} {
		if len(n) != MaxToolNameLen || !strings.HasPrefix(n, "mcp_s_xxx") {
			t.Errorf("long name %q: len %d", n, len(n))
		}
	}
	if a == b {
		t.Errorf("two long names that differ only after the cut are equal: %q", a)
	}
	if ToolName("s", long+"1") != a {
		t.Error("the shortened name is not stable")
	}
	if n := ToolName("s", strings.Repeat("a", 59)); len(n) != MaxToolNameLen {
		t.Errorf("65-character name shortened to %d", len(n))
	}
}

func TestAssignNamesResolvesDuplicates(t *testing.T) {
	refs := []toolRef{
		{"s", "a.b"}, {"s", "a-b"}, {"s", "a_b"}, {"t", "x"}, {"s", "a b"},
	}
	got := assignNames(refs)
	seen := map[string]bool{}
	for i, n := range got {
		if seen[n] {
			t.Fatalf("duplicate name %q in %v", n, got)
		}
		seen[n] = true
		if len(n) > MaxToolNameLen || Sanitize(n) != n {
			t.Errorf("name %q (for %v) is not a valid function name", n, refs[i])
		}
	}
	// The tool whose name needed no change keeps the plain name.
	if got[2] != "mcp_s_a_b" {
		t.Errorf("plain name did not go to s/a_b: %v -> %v", refs, got)
	}
	if got[3] != "mcp_t_x" {
		t.Errorf("unrelated tool renamed: %q", got[3])
	}
	// The same set in another order gives the same names.
	rev := []toolRef{refs[4], refs[3], refs[2], refs[1], refs[0]}
	got2 := assignNames(rev)
	for i := range rev {
		if got2[i] != got[4-i] {
			t.Errorf("names depend on order: %v vs %v", got, got2)
		}
	}
	// Without a verbatim name, the first in byte order keeps it:
	// "a b" < "a-b" < "a.b".
	got3 := assignNames([]toolRef{{"s", "a.b"}, {"s", "a b"}, {"s", "a-b"}})
	if got3[1] != "mcp_s_a_b" || got3[0] == got3[2] {
		t.Errorf("names = %v", got3)
	}
	// Two servers whose names sanitise alike: distinct names too.
	got4 := assignNames([]toolRef{{"my-db", "q"}, {"my.db", "q"}})
	if got4[0] != "mcp_my_db_q" || got4[1] == got4[0] || len(got4[1]) > MaxToolNameLen {
		t.Errorf("names = %v", got4)
	}
}

func TestSpecFlags(t *testing.T) {
	yes, no := true, false
	cases := []struct {
		name                  string
		trust                 bool
		readOnly, destructive *bool
		wantReadOnly, confirm bool
	}{
		{"untrusted, no hints", false, nil, nil, false, true},
		{"untrusted, readOnly hint ignored", false, &yes, &no, false, true},
		{"trusted, no hints", true, nil, nil, false, false},
		{"trusted, readOnly", true, &yes, nil, true, false},
		{"trusted, readOnly wins over destructive (MCP: destructive only counts when not read-only)", true, &yes, &yes, true, false},
		{"trusted, destructive", true, nil, &yes, false, true},
		{"trusted, mcp-go defaults (readOnly false, destructive true)", true, &no, &yes, false, true},
		{"trusted, explicitly harmless", true, &no, &no, false, false},
	}
	for _, c := range cases {
		tool := mcp.Tool{Name: "t", Description: "does t", Annotations: mcp.ToolAnnotation{ReadOnlyHint: c.readOnly, DestructiveHint: c.destructive}}
		d, _ := newToolDef(tool)
		s := d.spec("mcp_srv_t", "srv", c.trust)
		if s.ReadOnly != c.wantReadOnly || s.Confirm != c.confirm {
			t.Errorf("%s: ReadOnly=%v Confirm=%v; want %v %v", c.name, s.ReadOnly, s.Confirm, c.wantReadOnly, c.confirm)
		}
		if s.Name != "mcp_srv_t" || s.Description != "[MCP:srv] does t" {
			t.Errorf("%s: spec %+v", c.name, s)
		}
	}
}

func TestSchemas(t *testing.T) {
	cases := []struct {
		name, in string
		want     string // "" means emptySchema
		warn     bool
	}{
		{"missing", `{"name":"t"}`, "", false},
		{"empty", `{"name":"t","inputSchema":{}}`, "", false},
		{"object", `{"name":"t","inputSchema":{"type":"object","properties":{"q":{"type":"string","description":"query"}},"required":["q"]}}`,
			`{"properties":{"q":{"description":"query","type":"string"}},"required":["q"],"type":"object"}`, false},
		{"type omitted", `{"name":"t","inputSchema":{"properties":{"n":{"type":"number"}}}}`,
			`{"properties":{"n":{"type":"number"}},"required":[],"type":"object"}`, false},
		{"not an object", `{"name":"t","inputSchema":{"type":"string"}}`, "", true},
	}
	for _, c := range cases {
		var tool mcp.Tool
		if err := json.Unmarshal([]byte(c.in), &tool); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		d, warn := newToolDef(tool)
		want := c.want
		if want == "" {
			want = string(emptySchema)
		}
		if got := normJSON(t, d.params); got != normJSON(t, []byte(want)) {
			t.Errorf("%s: params = %s; want %s", c.name, got, want)
		}
		if (warn != "") != c.warn {
			t.Errorf("%s: warning %q", c.name, warn)
		}
	}
	// A tool without a description is described by its title or name.
	d, _ := newToolDef(mcp.Tool{Name: "bare"})
	if s := d.spec("mcp_s_bare", "s", true); s.Description != "[MCP:s] bare" {
		t.Errorf("description = %q", s.Description)
	}
}

func normJSON(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

func TestResultText(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"texts joined", `{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}`, "a\nb"},
		{"image", `{"content":[{"type":"text","text":"here"},{"type":"image","data":"AAAA","mimeType":"image/png"}]}`, "here\n[image: image/png, 3 bytes]"},
		{"audio", `{"content":[{"type":"audio","data":"AAECAw==","mimeType":"audio/wav"}]}`, "[audio: audio/wav, 4 bytes]"},
		{"embedded text", `{"content":[{"type":"resource","resource":{"uri":"file:///x","mimeType":"text/plain","text":"inside"}}]}`, "inside"},
		{"embedded blob", `{"content":[{"type":"resource","resource":{"uri":"file:///x.bin","mimeType":"application/pdf","blob":"AAEC"}}]}`, "[resource: file:///x.bin, application/pdf, 3 bytes]"},
		{"resource link", `{"content":[{"type":"resource_link","uri":"file:///r","name":"r","mimeType":"text/csv"}]}`, "[resource link: file:///r, text/csv, r]"},
		{"structured only", `{"content":[],"structuredContent":{"n":1}}`, `{"n":1}`},
		{"structured with an image", `{"content":[{"type":"image","data":"AA==","mimeType":"image/gif"}],"structuredContent":{"n":1}}`, "[image: image/gif, 1 bytes]\n{\"n\":1}"},
		{"structured ignored when text", `{"content":[{"type":"text","text":"t"}],"structuredContent":{"n":1}}`, "t"},
		{"empty", `{"content":[]}`, ""},
	}
	for _, c := range cases {
		raw := json.RawMessage(c.in)
		r, err := mcp.ParseCallToolResult(&raw)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := resultText(r); got != c.want {
			t.Errorf("%s: %q; want %q", c.name, got, c.want)
		}
	}
}

func TestReadLine(t *testing.T) {
	r := bufio.NewReaderSize(strings.NewReader("short\n"+strings.Repeat("x", 100)+"\nafter\nlast"), 16)
	want := []struct {
		line      string
		truncated bool
	}{
		{"short\n", false}, {strings.Repeat("x", 20), true}, {"after\n", false}, {"last", false},
	}
	for i, w := range want {
		line, truncated, err := readLine(r, 20)
		if string(line) != w.line || truncated != w.truncated {
			t.Fatalf("line %d = %q, %v, %v; want %q, %v", i, line, truncated, err, w.line, w.truncated)
		}
	}
}
