package governance

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/agentd/agentd/internal/canary"
	"github.com/agentd/agentd/internal/prompt"
	"github.com/agentd/agentd/internal/secrets"
)

// CheckOptions tune Check.
type CheckOptions struct {
	// Model and Models are the server's OPENAI_MODEL and AGENTD_MODELS,
	// the defaults of the model dimension. Empty Model: canary.json must
	// name its models.
	Model  string
	Models []string
	// MaxPromptChars fails a tree whose assembled system prompt, for any
	// skill set (with every skill active) and instructions file, is longer.
	MaxPromptChars int
}

// DefaultMaxPromptChars is the default system prompt limit of Check.
const DefaultMaxPromptChars = 16_000

// Report is what Check found: problems fail the check, warnings do not.
type Report struct {
	Problems []string
	Warnings []string
	Tree     *Tree // nil when the tree does not load
}

// Check validates the whole tree at dir: YAML, JSON, rule regexes, profile
// names, canary.json's references, secrets in AGENTAO.md, instructions and
// skills, and the length of every assembled system prompt. Each problem
// names its file.
func Check(dir string, opt CheckOptions) Report {
	var r Report
	if opt.MaxPromptChars <= 0 {
		opt.MaxPromptChars = DefaultMaxPromptChars
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		r.Problems = append(r.Problems, fmt.Sprintf("%s: not a readable directory", dir))
		return r
	}
	t, err := Load(dir)
	if err != nil {
		r.Problems = append(r.Problems, strings.Split(err.Error(), "\n")...)
	}
	if t != nil {
		r.Tree = t
		r.Warnings = append(r.Warnings, t.Warnings()...)
		if _, err := t.Sandbox(); err != nil {
			r.Problems = append(r.Problems, err.Error()+" (the shell tool refuses every command until this is fixed)")
		}
		r.Problems = append(r.Problems, checkCanary(dir, t, opt)...)
		r.Problems = append(r.Problems, checkPrompts(t, opt.MaxPromptChars)...)
	}
	r.Problems = append(r.Problems, scanSecrets(dir)...)
	return r
}

func checkCanary(dir string, t *Tree, opt CheckOptions) []string {
	data, err := os.ReadFile(filepath.Join(dir, CanaryFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // every dimension on its default
	}
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", CanaryFile, err)}
	}
	model, models := opt.Model, opt.Models
	if model == "" {
		model = "$OPENAI_MODEL" // not known here: any catalog entry will do
		models = append([]string{model}, models...)
	}
	if _, err := canary.Parse(data, t.Known(model, models)); err != nil {
		var out []string
		for _, line := range strings.Split(err.Error(), "\n") {
			out = append(out, CanaryFile+": "+strings.TrimPrefix(line, "canary.json: "))
		}
		return out
	}
	return nil
}

// checkPrompts builds, for every skill set and tenant fork and every
// instructions file, the system prompt with every skill active: the
// longest it can get.
func checkPrompts(t *Tree, max int) []string {
	var out []string
	sets := append(t.SkillSets(), None)
	tenants := []string{""}
	if t.skills != nil {
		tenants = append(tenants, t.skills.Tenants()...)
	}
	instr := append(t.InstructionNames(), None)
	for _, set := range sets {
		for _, tenant := range tenants {
			skills, err := t.Skills(set, tenant)
			if err != nil {
				continue
			}
			for _, in := range instr {
				text, err := t.Instructions(in)
				if err != nil {
					continue
				}
				p := prompt.Build(prompt.Parts{Instructions: text, Base: prompt.Base, Skills: skills, Active: skills})
				if n := len([]rune(p)); n > max {
					who := "skills/" + set
					if tenant != "" {
						who += " (tenant " + tenant + ")"
					}
					out = append(out, fmt.Sprintf("%s with %s: the system prompt is %d characters with every skill active, over the limit of %d (--max-prompt-chars)",
						who, in, n, max))
				}
			}
		}
	}
	return out
}

// scanSecrets looks for credentials in what goes into prompts and git:
// AGENTAO.md, instructions/ and everything under skills/.
func scanSecrets(dir string) []string {
	fsys := os.DirFS(dir)
	var files []string
	if _, err := fs.Stat(fsys, prompt.RootInstructions); err == nil {
		files = append(files, prompt.RootInstructions)
	}
	for _, root := range []string{"instructions", "skills"} {
		_ = fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files = append(files, p)
			}
			return nil
		})
	}
	sort.Strings(files)
	var out []string
	for _, f := range files {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", f, err))
			continue
		}
		for _, fd := range secrets.Scan(string(data)) {
			out = append(out, fmt.Sprintf("%s:%d: looks like a secret (%s, column %d); keep credentials out of prompts and git", path.Clean(f), fd.Line, fd.Kind, fd.Column))
		}
	}
	return out
}
