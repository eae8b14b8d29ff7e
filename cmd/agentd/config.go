package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agentd/agentd/internal/tools"
)

// usageError is a mistake in the command line or environment: exit code 2.
type usageError struct{ error }

// option is one setting: a flag, the environment variable it mirrors, its
// default and how to apply it. Secrets have no flag (argv is visible to
// every user of the machine).
type option struct {
	flag  string // "" for environment-only settings
	env   string
	def   string
	arg   string // placeholder in the help
	usage string
	apply func(v string) error
}

// Config is what `agentd serve` runs with.
type Config struct {
	Addr            string
	DataDir         string
	ConfigDir       string
	OpenAIKey       string `json:"-"` // never logged
	OpenAIBaseURL   string
	Model           string
	Models          []string // the catalog: Model first
	APIKeys         string   `json:"-"`
	APIKeysFile     string
	LLMMaxAttempts  int
	ShutdownTimeout time.Duration
	TurnTimeout     time.Duration
	MaxIterations   int
	ContextTokens   int
	SessionTTL      time.Duration
	MaxLiveSessions int
	MaxBodyBytes    int64
	ShellTimeout    time.Duration
	ConfigPoll      time.Duration
	ApprovalTimeout time.Duration
	WebFetch        bool
	WebFetchAllow   []netip.Prefix
	LogLevel        string
}

