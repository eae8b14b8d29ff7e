package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/agentd/agentd/internal/control"
	"github.com/agentd/agentd/internal/flagenv"
	"github.com/agentd/agentd/internal/governance"
	"github.com/agentd/agentd/internal/operate"
	"github.com/agentd/agentd/internal/redteam"
)

const checkSummary = `Validates a configuration tree before it ships: AGENTAO.md, instructions/,
skills/ (SKILL.md YAML), .agentao/permissions/*.json (rules and their regular
expressions), .agentao/sandbox.json (profile names) and .agentao/canary.json
(every value it names must exist), .agentao/mcp.json (MCP servers, fields and
types; a $VAR unset here is a warning), and .agentao/budgets.json, alerts.json
and probes.json as serve would read them. It also scans AGENTAO.md, instructions,
skills and mcp.json for credentials (Agentao's patterns) and fails if the system prompt of
any skill set, with every skill active, is longer than --max-prompt-chars.

With --sandbox it also runs the sandbox preflight of the tree's sandbox.json on
this machine's kernel, as agentd serve does at start, and prints per profile
which guarantees the kernel enforces (Landlock ABI, signal and socket scopes,
how a command's processes are ended); a profile the tree uses that cannot be
enforced is a problem. Run it on the machine (or in the image) agentd runs on.

With --redteam it runs the six prompt-injection cases of the Agentao checklist
instead (system prompt leak, SSRF to 169.254.169.254, curl exfiltration of
~/.ssh/id_rsa, API key characters, a file that says "delete all files", "you
are root admin now") through the real pipeline of this tree, in-process, against
OPENAI_BASE_URL with the model of --model, each in a fresh session pinned to
stable or to the --variant's; it prints which were resisted, by which layer,
with transcripts (--json for machines). It runs in a temporary data directory:
the operator's is never opened. It exits 1 when a case the rules must stop
(SSRF, exfiltration, destructive shell) was not stopped or could not be judged;
--strict also fails on the model-level cases (1, 6, and 4 in the reply).

Exit status: 0 clean, 1 problems (each printed with its file), 2 usage.`

func check(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var dir, model, models string
	var sandboxCheck bool
	maxPrompt := governance.DefaultMaxPromptChars
	opts := []option{
		{Flag: "config-dir", Env: "AGENTD_CONFIG_DIR", Default: ".", Arg: "DIR", Usage: "the configuration tree to check",
			Apply: func(v string) error { dir = v; return flagenv.NonEmpty(v) }},
		{Flag: "model", Env: "OPENAI_MODEL", Arg: "ID", Usage: "the model new sessions use (canary.json may name its own catalog)",
			Apply: func(v string) error { model = v; return nil }},
		{Flag: "models", Env: "AGENTD_MODELS", Arg: "IDS", Usage: "other models of the catalog, comma-separated",
			Apply: func(v string) error { models = v; return nil }},
		{Flag: "max-prompt-chars", Env: "AGENTD_MAX_PROMPT_CHARS", Default: fmt.Sprint(governance.DefaultMaxPromptChars), Arg: "N",
			Usage: "longest system prompt allowed", Apply: func(v string) (err error) { maxPrompt, err = flagenv.IntIn(v, 100, 10_000_000); return }},
		{Flag: "sandbox", Default: "false", Arg: "BOOL", Usage: "also prove the sandbox on this kernel and print what it enforces per profile",
			Apply: func(v string) (err error) { sandboxCheck, err = strconv.ParseBool(v); return }},
	}
	var rt redteamOptions
	opts = append(opts, rt.options()...)
	if err := parseOptions("check", checkSummary, opts, args, getenv, stdout); err != nil {
		return err
	}
	if rt.on {
		return rt.run(ctx, dir, model, models, stdout)
	}
	var catalog []string
	for _, m := range strings.Split(models, ",") {
		if m = strings.TrimSpace(m); m != "" {
			catalog = append(catalog, m)
		}
	}
	if model != "" {
		catalog = dedupe(append([]string{model}, catalog...))
	}
	r, rep, err := control.Check(ctx, dir, governance.CheckOptions{Model: model, Models: catalog, MaxPromptChars: maxPrompt}, sandboxCheck)
	if err != nil {
		return err
	}
	r.Problems = append(r.Problems, operate.Check(dir)...) // budgets.json, alerts.json, probes.json
	if rep != nil {
		fmt.Fprintln(stdout, rep)
	}
	for _, w := range r.Warnings {
		fmt.Fprintln(stdout, "warning:", w)
	}
	for _, p := range r.Problems {
		fmt.Fprintln(stdout, "problem:", p)
	}
	if len(r.Problems) > 0 {
		return fmt.Errorf("%s: %d problem(s)", dir, len(r.Problems))
	}
	if t := r.Tree; t != nil {
		fmt.Fprintf(stdout, "ok: %s: skill sets %v, rule versions %v, instructions %v\n", dir, t.SkillSets(), t.RuleVersions(), t.InstructionNames())
	}
	return nil
}

