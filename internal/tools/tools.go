package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/agentd/agentd/internal/agent"
)

// Defaults for the zero values of Config.
const (
	DefaultShellInactivityTimeout = 120 * time.Second
	DefaultMaxShellTimeout        = 600 * time.Second
	DefaultKillGrace              = 2 * time.Second
	DefaultMaxOutputChars         = 40000
)

// DefaultScrubEnv returns the environment variables removed from every shell
// command's environment when Config.ScrubEnv is nil: the LLM provider
// credentials Agentao scrubs (its HARNESS_ENV_KEYS). It returns a new slice.
func DefaultScrubEnv() []string {
	return []string{
		"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "AZURE_OPENAI_API_KEY",
		"DEEPSEEK_API_KEY", "MOONSHOT_API_KEY", "GROQ_API_KEY", "MISTRAL_API_KEY",
		"OPENROUTER_API_KEY", "XAI_API_KEY", "LLM_API_KEY", "LLM_EXTRA_BODY",
	}
}

// Config tunes a Set. The zero value is ready to use.
type Config struct {
	// ShellInactivityTimeout is how long a shell command may run without
	// producing output before its whole process group is killed.
	// Zero means DefaultShellInactivityTimeout (120s). The model may pass its
	// own `timeout` (seconds), capped at MaxShellTimeout.
	ShellInactivityTimeout time.Duration
	// MaxShellTimeout caps the model's `timeout` argument. Zero means
	// DefaultMaxShellTimeout (600s); it is raised to ShellInactivityTimeout
	// if that is larger.
	MaxShellTimeout time.Duration
	// KillGrace is the time between SIGTERM and SIGKILL when a process group
	// is stopped. Zero means DefaultKillGrace (2s).
	KillGrace time.Duration
	// MaxOutputChars caps the shell output returned to the model; the tail
	// is kept. Zero means DefaultMaxOutputChars (40000).
	MaxOutputChars int
	// ScrubEnv names environment variables removed from shell commands'
	// environment. Nil means DefaultScrubEnv(). Whatever it holds, every
	// variable whose name starts with AGENTD_ (the server's own secrets) or
	// ends in _API_KEY is removed too. Names compare case-insensitively.
	ScrubEnv []string
	// Env returns the environment shell commands start from, before
	// scrubbing. Nil means os.Environ.
	Env func() []string
	// TempDir, if set, is a directory relative to the workspace that is
	// made (through the workspace's os.Root, so never through a link the
	// session planted) before each shell command and exported to it as
	// TMPDIR.
	TempDir string
	// PrepareShell, if set, is called with every shell command just before
	// it starts (foreground and background), after its path, args, dir, env,
	// process group and output are set. A sandbox uses it to confine the
	// child; it must keep SysProcAttr.Setpgid so the group can be killed.
	// If it returns an error the tool refuses with that error and runs
	// nothing.
	PrepareShell func(cmd *exec.Cmd) error
	// WebFetch, if set, enables the web_fetch tool with these settings.
	// Nil means the Set has no web_fetch.
	WebFetch *WebFetchConfig
}

func (c Config) withDefaults() Config {
	if c.ShellInactivityTimeout <= 0 {
		c.ShellInactivityTimeout = DefaultShellInactivityTimeout
	}
	if c.MaxShellTimeout <= 0 {
		c.MaxShellTimeout = DefaultMaxShellTimeout
	}
	if c.MaxShellTimeout < c.ShellInactivityTimeout {
		c.MaxShellTimeout = c.ShellInactivityTimeout
	}
	if c.KillGrace <= 0 {
		c.KillGrace = DefaultKillGrace
	}
	if c.MaxOutputChars <= 0 {
		c.MaxOutputChars = DefaultMaxOutputChars
	}
	if c.ScrubEnv == nil {
		c.ScrubEnv = DefaultScrubEnv()
	}
	if c.Env == nil {
		c.Env = os.Environ
	}
	return c
}

// ErrClosed is returned by every tool of a Set after Close.
var ErrClosed = errors.New("the session's tools are closed")

// Set is the built-in tools of one session, bound to its workspace.
type Set struct {
	dir     string // absolute, cleaned workspace path, as given
	realDir string // dir with symlinks evaluated
	root    *os.Root
	cfg     Config
	tools   []agent.Tool

	done chan struct{} // closed by Close: stop every running command

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // running tool calls and background commands
}

// New returns the tools of a session whose workspace is dir, an existing
// directory. The caller must Close the Set when the session ends.
func New(dir string, cfg Config) (*Set, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("open workspace: %w", err)
	}
	s := &Set{
		dir:     abs,
		realDir: real,
		root:    root,
		cfg:     cfg.withDefaults(),
		done:    make(chan struct{}),
	}
	s.tools = []agent.Tool{
		s.newTool(readFileSpec(), s.readFile),
		s.newTool(writeFileSpec(), s.writeFile),
		s.newTool(replaceSpec(), s.replace),
		s.newTool(listDirectorySpec(), s.listDirectory),
		s.newTool(globSpec(), s.glob),
		s.newTool(searchSpec(), s.search),
		s.newTool(shellSpec(s.cfg), s.runShell),
	}
	if cfg.WebFetch != nil {
		wf := cfg.WebFetch.withDefaults()
		s.tools = append(s.tools, s.newTool(webFetchSpec(wf), s.webFetch(wf)))
	}
	return s, nil
}

