package llm

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/llm/llmtest"
)

func specs(desc, params string) []agent.ToolSpec {
	return []agent.ToolSpec{
		{Name: "read_file", Description: desc, Parameters: json.RawMessage(params)},
		{Name: "noop", Description: "no parameters"},
	}
}

func TestToolCache(t *testing.T) {
	c := newToolCache()
	first, err := c.encoded(specs("Read a file.", `{"type":"object","properties":{"file_path":{"type":"string"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"function":{"name":"read_file","description":"Read a file.","parameters":{"type":"object","properties":{"file_path":{"type":"string"}}}},"type":"function"},` +
		`{"function":{"name":"noop","description":"no parameters","parameters":{"type":"object","properties":{}}},"type":"function"}]`
	if string(first) != want {
		t.Fatalf("encoded = %s\nwant      %s", first, want)
	}

	caller := specs("Read a file.", `{"type":"object","properties":{"file_path":{"type":"string"}}}`)
	again, _ := c.encoded(caller)
	if &again[0] != &first[0] {
		t.Errorf("the same tool set was encoded again; want the cached bytes")
	}
	// The cache keeps its own copy: a caller reusing its buffer changes
	// nothing already cached.
	copy(caller[0].Parameters, `{"type":"object","properties":{"FILE_PATH":{"type":"string"}}}`)
	changed, _ := c.encoded(caller)
	if string(changed) == want {
		t.Errorf("changed parameters gave the old encoding")
	}
	if again, _ := c.encoded(specs("Read a file.", `{"type":"object","properties":{"file_path":{"type":"string"}}}`)); string(again) != want {
		t.Errorf("the first set's encoding changed: %s", again)
	}

	for _, tc := range []struct {
		name string
		set  []agent.ToolSpec
	}{
		{"description differs", specs("Read one file.", `{"type":"object"}`)},
		{"parameters differ", specs("Read a file.", `{"type":"object","required":["file_path"]}`)},
		{"one tool fewer", specs("Read a file.", `{}`)[:1]},
	} {
		got, err := c.encoded(tc.set)
		want, _ := encodeTools(tc.set)
		if err != nil || string(got) != string(want) {
			t.Errorf("%s: encoded = %s, %v; want %s", tc.name, got, err, want)
		}
	}

	if got, err := c.encoded(nil); got != nil || err != nil {
		t.Errorf("no tools = %q, %v; want nil", got, err)
	}
	if _, err := c.encoded(specs("x", `{not json`)); err == nil {
		t.Errorf("invalid parameters were encoded")
	}
	for i := range 3 * toolCacheSize {
		if _, err := c.encoded(specs(fmt.Sprint(i), `{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if c.n > toolCacheSize {
		t.Errorf("cache holds %d tool sets; the bound is %d", c.n, toolCacheSize)
	}
}

func TestBodyPatchApply(t *testing.T) {
	tools := []byte(`[{"type":"function"}]`)
	tests := []struct {
		name  string
		patch bodyPatch
		body  string
		want  string
	}{
		{"tools only", bodyPatch{tools: tools}, `{"model":"m","messages":[]}`, `{"model":"m","messages":[],"tools":[{"type":"function"}]}`},
		{"trailing newline", bodyPatch{tools: tools}, "{\"model\":\"m\"}\n", `{"model":"m","tools":[{"type":"function"}]}`},
		{"empty object", bodyPatch{tools: tools}, `{}`, `{"tools":[{"type":"function"}]}`},
		{"content and tools", bodyPatch{content: []int{0}, tools: tools},
			`{"messages":[{"role":"user"}],"model":"m"}`, `{"messages":[{"role":"user","content":""}],"model":"m","tools":[{"type":"function"}]}`},
		{"content only", bodyPatch{content: []int{0}}, `{"messages":[{"role":"user"}]}`, `{"messages":[{"content":"","role":"user"}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.patch.apply([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if !sameJSON(got, []byte(tc.want)) {
				t.Errorf("apply = %s; want %s", got, tc.want)
			}
		})
	}
	if _, err := (&bodyPatch{tools: tools}).apply([]byte(`[1]`)); err == nil {
		t.Errorf("a body that is not an object was patched")
	}
}

// TestToolSetsChangeBetweenCalls: one client, tool sets that differ from
// call to call (a skill activated, another rule version), and each call
// sends exactly its own.
func TestToolSetsChangeBetweenCalls(t *testing.T) {
	s := llmtest.NewServer(t)
	c, _ := testClient(t, s, nil)
	history := []agent.Message{{Role: agent.RoleUser, Content: "hi"}}
	sets := [][]agent.ToolSpec{
		specs("Read a file.", `{"type":"object"}`),
		specs("Read a file.", `{"type":"object"}`)[:1],
		nil,
		specs("Read a file.", `{"type":"object"}`),
	}
	for i, set := range sets {
		if _, err := c.Stream(t.Context(), agent.Request{Model: "m", Messages: history, Tools: set}, nil); err != nil {
			t.Fatal(err)
		}
		got := s.Requests()[i]
		if len(got.Tools) != len(set) {
			t.Fatalf("call %d sent %d tools; want %d", i, len(got.Tools), len(set))
		}
		if set == nil && json.Valid(got.Body) && jsonHas(got.Body, "tools") {
			t.Errorf("call %d without tools sent a tools field: %s", i, got.Body)
		}
	}
}

func jsonHas(body []byte, field string) bool {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(body, &m)
	_, ok := m[field]
	return ok
}

// sameJSON compares two JSON texts by value (object member order aside).
func sameJSON(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return mustJSON(va) == mustJSON(vb)
}
