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
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // --usage-zone works in images without /usr/share/zoneinfo

	"github.com/agentd/agentd/internal/alerts"
	"github.com/agentd/agentd/internal/flagenv"
	"github.com/agentd/agentd/internal/fleet"
	"github.com/agentd/agentd/internal/httpapi"
	"github.com/agentd/agentd/internal/tools"
)

// usageError is a mistake in the command line or environment: exit code 2.
type usageError struct{ error }

// option is one setting: a flag, the environment variable it mirrors, its
// default and how to apply it (internal/flagenv reads them).
type option = flagenv.Option

// parseOptions reads the settings of `agentd <name>`; a mistake is a
// usageError (exit 2).
func parseOptions(name, summary string, opts []option, args []string, getenv func(string) string, stdout io.Writer) error {
	err := flagenv.Parse("agentd "+name, summary, opts, args, getenv, stdout)
	var fe *flagenv.UsageError
	if errors.As(err, &fe) {
		return usageError{fe.Err}
	}
	return err
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
	HTTP            httpapi.Timeouts
	WSPingInterval  time.Duration
	WSPongTimeout   time.Duration
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
	UsageZone       *time.Location // the day of budgets and daily alerts
	AlertWebhook    string         // where alerts are POSTed ("" none)
	AlertInterval   time.Duration  // between evaluations of the built-in alerts
	// A fleet: this replica's name, the members (empty: a single
	// replica) and the key of the channel between them.
	Node       string
	Peers      string
	ClusterKey string `json:"-"` // never logged
}

