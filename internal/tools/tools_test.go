package tools_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/tools"
)

// newSet returns a Set on a fresh workspace and the workspace's path. Shell
// commands get a long inactivity timeout unless cfg says otherwise, so only
// the tests about timeouts ever hit one.
func newSet(t *testing.T, cfg tools.Config) (*tools.Set, string) {
	t.Helper()
	dir := t.TempDir()
	if cfg.ShellInactivityTimeout == 0 {
		cfg.ShellInactivityTimeout = time.Hour
	}
	if cfg.KillGrace == 0 {
		cfg.KillGrace = 200 * time.Millisecond
	}
	s, err := tools.New(dir, cfg)
	if err != nil {
		t.Fatalf("New(%q) error: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return s, dir
}

func toolNamed(t *testing.T, s *tools.Set, name string) agent.Tool {
	t.Helper()
	for _, tl := range s.Tools() {
		if tl.Spec().Name == name {
			return tl
		}
	}
	t.Fatalf("no tool %q", name)
	return nil
}

// run calls tool name with args (marshalled to JSON).
func run(t *testing.T, s *tools.Set, name string, args map[string]any) (string, error) {
	t.Helper()
	return runCtx(t.Context(), t, s, name, args, func(string) {})
}

func runCtx(ctx context.Context, t *testing.T, s *tools.Set, name string, args map[string]any, output func(string)) (string, error) {
	t.Helper()
	raw, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	return toolNamed(t, s, name).Run(ctx, agent.Call{ID: "call_1", Name: name, Args: raw, Output: output})
}

// mustRun is run for calls that must succeed.
func mustRun(t *testing.T, s *tools.Set, name string, args map[string]any) string {
	t.Helper()
	got, err := run(t, s, name, args)
	if err != nil {
		t.Fatalf("%s(%v) error: %v", name, args, err)
	}
	return got
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestToolsOrderAndFlags(t *testing.T) {
	s, _ := newSet(t, tools.Config{})
	tests := []struct {
		name             string
		readOnly, ask    bool
		required         []string
		defaults         map[string]any // property -> default; nil value: no default
		additionalParams []string       // properties without a default
	}{
		{tools.ReadFile, true, false, []string{"file_path"}, nil, []string{"file_path", "offset", "limit"}},
		{tools.WriteFile, false, true, []string{"file_path", "content"}, map[string]any{"append": false}, []string{"file_path", "content"}},
		{tools.Replace, false, true, []string{"file_path", "old_text", "new_text"}, map[string]any{"replace_all": false}, []string{"file_path", "old_text", "new_text"}},
		{tools.ListDirectory, true, false, []string{}, map[string]any{"directory_path": ".", "recursive": false}, nil},
		{tools.Glob, true, false, []string{"pattern"}, map[string]any{"directory": "."}, []string{"pattern"}},
		{tools.SearchFileContent, true, false, []string{"pattern"},
			map[string]any{"file_pattern": "**/*", "directory": ".", "case_sensitive": true, "regex": false}, []string{"pattern"}},
		{tools.RunShellCommand, false, true, []string{"command"},
			map[string]any{"timeout": 3600.0, "is_background": false}, []string{"command", "description", "working_directory"}},
	}
	var gotNames, wantNames []string
	for _, tl := range s.Tools() {
		gotNames = append(gotNames, tl.Spec().Name)
	}
	for _, tc := range tests {
		wantNames = append(wantNames, tc.name)
	}
	if !slices.Equal(gotNames, wantNames) {
		t.Fatalf("tool names = %v; want %v", gotNames, wantNames)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sp := toolNamed(t, s, tc.name).Spec()
			if sp.ReadOnly != tc.readOnly || sp.Confirm != tc.ask {
				t.Errorf("ReadOnly, Confirm = %v, %v; want %v, %v", sp.ReadOnly, sp.Confirm, tc.readOnly, tc.ask)
			}
			if sp.Description == "" {
				t.Error("empty description")
			}
			var sch struct {
				Type       string `json:"type"`
				Properties map[string]struct {
					Type        string `json:"type"`
					Description string `json:"description"`
					Default     any    `json:"default"`
				} `json:"properties"`
				Required []string `json:"required"`
			}
			if err := json.Unmarshal(sp.Parameters, &sch); err != nil {
				t.Fatalf("parameters %s: %v", sp.Parameters, err)
			}
			if sch.Type != "object" {
				t.Errorf("type = %q; want object", sch.Type)
			}
			if !slices.Equal(sch.Required, tc.required) || sch.Required == nil {
				t.Errorf("required = %#v; want %#v", sch.Required, tc.required)
			}
			for prop, want := range tc.defaults {
				p, ok := sch.Properties[prop]
				if !ok {
					t.Errorf("no property %q", prop)
					continue
				}
				if p.Default != want {
					t.Errorf("%s default = %#v; want %#v", prop, p.Default, want)
				}
			}
			for _, prop := range tc.additionalParams {
				if p, ok := sch.Properties[prop]; !ok || p.Description == "" || p.Type == "" {
					t.Errorf("property %q missing or undocumented: %+v", prop, p)
				}
			}
		})
	}
}

func TestShellTimeoutDefaultFollowsConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  tools.Config
		want float64
	}{
		{tools.Config{}, 120},
		{tools.Config{ShellInactivityTimeout: 30 * time.Second}, 30},
	} {
		s, err := tools.New(t.TempDir(), tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		var sch struct {
			Properties map[string]struct{ Default any } `json:"properties"`
		}
		if err := json.Unmarshal(toolNamed(t, s, tools.RunShellCommand).Spec().Parameters, &sch); err != nil {
			t.Fatal(err)
		}
		if got := sch.Properties["timeout"].Default; got != tc.want {
			t.Errorf("Config%+v: timeout default = %v; want %v", tc.cfg, got, tc.want)
		}
		s.Close()
	}
}

func TestNewRefusesMissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	if s, err := tools.New(dir, tools.Config{}); err == nil {
		s.Close()
		t.Fatalf("New(%q) error = nil; want an error", dir)
	}
}

func TestArguments(t *testing.T) {
	s, dir := newSet(t, tools.Config{})
	writeFiles(t, dir, map[string]string{"a.txt": "one\ntwo\nthree\n"})
	tests := []struct {
		name    string
		tool    string
		args    string
		want    string // substring of the result, or of the error if wantErr
		wantErr bool
	}{
		{"not an object", tools.ReadFile, `[1,2]`, "must be a JSON object", true},
		{"missing required", tools.ReadFile, `{}`, `"file_path" is required`, true},
		{"null is absent", tools.ReadFile, `{"file_path": null}`, `"file_path" is required`, true},
		{"wrong type", tools.ReadFile, `{"file_path": 7}`, `"file_path" must be a string`, true},
		{"fraction for integer", tools.ReadFile, `{"file_path": "a.txt", "offset": 1.5}`, `"offset" must be an integer`, true},
		{"bad boolean", tools.ListDirectory, `{"recursive": "maybe"}`, `"recursive" must be true or false`, true},
		{"integer as string", tools.ReadFile, `{"file_path": "a.txt", "offset": "2", "limit": "1"}`, "     2\ttwo", false},
		{"null optional", tools.ReadFile, `{"file_path": "a.txt", "offset": null}`, "     1\tone", false},
		{"boolean as string", tools.SearchFileContent, `{"pattern": "TWO", "case_sensitive": "false"}`, "a.txt:2: two", false},
		{"missing content", tools.WriteFile, `{"file_path": "b.txt"}`, `"content" is required`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := toolNamed(t, s, tc.tool).Run(t.Context(), agent.Call{Args: json.RawMessage(tc.args), Output: func(string) {}})
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("%s(%s) = %q, %v; want error containing %q", tc.tool, tc.args, got, err, tc.want)
				}
				return
			}
			if err != nil || !strings.Contains(got, tc.want) {
				t.Fatalf("%s(%s) = %q, %v; want result containing %q", tc.tool, tc.args, got, err, tc.want)
			}
		})
	}
}

func TestCloseIsIdempotentAndFinal(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.txt": "x"})
	s, err := tools.New(dir, tools.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close() = %v", err)
	}
	for _, tl := range s.Tools() {
		_, err := tl.Run(t.Context(), agent.Call{Args: json.RawMessage(`{"file_path":"a.txt","pattern":"*","command":"true"}`), Output: func(string) {}})
		if !errors.Is(err, tools.ErrClosed) {
			t.Errorf("%s after Close: error = %v; want ErrClosed", tl.Spec().Name, err)
		}
	}
}

func TestCancelledContextRunsNothing(t *testing.T) {
	s, dir := newSet(t, tools.Config{})
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(agent.Cancelled(agent.ReasonUserCancel))
	_, err := runCtx(ctx, t, s, tools.WriteFile, map[string]any{"file_path": "a.txt", "content": "x"}, func(string) {})
	if err == nil || !strings.Contains(err.Error(), agent.ReasonUserCancel) {
		t.Fatalf("write_file with a cancelled context: error = %v; want one naming %q", err, agent.ReasonUserCancel)
	}
	if _, err := os.Stat(filepath.Join(dir, "a.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a.txt exists after a cancelled call (stat error %v)", err)
	}
}