func serveOptions(c *Config) []option {
	return []option{
		{flag: "addr", env: "AGENTD_ADDR", def: ":8080", arg: "ADDR", usage: "address the HTTP API listens on",
			apply: func(v string) error {
				if _, _, err := net.SplitHostPort(v); err != nil {
					return fmt.Errorf("want host:port, e.g. :8080 or 127.0.0.1:8080: %v", err)
				}
				c.Addr = v
				return nil
			}},
		{flag: "data", env: "AGENTD_DATA", def: "/data", arg: "DIR", usage: "data directory: agentd.db and the session workspaces (must be writable)",
			apply: func(v string) error { c.DataDir = v; return nonEmpty(v) }},
		{flag: "config-dir", env: "AGENTD_CONFIG_DIR", def: ".", arg: "DIR", usage: "directory of AGENTAO.md, skills/ and .agentao/ (read-only is fine)",
			apply: func(v string) error { c.ConfigDir = v; return nonEmpty(v) }},
		{env: "OPENAI_API_KEY", usage: "API key of the model endpoint (may be empty for local servers such as Ollama or vLLM)",
			apply: func(v string) error { c.OpenAIKey = v; return nil }},
		{flag: "openai-base-url", env: "OPENAI_BASE_URL", def: "https://api.openai.com/v1", arg: "URL", usage: "OpenAI-compatible API root, e.g. http://localhost:11434/v1 for Ollama",
			apply: func(v string) error {
				u, err := url.Parse(v)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return fmt.Errorf("want an http:// or https:// URL, got %q", v)
				}
				c.OpenAIBaseURL = strings.TrimRight(v, "/")
				return nil
			}},
		{flag: "model", env: "OPENAI_MODEL", arg: "ID", usage: "model new sessions use (required)",
			apply: func(v string) error {
				if strings.TrimSpace(v) == "" {
					return errors.New("is required: the model id new sessions use, e.g. gpt-4o or llama3.1")
				}
				c.Model = strings.TrimSpace(v)
				return nil
			}},
		{flag: "models", env: "AGENTD_MODELS", arg: "IDS", usage: "other model ids clients may switch a session to, comma-separated",
			apply: func(v string) error {
				for _, m := range strings.Split(v, ",") {
					if m = strings.TrimSpace(m); m != "" {
						c.Models = append(c.Models, m)
					}
				}
				return nil
			}},
		{env: "AGENTD_API_KEYS", usage: `API keys as "key=tenant[:role],..." (role user or admin; keys of 16+ characters)`,
			apply: func(v string) error { c.APIKeys = v; return nil }},
		{flag: "api-keys-file", env: "AGENTD_API_KEYS_FILE", arg: "FILE", usage: `file of API keys, one "key=tenant[:role]" per line (# comments), e.g. a mounted Secret`,
			apply: func(v string) error { c.APIKeysFile = v; return nil }},
		{flag: "llm-max-attempts", env: "AGENTD_LLM_MAX_ATTEMPTS", def: "5", arg: "N", usage: "HTTP attempts per LLM call, retries included (1-10)",
			apply: func(v string) (err error) { c.LLMMaxAttempts, err = intIn(v, 1, 10); return }},
		{flag: "shutdown-timeout", env: "AGENTD_SHUTDOWN_TIMEOUT", def: "8s", arg: "DUR", usage: "time to cancel, save and exit after SIGTERM; keep it under the grace period (Docker 10s)",
			apply: func(v string) (err error) {
				c.ShutdownTimeout, err = durIn(v, 100*time.Millisecond, 10*time.Minute)
				return
			}},
		{flag: "turn-timeout", env: "AGENTD_TURN_TIMEOUT", def: "10m", arg: "DUR", usage: "wall-clock limit of one turn; it ends cancelled with reason timeout",
			apply: func(v string) (err error) {
				c.TurnTimeout, err = durIn(v, time.Second, 24*time.Hour)
				return
			}},
		{flag: "max-iterations", env: "AGENTD_MAX_ITERATIONS", def: "100", arg: "N", usage: "LLM calls per turn before it ends with incomplete_reason max_iterations",
			apply: func(v string) (err error) { c.MaxIterations, err = intIn(v, 1, 1000); return }},
		{flag: "context-tokens", env: "AGENTD_CONTEXT_TOKENS", def: "200000", arg: "N",
			usage: "the models' context window: above 55% of it old tool results are cleared, above 65% earlier turns are summarised",
			apply: func(v string) (err error) { c.ContextTokens, err = intIn(v, 1000, 100_000_000); return }},
		{flag: "session-ttl", env: "AGENTD_SESSION_TTL", def: "30m", arg: "DUR", usage: "idle time before a session leaves memory (it stays on disk)",
			apply: func(v string) (err error) {
				c.SessionTTL, err = durIn(v, time.Second, 30*24*time.Hour)
				return
			}},
		{flag: "max-live-sessions", env: "AGENTD_MAX_LIVE_SESSIONS", def: "500", arg: "N", usage: "sessions kept in memory; the least recently used leave first",
			apply: func(v string) (err error) { c.MaxLiveSessions, err = intIn(v, 1, 1_000_000); return }},
		{flag: "max-body-bytes", env: "AGENTD_MAX_BODY_BYTES", def: "1048576", arg: "N", usage: "largest request body; larger ones get 413 body_too_large",
			apply: func(v string) error {
				n, err := intIn(v, 1024, 64<<20)
				c.MaxBodyBytes = int64(n)
				return err
			}},
		{flag: "shell-timeout", env: "AGENTD_SHELL_TIMEOUT", def: "120s", arg: "DUR", usage: "run_shell_command inactivity timeout (the model may ask for up to 5x)",
			apply: func(v string) (err error) { c.ShellTimeout, err = durIn(v, time.Second, time.Hour); return }},
		{flag: "config-poll", env: "AGENTD_CONFIG_POLL", def: "2s", arg: "DUR", usage: "how often .agentao/canary.json is checked for changes (SIGHUP checks at once)",
			apply: func(v string) (err error) {
				c.ConfigPoll, err = durIn(v, 100*time.Millisecond, time.Hour)
				return
			}},
		{flag: "approval-timeout", env: "AGENTD_APPROVAL_TIMEOUT", def: "60s", arg: "DUR", usage: "how long a tool call the rules ask about waits for the client's decision before it is rejected",
			apply: func(v string) (err error) { c.ApprovalTimeout, err = durIn(v, time.Second, 24*time.Hour); return }},
		{flag: "web-fetch", env: "AGENTD_WEB_FETCH", def: "true", arg: "BOOL",
			usage: "offer the web_fetch tool (permission rules decide per domain; refused under sandbox profiles without network; public addresses only)",
			apply: func(v string) (err error) { c.WebFetch, err = strconv.ParseBool(v); return }},
		{flag: "web-fetch-allow-cidrs", env: "AGENTD_WEB_FETCH_ALLOW_CIDRS", arg: "CIDRS",
			usage: "private ranges web_fetch may reach anyway, e.g. 10.1.0.0/16 (comma-separated; local names stay refused)",
			apply: func(v string) (err error) { c.WebFetchAllow, err = tools.ParseAllowCIDRs(v); return }},
		{flag: "log-level", env: "AGENTD_LOG_LEVEL", def: "info", arg: "LEVEL", usage: "debug, info, warn or error",
			apply: func(v string) error {
				switch v {
				case "debug", "info", "warn", "error":
					c.LogLevel = v
					return nil
				}
				return fmt.Errorf("want debug, info, warn or error, got %q", v)
			}},
	}
}

func nonEmpty(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("must not be empty")
	}
	return nil
}

func intIn(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("want an integer from %d to %d, got %q", lo, hi, v)
	}
	return n, nil
}

func durIn(v string, lo, hi time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d < lo || d > hi {
		return 0, fmt.Errorf("want a duration from %v to %v such as 8s or 2m, got %q", lo, hi, v)
	}
	return d, nil
}

