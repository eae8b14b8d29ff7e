package adminctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agentd/agentd/internal/flagenv"
)

// clientConfig is what the commands that talk to a running agentd share.
type clientConfig struct {
	Server  string   // the replica a call goes to
	Servers []string `json:"-"` // what --server names: URLs, or dns+ URLs resolved at run time
	Key     string   `json:"-"`
	JSON    bool

	lookup func(ctx context.Context, host string) ([]string, error) // nil: the system resolver
}

func clientOptions(c *clientConfig) []option {
	return []option{
		{Flag: "server", Env: "AGENTD_SERVER", Default: "http://127.0.0.1:8080", Arg: "URL[,URL...]",
			Usage: "the agentd to talk to; several comma-separated, or dns+http://NAME:PORT for every address NAME resolves to (a headless Service: every replica)",
			Apply: func(v string) error {
				c.Servers = nil
				for _, one := range strings.Split(v, ",") {
					one = strings.TrimRight(strings.TrimSpace(one), "/")
					u, err := url.Parse(strings.TrimPrefix(one, "dns+"))
					if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
						return fmt.Errorf("want http://HOST:PORT, https://HOST:PORT or dns+http://NAME:PORT, got %q", one)
					}
					c.Servers = append(c.Servers, one)
				}
				return nil
			}},
		{Env: "AGENTD_ADMIN_KEY", Usage: "an admin API key of that agentd (key=tenant:admin in its AGENTD_API_KEYS)",
			Apply: func(v string) error {
				if v == "" {
					return errors.New("is required: export AGENTD_ADMIN_KEY=<an admin key>")
				}
				c.Key = v
				return nil
			}},
		{Flag: "json", Env: "AGENTD_JSON", Default: "false", Arg: "BOOL", Usage: "print the server's JSON instead of text",
			Apply: func(v string) (err error) { c.JSON, err = strconv.ParseBool(v); return }},
	}
}

// replicas expands the --server list: each dns+ entry becomes one URL per
// address its name resolves to, sorted, so that a headless Service names
// every replica.
func (c *clientConfig) replicas(ctx context.Context) ([]string, error) {
	lookup := c.lookup
	if lookup == nil {
		lookup = net.DefaultResolver.LookupHost
	}
	var out []string
	for _, s := range c.Servers {
		if !strings.HasPrefix(s, "dns+") {
			out = append(out, s)
			continue
		}
		u, _ := url.Parse(strings.TrimPrefix(s, "dns+")) // checked by the option
		addrs, err := lookup(ctx, u.Hostname())
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", u.Hostname(), err)
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("resolve %s: no addresses", u.Hostname())
		}
		slices.Sort(addrs)
		for _, a := range addrs {
			r := *u
			r.Host = net.JoinHostPort(a, u.Port())
			if u.Port() == "" {
				r.Host = a
				if strings.Contains(a, ":") {
					r.Host = "[" + a + "]"
				}
			}
			out = append(out, r.String())
		}
	}
	return out, nil
}

// onEach runs do against every replica in turn, each output under a
// heading when there are several, and fails if any failed: a rollback that
// reached two replicas of three must not look done.
func (c *clientConfig) onEach(ctx context.Context, stdout io.Writer, do func(c *clientConfig) error) error {
	servers, err := c.replicas(ctx)
	if err != nil {
		return err
	}
	if len(servers) == 1 {
		one := *c
		one.Server = servers[0]
		return do(&one)
	}
	var failed []string
	for _, s := range servers {
		one := *c
		one.Server = s
		if !c.JSON {
			fmt.Fprintf(stdout, "== %s\n", s)
		}
		if err := do(&one); err != nil {
			fmt.Fprintf(stdout, "FAILED: %v\n", err)
			failed = append(failed, s)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d replicas failed: %s", len(failed), len(servers), strings.Join(failed, ", "))
	}
	return nil
}

// call sends a request to the admin API and decodes the JSON answer; API
// errors come back as their code and message.
func (c *clientConfig) call(ctx context.Context, method, path string, body any, header map[string]string) (map[string]any, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, nil, err
		}
		rd = bytes.NewReader(b)
	}
	if _, ok := ctx.Deadline(); !ok { // a caller that waits longer sets its own
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Server+path, rd)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", method, c.Server+path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, nil, err
	}
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	if resp.StatusCode >= 300 {
		if e, ok := out["error"].(map[string]any); ok {
			return nil, raw, fmt.Errorf("%s (%d %s)", e["message"], resp.StatusCode, e["code"])
		}
		return nil, raw, fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return out, raw, nil
}

// printJSON prints the server's JSON answer when --json asks for it, and
// says whether it did.
func (c *clientConfig) printJSON(w io.Writer, raw []byte) bool {
	if !c.JSON {
		return false
	}
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") == nil {
		raw = b.Bytes()
	}
	fmt.Fprintf(w, "%s\n", bytes.TrimSpace(raw))
	return true
}