func serveOptions(c *Config) []option {
	return []option{
		{Flag: "addr", Env: "AGENTD_ADDR", Default: ":8080", Arg: "ADDR", Usage: "address the HTTP API listens on",
			Apply: func(v string) error {
				if _, _, err := net.SplitHostPort(v); err != nil {
					return fmt.Errorf("want host:port, e.g. :8080 or 127.0.0.1:8080: %v", err)
				}
				c.Addr = v
				return nil
			}},
		{Flag: "data", Env: "AGENTD_DATA", Default: "/data", Arg: "DIR", Usage: "data directory: agentd.db and the session workspaces (must be writable)",
			Apply: func(v string) error { c.DataDir = v; return flagenv.NonEmpty(v) }},
		{Flag: "config-dir", Env: "AGENTD_CONFIG_DIR", Default: ".", Arg: "DIR", Usage: "directory of AGENTAO.md, skills/ and .agentao/ (read-only is fine)",
			Apply: func(v string) error { c.ConfigDir = v; return flagenv.NonEmpty(v) }},
		{Env: "OPENAI_API_KEY", Usage: "API key of the model endpoint (may be empty for local servers such as Ollama or vLLM)",
			Apply: func(v string) error { c.OpenAIKey = v; return nil }},
		{Flag: "openai-base-url", Env: "OPENAI_BASE_URL", Default: "https://api.openai.com/v1", Arg: "URL", Usage: "OpenAI-compatible API root, e.g. http://localhost:11434/v1 for Ollama",
			Apply: func(v string) error {
				u, err := url.Parse(v)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return fmt.Errorf("want an http:// or https:// URL, got %q", v)
				}
				c.OpenAIBaseURL = strings.TrimRight(v, "/")
				return nil
			}},
		{Flag: "model", Env: "OPENAI_MODEL", Arg: "ID", Usage: "model new sessions use (required)",
			Apply: func(v string) error {
				if strings.TrimSpace(v) == "" {
					return errors.New("is required: the model id new sessions use, e.g. gpt-4o or llama3.1")
				}
				c.Model = strings.TrimSpace(v)
				return nil
			}},
		{Flag: "models", Env: "AGENTD_MODELS", Arg: "IDS", Usage: "other model ids clients may switch a session to, comma-separated",
			Apply: func(v string) error {
				for _, m := range strings.Split(v, ",") {
					if m = strings.TrimSpace(m); m != "" {
						c.Models = append(c.Models, m)
					}
				}
				return nil
			}},
		{Env: "AGENTD_API_KEYS", Usage: `API keys as "key=tenant[:role],..." (role user or admin; keys of 16+ characters)`,
			Apply: func(v string) error { c.APIKeys = v; return nil }},
		{Flag: "api-keys-file", Env: "AGENTD_API_KEYS_FILE", Arg: "FILE", Usage: `file of API keys, one "key=tenant[:role]" per line (# comments), e.g. a mounted Secret`,
			Apply: func(v string) error { c.APIKeysFile = v; return nil }},
		{Flag: "llm-max-attempts", Env: "AGENTD_LLM_MAX_ATTEMPTS", Default: "5", Arg: "N", Usage: "HTTP attempts per LLM call, retries included (1-10)",
			Apply: func(v string) (err error) { c.LLMMaxAttempts, err = flagenv.IntIn(v, 1, 10); return }},
		{Flag: "shutdown-timeout", Env: "AGENTD_SHUTDOWN_TIMEOUT", Default: "8s", Arg: "DUR", Usage: "time to cancel, save and exit after SIGTERM; keep it under the grace period (Docker 10s)",
			Apply: func(v string) (err error) {
				c.ShutdownTimeout, err = flagenv.DurIn(v, 100*time.Millisecond, 10*time.Minute)
				return
			}},
		durOption("read-header-timeout", "AGENTD_READ_HEADER_TIMEOUT", "10s", "limit of a request's header, from its first byte", &c.HTTP.ReadHeader),
		durOption("read-timeout", "AGENTD_READ_TIMEOUT", "30s", "limit of a whole request, header and body, from its first byte (before authentication)", &c.HTTP.Read),
		durOption("write-timeout", "AGENTD_WRITE_TIMEOUT", "30s", "limit of one write to a client (re-armed per write: streams and long turns are not cut)", &c.HTTP.Write),
		durOption("idle-timeout", "AGENTD_IDLE_TIMEOUT", "2m", "how long a kept-alive connection waits for its next request", &c.HTTP.Idle),
		durOption("ws-ping-interval", "AGENTD_WS_PING_INTERVAL", "30s", "interval of the pings on ACP WebSockets", &c.WSPingInterval),
		durOption("ws-pong-timeout", "AGENTD_WS_PONG_TIMEOUT", "30s", "how long a WebSocket ping waits for its pong before the client is disconnected", &c.WSPongTimeout),
		{Flag: "turn-timeout", Env: "AGENTD_TURN_TIMEOUT", Default: "10m", Arg: "DUR", Usage: "wall-clock limit of one turn; it ends cancelled with reason timeout",
			Apply: func(v string) (err error) {
				c.TurnTimeout, err = flagenv.DurIn(v, time.Second, 24*time.Hour)
				return
			}},
		{Flag: "max-iterations", Env: "AGENTD_MAX_ITERATIONS", Default: "100", Arg: "N", Usage: "LLM calls per turn before it ends with incomplete_reason max_iterations",
			Apply: func(v string) (err error) { c.MaxIterations, err = flagenv.IntIn(v, 1, 1000); return }},
		{Flag: "context-tokens", Env: "AGENTD_CONTEXT_TOKENS", Default: "200000", Arg: "N",
			Usage: "the models' context window: above 55% of it old tool results are cleared, above 65% earlier turns are summarised",
			Apply: func(v string) (err error) { c.ContextTokens, err = flagenv.IntIn(v, 1000, 100_000_000); return }},
		{Flag: "session-ttl", Env: "AGENTD_SESSION_TTL", Default: "30m", Arg: "DUR", Usage: "idle time before a session leaves memory (it stays on disk)",
			Apply: func(v string) (err error) {
				c.SessionTTL, err = flagenv.DurIn(v, time.Second, 30*24*time.Hour)
				return
			}},
		{Flag: "max-live-sessions", Env: "AGENTD_MAX_LIVE_SESSIONS", Default: "500", Arg: "N", Usage: "sessions kept in memory; the least recently used leave first",
			Apply: func(v string) (err error) { c.MaxLiveSessions, err = flagenv.IntIn(v, 1, 1_000_000); return }},
		{Flag: "max-body-bytes", Env: "AGENTD_MAX_BODY_BYTES", Default: "1048576", Arg: "N", Usage: "largest request body; larger ones get 413 body_too_large",
			Apply: func(v string) error {
				n, err := flagenv.IntIn(v, 1024, 64<<20)
				c.MaxBodyBytes = int64(n)
				return err
			}},
		{Flag: "shell-timeout", Env: "AGENTD_SHELL_TIMEOUT", Default: "120s", Arg: "DUR", Usage: "run_shell_command inactivity timeout (the model may ask for up to 5x)",
			Apply: func(v string) (err error) { c.ShellTimeout, err = flagenv.DurIn(v, time.Second, time.Hour); return }},
		{Flag: "config-poll", Env: "AGENTD_CONFIG_POLL", Default: "2s", Arg: "DUR", Usage: "how often .agentao/canary.json is checked for changes (SIGHUP checks at once)",
			Apply: func(v string) (err error) {
				c.ConfigPoll, err = flagenv.DurIn(v, 100*time.Millisecond, time.Hour)
				return
			}},
		{Flag: "approval-timeout", Env: "AGENTD_APPROVAL_TIMEOUT", Default: "60s", Arg: "DUR", Usage: "how long a tool call the rules ask about waits for the client's decision before it is rejected",
			Apply: func(v string) (err error) {
				c.ApprovalTimeout, err = flagenv.DurIn(v, time.Second, 24*time.Hour)
				return
			}},
		{Flag: "web-fetch", Env: "AGENTD_WEB_FETCH", Default: "true", Arg: "BOOL",
			Usage: "offer the web_fetch tool (permission rules decide per domain; refused under sandbox profiles without network; public addresses only)",
			Apply: func(v string) (err error) { c.WebFetch, err = strconv.ParseBool(v); return }},
		{Flag: "web-fetch-allow-cidrs", Env: "AGENTD_WEB_FETCH_ALLOW_CIDRS", Arg: "CIDRS",
			Usage: "private ranges web_fetch may reach anyway, e.g. 10.1.0.0/16 (comma-separated; local names stay refused)",
			Apply: func(v string) (err error) { c.WebFetchAllow, err = tools.ParseAllowCIDRs(v); return }},
		{Flag: "node", Env: "AGENTD_NODE", Arg: "NAME", Usage: "this replica's name in a fleet, lower-case letters, digits, '-' and '.' (default: the hostname; the pod's name in a StatefulSet)",
			Apply: func(v string) error { c.Node = strings.TrimSpace(v); return nil }},
		{Flag: "peers", Env: "AGENTD_PEERS", Arg: "PEERS",
			Usage: `the fleet: "name=http://host:port,..." naming every member, this one included, or "dns+http://<headless service>:<port>"; empty: a single replica`,
			Apply: func(v string) error { c.Peers = strings.TrimSpace(v); return nil }},
		{Flag: "cluster-key", Env: "AGENTD_CLUSTER_KEY", Arg: "KEY", Usage: "key of the channel between a fleet's replicas: 16+ characters, the same on every member, required with peers (prefer the variable: a flag shows in ps)",
			Apply: func(v string) error { c.ClusterKey = v; return nil }},
		{Flag: "usage-zone", Env: "AGENTD_USAGE_ZONE", Default: "UTC", Arg: "ZONE",
			Usage: "IANA time zone of the usage day: daily token budgets reset and the daily-token alert counts at its midnight, e.g. Europe/Paris",
			Apply: func(v string) error {
				z, err := time.LoadLocation(strings.TrimSpace(v))
				if err != nil || v == "" || v == "Local" {
					return fmt.Errorf("want an IANA time zone name such as UTC or America/New_York, got %q", v)
				}
				c.UsageZone = z
				return nil
			}},
		{Flag: "alert-interval", Env: "AGENTD_ALERT_INTERVAL", Default: "15s", Arg: "DUR",
			Usage: "how often the built-in alerts (.agentao/alerts.json) are evaluated, 100ms to 10m",
			Apply: func(v string) (err error) {
				c.AlertInterval, err = flagenv.DurIn(v, 100*time.Millisecond, 10*time.Minute)
				return
			}},
		{Env: "AGENTD_ALERT_WEBHOOK", Usage: "http(s) URL that gets a JSON POST per alert firing or resolving, with retries (environment only: it may hold a token)",
			Apply: func(v string) error {
				c.AlertWebhook = strings.TrimSpace(v)
				if c.AlertWebhook == "" {
					return nil
				}
				return alerts.CheckWebhook(c.AlertWebhook)
			}},
		{Flag: "log-level", Env: "AGENTD_LOG_LEVEL", Default: "info", Arg: "LEVEL", Usage: "debug, info, warn or error",
			Apply: func(v string) error {
				switch v {
				case "debug", "info", "warn", "error":
					c.LogLevel = v
					return nil
				}
				return fmt.Errorf("want debug, info, warn or error, got %q", v)
			}},
	}
}

