package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/agentd/agentd/internal/control"
	"github.com/agentd/agentd/internal/flagenv"
	"github.com/agentd/agentd/internal/governance"
)

const checkSummary = `Validates a configuration tree before it ships: AGENTAO.md, instructions/,
skills/ (SKILL.md YAML), .agentao/permissions/*.json (rules and their regular
expressions), .agentao/sandbox.json (profile names) and .agentao/canary.json
(every value it names must exist), .agentao/mcp.json (MCP servers, fields and
types; a $VAR unset here is a warning). It also scans AGENTAO.md, instructions,
skills and mcp.json for credentials (Agentao's patterns) and fails if the system prompt of
any skill set, with every skill active, is longer than --max-prompt-chars.

With --sandbox it also runs the sandbox preflight of the tree's sandbox.json on
this machine's kernel, as agentd serve does at start, and prints per profile
which guarantees the kernel enforces (Landlock ABI, signal and socket scopes,
how a command's processes are ended); a profile the tree uses that cannot be
enforced is a problem. Run it on the machine (or in the image) agentd runs on.

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
	if err := parseOptions("check", checkSummary, opts, args, getenv, stdout); err != nil {
		return err
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