const canaryHelp = `Usage: agentd canary <status|explain|apply> [flags]

Commands that talk to a running agentd's admin API:
  status                          the served canary configuration, its version, variants and guard windows
  explain --tenant T --user U     what a user would get now, per dimension, and why
  apply --file F --reason R       replace the configuration with F (validated; the old one keeps serving if F is bad)

Run "agentd canary <command> --help" for its flags.
`

func Canary(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		fmt.Fprint(stdout, canaryHelp)
		if len(args) == 0 {
			return usage(errors.New("a canary command is required"))
		}
		return nil
	}
	var c clientConfig
	opts := clientOptions(&c)
	switch sub, rest := args[0], args[1:]; sub {
	case "status":
		if err := parseOptions("canary status", "Prints the served canary configuration: version, stable values, variants and the guard's windows.", opts, rest, getenv, stdout); err != nil {
			return err
		}
		return c.onEach(ctx, stdout, func(c *clientConfig) error {
			out, raw, err := c.call(ctx, "GET", "/v1/admin/canary", nil, nil)
			if err != nil {
				return err
			}
			if !c.printJSON(stdout, raw) {
				printStatus(stdout, out)
			}
			return nil
		})
	case "explain":
		var tenant, user string
		opts = append(opts,
			option{Flag: "tenant", Env: "AGENTD_TENANT", Arg: "T", Usage: "the tenant (required)", Apply: func(v string) error { tenant = v; return flagenv.NonEmpty(v) }},
			option{Flag: "user", Env: "AGENTD_USER", Arg: "U", Usage: "the end user (required)", Apply: func(v string) error { user = v; return flagenv.NonEmpty(v) }})
		if err := parseOptions("canary explain", "Explains what a user would get now, per dimension, with the reason (allowlist, bucket n in a range, tenant filter, halted).", opts, rest, getenv, stdout); err != nil {
			return err
		}
		return c.onEach(ctx, stdout, func(c *clientConfig) error {
			out, raw, err := c.call(ctx, "GET", "/v1/admin/canary/assignment?"+url.Values{"tenant": {tenant}, "user": {user}}.Encode(), nil, nil)
			if err != nil {
				return err
			}
			if c.printJSON(stdout, raw) {
				return nil
			}
			fmt.Fprintf(stdout, "tenant %s, user %s, configuration version %v\n", tenant, user, out["version"])
			tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
			for _, e := range asList(out["assignment"]) {
				m := e.(map[string]any)
				fmt.Fprintf(tw, "  %v\t%v\t%v\t%v\n", m["dimension"], m["value"], m["variant"], m["reason"])
			}
			return tw.Flush()
		})
	case "apply":
		var file, why string
		opts = append(opts,
			option{Flag: "file", Arg: "FILE", Usage: "the new canary.json (required)", Apply: func(v string) error { file = v; return flagenv.NonEmpty(v) }},
			option{Flag: "reason", Arg: "TEXT", Usage: "why (required; it goes into the version history)", Apply: func(v string) error { why = v; return flagenv.NonEmpty(v) }})
		if err := parseOptions("canary apply", "Replaces the served canary configuration (If-Match on the current version, so a concurrent change is not overwritten).", opts, rest, getenv, stdout); err != nil {
			return err
		}
		doc, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		return c.onEach(ctx, stdout, func(c *clientConfig) error {
			cur, _, err := c.call(ctx, "GET", "/v1/admin/canary", nil, nil)
			if err != nil {
				return err
			}
			out, raw, err := c.call(ctx, "PUT", "/v1/admin/canary", json.RawMessage(doc), map[string]string{
				"If-Match": fmt.Sprintf(`"%v"`, cur["version"]), "X-Agentd-Reason": why})
			if err != nil {
				return err
			}
			if c.printJSON(stdout, raw) {
				return nil
			}
			fmt.Fprintf(stdout, "applied as version %v\n", out["version"])
			printDiff(stdout, out["diff"])
			return nil
		})
	default:
		fmt.Fprint(stderr, canaryHelp)
		return usage(fmt.Errorf("unknown canary command %q", sub))
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func printDiff(w io.Writer, diff any) {
	for _, d := range asList(diff) {
		fmt.Fprintf(w, "  %v\n", d)
	}
}

func printStatus(w io.Writer, out map[string]any) {
	fmt.Fprintf(w, "version %v, applied %v by %v: %v\n", out["version"], out["applied_at"], out["actor"], out["reason"])
	if out["differs_from_file"] == true {
		fmt.Fprintln(w, "NOTE: the running configuration differs from .agentao/canary.json (an API change or rollback, or an invalid file)")
	}
	refused, _ := out["refused"].(map[string]any)
	for _, part := range slices.Sorted(maps.Keys(refused)) {
		fmt.Fprintf(w, "REFUSED %s (the one served before keeps serving; retried at every poll): %v\n", part, refused[part])
	}
	stable, _ := out["stable"].(map[string]any)
	fmt.Fprintf(w, "stable: model=%v skills=%v rules=%v sandbox=%v instructions=%v\n",
		stable["model"], stable["skills"], stable["rules"], stable["sandbox"], stable["instructions"])
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "variants:")
	for _, v := range asList(out["variants"]) {
		m := v.(map[string]any)
		state := "live"
		if m["halted"] == true {
			state = "HALTED"
		}
		fmt.Fprintf(tw, "  %v/%v\t%v\t%.2f%%\t%v users\ttenants %v\t%s\n", m["dimension"], m["name"], m["value"], m["percent"], m["users"], m["tenants"], state)
	}
	tw.Flush()
	if g, ok := out["guard"].(map[string]any); ok {
		fmt.Fprintf(w, "guard: after %v turns, halts on tool failures > %v× stable and +%v or > %v, LLM 5xx > %v× stable and +%v or > %v, tokens > %v× stable (window %v turns, disabled %v)\n",
			g["min_samples"], g["tool_failure_ratio"], g["tool_failure_min_delta"], g["tool_failure_rate"],
			g["llm_5xx_ratio"], g["llm_5xx_min_delta"], g["llm_5xx_rate"], g["token_ratio"], g["window"], g["disabled"] == true)
	}
	for _, r := range asList(out["guard_reported"]) {
		m := r.(map[string]any)
		fmt.Fprintf(w, "  not halted, stable is over the ceiling too: %v/%v %v %.3f (stable %.3f, ceiling %v) since %v\n",
			m["dimension"], m["variant"], m["signal"], m["variant_rate"], m["control_rate"], m["ceiling"], m["since"])
	}
	tw = tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	for _, s := range asList(out["guard_windows"]) {
		m := s.(map[string]any)
		fmt.Fprintf(tw, "  %v/%v\t%v turns\ttool failures %v/%v\tLLM 5xx %v/%v\t%.0f tokens/turn\n",
			m["dimension"], m["variant"], m["turns"], m["tool_failures"], m["tool_calls"], m["llm_5xx"], m["llm_calls"], m["tokens_per_turn"])
	}
	tw.Flush()
}