// durOption is a duration setting from 10 ms to 24 h.
func durOption(flag, env, def, usage string, dst *time.Duration) option {
	return option{Flag: flag, Env: env, Default: def, Arg: "DUR", Usage: usage,
		Apply: func(v string) (err error) { *dst, err = flagenv.DurIn(v, 10*time.Millisecond, 24*time.Hour); return }}
}

// parseServe builds and validates the serve configuration.
func parseServe(args []string, getenv func(string) string, stdout io.Writer) (Config, error) {
	var cfg Config
	err := parseConfig("serve", serveSummary, serveOptions(&cfg), &cfg, args, getenv, stdout, func() (errs []error) {
		if cfg.APIKeys == "" && cfg.APIKeysFile == "" {
			errs = append(errs, errors.New("no API keys: set AGENTD_API_KEYS (key=tenant[:role],...) or AGENTD_API_KEYS_FILE; without keys only /healthz and /readyz would answer"))
		}
		if cfg.Peers != "" {
			if cfg.Node == "" {
				host, _ := os.Hostname()
				cfg.Node = strings.ToLower(host)
			}
			if err := cfg.fleet(nil).Validate(); err != nil {
				errs = append(errs, err)
			}
		}
		return errs
	})
	return cfg, err
}

// fleet is the fleet's configuration; dir persists its moved sessions.
func (c Config) fleet(dir fleet.Directory) fleet.Config {
	return fleet.Config{Node: c.Node, Peers: c.Peers, Key: c.ClusterKey, DataDir: c.DataDir, Directory: dir}
}