// Tools returns the tools in Agentao's registration order: read_file,
// write_file, replace, list_directory, glob, search_file_content,
// run_shell_command, then web_fetch if Config.WebFetch is set.
func (s *Set) Tools() []agent.Tool {
	return append([]agent.Tool(nil), s.tools...)
}

// Close stops every shell command the Set started, foreground and background:
// each process group gets SIGTERM, then SIGKILL after Config.KillGrace, and
// is reaped. Close waits for running tool calls to return, then releases the
// workspace. Later calls of any tool return ErrClosed. Close is idempotent.
func (s *Set) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	s.mu.Unlock()
	s.wg.Wait()
	return s.root.Close()
}

// acquire registers a running call or background command; release it with
// s.wg.Done. It fails once Close has begun.
func (s *Set) acquire() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.wg.Add(1)
	return nil
}

// tool adapts one of the Set's methods to agent.Tool.
type tool struct {
	s    *Set
	spec agent.ToolSpec
	run  func(ctx context.Context, c agent.Call, a args) (string, error)
}

func (s *Set) newTool(spec agent.ToolSpec, run func(context.Context, agent.Call, args) (string, error)) *tool {
	return &tool{s: s, spec: spec, run: run}
}

func (t *tool) Spec() agent.ToolSpec {
	sp := t.spec
	sp.Parameters = bytes.Clone(sp.Parameters)
	return sp
}

func (t *tool) Run(ctx context.Context, c agent.Call) (string, error) {
	if err := t.s.acquire(); err != nil {
		return "", err
	}
	defer t.s.wg.Done()
	if err := ctx.Err(); err != nil {
		return "", cancelled(ctx)
	}
	a, err := parseArgs(c.Args)
	if err != nil {
		return "", err
	}
	if c.Output == nil {
		c.Output = func(string) {}
	}
	return t.run(ctx, c, a)
}

// cancelled is the error a tool returns when its turn's context is done.
func cancelled(ctx context.Context) error {
	reason, _ := agent.CancelReason(ctx)
	return fmt.Errorf("cancelled (%s)", reason)
}

// args are a call's arguments, decoded leniently: models sometimes send
// numbers and booleans as strings, and null for "not given".
type args map[string]json.RawMessage

func parseArgs(raw json.RawMessage) (args, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return args{}, nil
	}
	var a args
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("arguments must be a JSON object: %v", err)
	}
	if a == nil {
		a = args{}
	}
	return a, nil
}

func (a args) get(name string) (json.RawMessage, bool) {
	v, ok := a[name]
	if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		return nil, false
	}
	return v, true
}

// str returns a string argument, or def when it is absent.
func (a args) str(name, def string) (string, error) {
	v, ok := a.get(name)
	if !ok {
		return def, nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", fmt.Errorf("argument %q must be a string", name)
	}
	return s, nil
}

// required returns a string argument that must be present and non-empty.
func (a args) required(name string) (string, error) {
	s, err := a.str(name, "")
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", fmt.Errorf("argument %q is required", name)
	}
	return s, nil
}

// present returns a string argument that must be given but may be empty
// (write_file's content, replace's new_text).
func (a args) present(name string) (string, error) {
	if _, ok := a.get(name); !ok {
		return "", fmt.Errorf("argument %q is required", name)
	}
	return a.str(name, "")
}

// number returns a numeric argument (a JSON number or a numeric string), or
// def when it is absent.
func (a args) number(name string, def float64) (float64, error) {
	v, ok := a.get(name)
	if !ok {
		return def, nil
	}
	var f float64
	if err := json.Unmarshal(v, &f); err == nil {
		return f, nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		if s == "" {
			return def, nil
		}
		if err := json.Unmarshal([]byte(s), &f); err == nil {
			return f, nil
		}
	}
	return 0, fmt.Errorf("argument %q must be a number", name)
}

// integer is number for whole numbers.
func (a args) integer(name string, def int) (int, error) {
	f, err := a.number(name, float64(def))
	if err != nil {
		return 0, err
	}
	if f != float64(int(f)) {
		return 0, fmt.Errorf("argument %q must be an integer", name)
	}
	return int(f), nil
}

// boolean returns a boolean argument (true/false, or those as strings), or
// def when it is absent.
func (a args) boolean(name string, def bool) (bool, error) {
	v, ok := a.get(name)
	if !ok {
		return def, nil
	}
	var b bool
	if err := json.Unmarshal(v, &b); err == nil {
		return b, nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		switch s {
		case "true", "True", "TRUE":
			return true, nil
		case "false", "False", "FALSE":
			return false, nil
		case "":
			return def, nil
		}
	}
	return false, fmt.Errorf("argument %q must be true or false", name)
}