func Rollback(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var c clientConfig
	var dim, variant, why string
	to := 0
	opts := append(clientOptions(&c),
		option{Flag: "dimension", Arg: "D", Usage: "halt a variant of this dimension (model, skills, rules, sandbox, instructions)", Apply: func(v string) error { dim = v; return nil }},
		option{Flag: "variant", Arg: "V", Usage: "the variant to halt", Apply: func(v string) error { variant = v; return nil }},
		option{Flag: "to", Arg: "N", Usage: "return to configuration version N instead", Apply: func(v string) (err error) {
			if v != "" {
				to, err = flagenv.IntIn(v, 1, 1<<30)
			}
			return
		}},
		option{Flag: "reason", Arg: "TEXT", Usage: "why (required; it goes into the version history)", Apply: func(v string) error { why = v; return flagenv.NonEmpty(v) }})
	summary := `Rolls back a running agentd in one call: either halt a canary variant (its users go
back to stable for new sessions, and sessions pinned to it move to stable at their
next turn, history kept) or make an earlier configuration version current again.

  agentd rollback --dimension model --variant gpt5-beta --reason "answers regressed"
  agentd rollback --to 12 --reason "back to the last good configuration"

In a fleet (AGENTD_PEERS) any one replica is enough: the change is one version
of the fleet's history, served by every replica. Replicas that are not a fleet
each keep their own configuration: to halt a variant on all of them, name them
all: --server http://a:8080,http://b:8080, or a headless Service with
--server dns+http://agentd-headless:8080. The command fails if any replica did.`
	if err := parseOptions("rollback", summary, opts, args, getenv, stdout); err != nil {
		return err
	}
	body := map[string]any{"reason": why}
	switch {
	case to != 0 && (dim != "" || variant != ""):
		return usage(errors.New("give either --dimension and --variant, or --to, not both"))
	case to != 0:
		body["to_version"] = to
	case dim != "" && variant != "":
		body["dimension"], body["variant"] = dim, variant
	default:
		return usage(errors.New("give --dimension and --variant to halt a variant, or --to N to return to version N (see --help)"))
	}
	if to != 0 {
		// Version numbers belong to one replica's history.
		if servers, err := c.replicas(ctx); err != nil {
			return err
		} else if len(servers) > 1 {
			return usage(fmt.Errorf("--to needs one replica (--server names %d): version numbers are per replica unless they are a fleet, which needs only one", len(servers)))
		}
	}
	return c.onEach(ctx, stdout, func(c *clientConfig) error {
		out, raw, err := c.call(ctx, "POST", "/v1/admin/rollback", body, nil)
		if err != nil {
			return err
		}
		if c.printJSON(stdout, raw) {
			return nil
		}
		v, _ := out["version"].(map[string]any)
		if out["changed"] == false {
			fmt.Fprintf(stdout, "nothing to do: already so in version %v\n", v["version"])
			return nil
		}
		fmt.Fprintf(stdout, "configuration version %v is now served (%v)\n", v["version"], v["reason"])
		printDiff(stdout, v["diff"])
		return nil
	})
}