// parseConfig reads the options of serve or acp into cfg, checks what
// concerns several settings (more with extra), and reports every problem
// at once as a usageError.
func parseConfig(name, summary string, opts []option, cfg *Config, args []string, getenv func(string) string, stdout io.Writer, extra func() []error) error {
	err := parseOptions(name, summary, opts, args, getenv, stdout)
	var ue usageError
	if err != nil && !errors.As(err, &ue) || errors.Is(err, flag.ErrHelp) {
		return err
	}
	var errs []error
	if err != nil {
		errs = append(errs, ue.error) // reported with the checks below, all at once
	}
	errs = append(errs, extra()...)
	if cfg.OpenAIKey == "" && strings.Contains(cfg.OpenAIBaseURL, "api.openai.com") {
		errs = append(errs, errors.New("OPENAI_API_KEY is required for "+cfg.OpenAIBaseURL+" (set OPENAI_BASE_URL for a local server that needs no key)"))
	}
	if len(errs) > 0 {
		return usageError{errors.Join(errs...)}
	}
	cfg.Models = dedupe(append([]string{cfg.Model}, cfg.Models...))
	cfg.DataDir = filepath.Clean(cfg.DataDir)
	return nil
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

const serveSummary = `Runs the agentd HTTP API: LLM agent sessions for many tenants, persisted in
DIR/agentd.db, each working in its own directory under DIR/workspaces. It serves
until SIGTERM or SIGINT, then stops taking turns (readiness 503), cancels running
turns with reason "shutdown", saves every session and exits 0. A second signal
exits at once.`