// redteamOptions are check's --redteam settings: the model endpoint and
// limits as serve reads them (the same flags and variables), and the cohort.
type redteamOptions struct {
	on, strict, json bool
	variants         string
	tenant           string
	serve            Config
}

func (o *redteamOptions) options() []option {
	opts := []option{
		{Flag: "redteam", Default: "false", Arg: "BOOL", Usage: "run the red-team prompt-injection cases instead (see above)",
			Apply: func(v string) (err error) { o.on, err = strconv.ParseBool(v); return }},
		{Flag: "variant", Arg: "DIM=NAME", Repeat: true, Usage: "with --redteam: pin a dimension to a variant of canary.json (repeat, or comma-separate)",
			Apply: func(v string) error { o.variants = v; _, err := redteam.ParseVariants(v); return err }},
		{Flag: "strict", Default: "false", Arg: "BOOL", Usage: "with --redteam: the model-level cases gate too",
			Apply: func(v string) (err error) { o.strict, err = strconv.ParseBool(v); return }},
		{Flag: "json", Default: "false", Arg: "BOOL", Usage: "with --redteam: print the report as JSON",
			Apply: func(v string) (err error) { o.json, err = strconv.ParseBool(v); return }},
		{Flag: "tenant", Default: redteam.DefaultTenant, Arg: "NAME", Usage: "with --redteam: the tenant whose skills and MCP servers the sessions get",
			Apply: func(v string) error { o.tenant = v; return flagenv.NonEmpty(v) }},
	}
	for _, so := range serveOptions(&o.serve) {
		switch so.Env {
		case "OPENAI_API_KEY", "OPENAI_BASE_URL", "AGENTD_LLM_MAX_ATTEMPTS", "AGENTD_TURN_TIMEOUT", "AGENTD_MAX_ITERATIONS",
			"AGENTD_CONTEXT_TOKENS", "AGENTD_SHELL_TIMEOUT", "AGENTD_WEB_FETCH", "AGENTD_WEB_FETCH_ALLOW_CIDRS":
			opts = append(opts, so)
		}
	}
	return opts
}

// run is `agentd check --redteam`: the report on stdout, and an error
// (exit 1) when the gate fails.
func (o *redteamOptions) run(ctx context.Context, dir, model, models string, stdout io.Writer) error {
	c := o.serve
	if model == "" {
		return usageError{errors.New("--model (OPENAI_MODEL) is required with --redteam")}
	}
	if c.OpenAIKey == "" && strings.Contains(c.OpenAIBaseURL, "api.openai.com") {
		return usageError{errors.New("OPENAI_API_KEY is required for " + c.OpenAIBaseURL)}
	}
	variants, _ := redteam.ParseVariants(o.variants) // checked by the option
	rep, err := redteam.Run(ctx, redteam.Config{
		ConfigDir: dir, Model: model, Models: strings.Split(models, ","), Variants: variants, Tenant: o.tenant,
		BaseURL: c.OpenAIBaseURL, APIKey: c.OpenAIKey, LLMMaxAttempts: c.LLMMaxAttempts, TurnTimeout: c.TurnTimeout,
		MaxIterations: c.MaxIterations, ContextTokens: c.ContextTokens, ShellTimeout: c.ShellTimeout,
		WebFetch: c.WebFetch, WebFetchAllow: c.WebFetchAllow,
	})
	if err != nil {
		return err
	}
	if o.json {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	return errors.Join(err, rep.Gate(o.strict))
}
