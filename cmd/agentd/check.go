package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/agentd/agentd/internal/governance"
)

const checkSummary = `Validates a configuration tree before it ships: AGENTAO.md, instructions/,
skills/ (SKILL.md YAML), .agentao/permissions/*.json (rules and their regular
expressions), .agentao/sandbox.json (profile names) and .agentao/canary.json
(every value it names must exist). It also scans AGENTAO.md, instructions and
skills for credentials (Agentao's patterns) and fails if the system prompt of
any skill set, with every skill active, is longer than --max-prompt-chars.

Exit status: 0 clean, 1 problems (each printed with its file), 2 usage.`

func check(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var dir, model, models string
	maxPrompt := governance.DefaultMaxPromptChars
	opts := []option{
		{flag: "config-dir", env: "AGENTD_CONFIG_DIR", def: ".", arg: "DIR", usage: "the configuration tree to check",
			apply: func(v string) error { dir = v; return required(v) }},
		{flag: "model", env: "OPENAI_MODEL", arg: "ID", usage: "the model new sessions use (canary.json may name its own catalog)",
			apply: func(v string) error { model = v; return nil }},
		{flag: "models", env: "AGENTD_MODELS", arg: "IDS", usage: "other models of the catalog, comma-separated",
			apply: func(v string) error { models = v; return nil }},
		{flag: "max-prompt-chars", env: "AGENTD_MAX_PROMPT_CHARS", def: fmt.Sprint(governance.DefaultMaxPromptChars), arg: "N",
			usage: "longest system prompt allowed", apply: func(v string) (err error) { maxPrompt, err = intIn(v, 100, 10_000_000); return }},
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
	r := governance.Check(dir, governance.CheckOptions{Model: model, Models: catalog, MaxPromptChars: maxPrompt})
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