// parseOptions applies defaults, then the environment, then flags, and
// reports every bad value at once.
func parseOptions(name, summary string, opts []option, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	vals := map[string]*string{}
	for _, o := range opts {
		switch {
		case o.flag == "":
		case o.arg == "BOOL": // --json alone means true
			v := new(string)
			vals[o.flag] = v
			fs.BoolFunc(o.flag, o.usage, func(s string) error { *v = s; return nil })
		default:
			vals[o.flag] = fs.String(o.flag, "", o.usage)
		}
	}
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		printHelp(stdout, name, summary, opts)
		return flag.ErrHelp
	}
	if err != nil {
		return usageError{fmt.Errorf("%v (see agentd %s --help)", err, name)}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q (see agentd %s --help)", fs.Arg(0), name)}
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	for _, o := range opts {
		v, from := o.def, "default"
		if e := getenv(o.env); e != "" {
			v, from = e, o.env
		}
		if o.flag != "" && given[o.flag] {
			v, from = *vals[o.flag], "--"+o.flag
		}
		if err := o.apply(v); err != nil {
			if o.flag == "" { // environment-only settings are secrets: never echo them
				err = errors.New("is invalid")
			}
			errs = append(errs, fmt.Errorf("%s (%s): %w", displayName(o), from, err))
		}
	}
	if len(errs) > 0 {
		return usageError{errors.Join(errs...)}
	}
	return nil
}

func displayName(o option) string {
	if o.flag == "" {
		return o.env
	}
	return "--" + o.flag
}

func printHelp(w io.Writer, name, summary string, opts []option) {
	fmt.Fprintf(w, "Usage: agentd %s [flags]\n\n%s\n\n", name, summary)
	fmt.Fprintln(w, "Flags, each with the environment variable it mirrors (a flag wins over the environment) and its default:")
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	var envOnly []option
	for _, o := range opts {
		if o.flag == "" {
			envOnly = append(envOnly, o)
			continue
		}
		def := o.def
		if def == "" {
			def = "(none)"
		}
		fmt.Fprintf(tw, "  --%s %s\t%s\t%s\tdefault %s\n", o.flag, o.arg, o.env, o.usage, def)
	}
	tw.Flush()
	if len(envOnly) > 0 {
		fmt.Fprintln(w, "\nEnvironment only (secrets are never flags: the command line is visible to every process):")
		tw = tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
		sort.Slice(envOnly, func(i, j int) bool { return envOnly[i].env < envOnly[j].env })
		for _, o := range envOnly {
			fmt.Fprintf(tw, "  %s\t%s\n", o.env, o.usage)
		}
		tw.Flush()
	}
}

// parseServe builds and validates the serve configuration.
func parseServe(args []string, getenv func(string) string, stdout io.Writer) (Config, error) {
	var cfg Config
	err := parseOptions("serve", serveSummary, serveOptions(&cfg), args, getenv, stdout)
	var ue usageError
	if err != nil && !errors.As(err, &ue) || errors.Is(err, flag.ErrHelp) {
		return cfg, err
	}
	var errs []error
	if err != nil {
		errs = append(errs, ue.error) // reported with the checks below, all at once
	}
	if cfg.APIKeys == "" && cfg.APIKeysFile == "" {
		errs = append(errs, errors.New("no API keys: set AGENTD_API_KEYS (key=tenant[:role],...) or AGENTD_API_KEYS_FILE; without keys only /healthz and /readyz would answer"))
	}
	if cfg.OpenAIKey == "" && strings.Contains(cfg.OpenAIBaseURL, "api.openai.com") {
		errs = append(errs, errors.New("OPENAI_API_KEY is required for "+cfg.OpenAIBaseURL+" (set OPENAI_BASE_URL for a local server that needs no key)"))
	}
	if len(errs) > 0 {
		return cfg, usageError{errors.Join(errs...)}
	}
	cfg.Models = dedupe(append([]string{cfg.Model}, cfg.Models...))
	cfg.DataDir = filepath.Clean(cfg.DataDir)
	return cfg, nil
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	out := xs[:0]
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// checkWritable fails fast when the data dir cannot hold the store.
func checkWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".agentd-write-check-*")
	if err != nil {
		return fmt.Errorf("data dir %s is not writable (as uid %d): %w", dir, os.Getuid(), err)
	}
	name := f.Name()
	_, werr := f.Write([]byte("ok"))
	serr := f.Sync()
	f.Close()
	os.Remove(name)
	if err := errors.Join(werr, serr); err != nil {
		return fmt.Errorf("data dir %s is not writable: %w", dir, err)
	}
	return nil
}

const serveSummary = `Runs the agentd HTTP API: LLM agent sessions for many tenants, persisted in
DIR/agentd.db, each working in its own directory under DIR/workspaces. It serves
until SIGTERM or SIGINT, then stops taking turns (readiness 503), cancels running
turns with reason "shutdown", saves every session and exits 0. A second signal
exits at once.`
