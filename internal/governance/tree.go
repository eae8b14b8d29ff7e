// Package governance loads agentd's configuration tree — AGENTAO.md,
// instructions/, skills/, .agentao/permissions/<version>.json and
// .agentao/sandbox.json — into an immutable Tree that answers, for a
// session's assignment, which rules, sandbox profile, skills and
// instructions apply, and checks the tree for problems (agentd check).
//
// A Tree never changes. The server loads a new one when the files change
// and swaps it in only if it loads and still satisfies the served canary
// configuration; otherwise the old one keeps serving.
package governance

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/agentd/agentd/internal/canary"
	"github.com/agentd/agentd/internal/permission"
	"github.com/agentd/agentd/internal/prompt"
	"github.com/agentd/agentd/internal/sandbox"
	"github.com/agentd/agentd/internal/skill"
)

// None is the skills or instructions value that means "nothing".
const None = "none"

// Paths inside the tree.
const (
	PermissionsDir = ".agentao/permissions"
	SandboxFile    = ".agentao/sandbox.json"
	CanaryFile     = ".agentao/canary.json"
	MCPFile        = ".agentao/mcp.json" // read by internal/control, checked by agentd check
)

// Tree is a loaded configuration tree.
type Tree struct {
	dir          string
	skills       *skill.Catalog               // nil: no skills/ directory
	skillsBroken bool                         // skills/ did not load: skill values cannot be checked
	instructions map[string]string            // path ("AGENTAO.md", "instructions/v2.md") → text
	rules        map[string]*permission.Rules // version → compiled rules
	sandbox      *sandbox.Policy              // nil when sandboxErr is set
	sandboxErr   error
	hashes       map[string]string // "skills/<set>", "rules/<v>", "sandbox.json", "instructions/<path>"
	warnings     []string
}

// Load reads the tree at dir. Malformed skills, rule versions or
// instruction files are errors (each "path:line: message"), returned with
// the part of the tree that did load (for agentd check, which reports
// everything at once; the server refuses such a tree). A broken
// sandbox.json is not an error: it is kept (see Sandbox), and shell
// commands are then refused (fail closed) while the rest works.
func Load(dir string) (*Tree, error) {
	fsys := os.DirFS(dir)
	t := &Tree{dir: dir, instructions: map[string]string{}, rules: map[string]*permission.Rules{}, hashes: map[string]string{}}
	var errs []error

	cat, err := skill.Load(fsys)
	switch {
	case errors.Is(err, fs.ErrNotExist) && cat == nil:
		t.warnings = append(t.warnings, "skills/: no skill sets (the directory is missing)")
	case err != nil:
		errs = append(errs, err)
		t.skillsBroken = true
	default:
		t.skills = cat
		for _, w := range cat.Warnings() {
			t.warnings = append(t.warnings, w.Error())
		}
		for _, set := range cat.Sets() {
			if h, err := cat.Hash(set); err == nil {
				t.hashes["skills/"+set] = "sha256:" + strings.TrimPrefix(h, "sha256:")
			}
		}
	}

	names := []string{prompt.RootInstructions}
	if entries, err := fs.ReadDir(fsys, "instructions"); err == nil {
		for _, e := range entries {
			if !e.IsDir() && strings.HasSuffix(e.Name(), ".md") {
				names = append(names, "instructions/"+e.Name())
			}
		}
	}
	for _, name := range names {
		text, err := prompt.LoadInstructions(fsys, name)
		switch {
		case errors.Is(err, fs.ErrNotExist) && name == prompt.RootInstructions:
			t.warnings = append(t.warnings, "AGENTAO.md: missing; sessions get no project instructions unless a version is assigned")
			continue
		case err != nil:
			errs = append(errs, err)
			continue
		}
		t.instructions[name] = text
		t.hashes["instructions/"+name] = sum([]byte(text))
	}

	if entries, err := fs.ReadDir(fsys, PermissionsDir); err == nil {
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
				continue
			}
			v := strings.TrimSuffix(e.Name(), ".json")
			p := path.Join(PermissionsDir, e.Name())
			data, err := fs.ReadFile(fsys, p)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p, err))
				continue
			}
			r, err := permission.Parse(v, data)
			if err != nil {
				errs = append(errs, prefixLines(p, err))
				continue
			}
			t.rules[v] = r
			t.hashes["rules/"+v] = sum(data)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("%s: %w", PermissionsDir, err))
	}

	t.sandbox, t.sandboxErr = sandbox.Load(path.Join(dir, SandboxFile))
	if data, err := os.ReadFile(path.Join(dir, SandboxFile)); err == nil {
		t.hashes["sandbox.json"] = sum(data)
	}
	if t.sandboxErr != nil {
		t.sandboxErr = fmt.Errorf("%s: %w", SandboxFile, t.sandboxErr)
	}
	return t, errors.Join(errs...)
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// prefixLines puts "path: " before every line of err that lacks it.
func prefixLines(p string, err error) error {
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.HasPrefix(line, p) {
			line = p + ": " + line
		}
		out = append(out, line)
	}
	return errors.New(strings.Join(out, "\n"))
}

// Dir returns the tree's directory.
func (t *Tree) Dir() string { return t.dir }

// Warnings returns what is suspicious but not wrong.
func (t *Tree) Warnings() []string { return slices.Clone(t.warnings) }

// Sandbox returns the sandbox policy, or why there is none.
func (t *Tree) Sandbox() (*sandbox.Policy, error) { return t.sandbox, t.sandboxErr }

// SkillSets returns the skill sets.
func (t *Tree) SkillSets() []string {
	if t.skills == nil {
		return nil
	}
	return t.skills.Sets()
}

// RuleVersions returns the rule versions in .agentao/permissions.
func (t *Tree) RuleVersions() []string {
	out := make([]string, 0, len(t.rules))
	for v := range t.rules {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// InstructionNames returns the instruction files.
func (t *Tree) InstructionNames() []string {
	out := make([]string, 0, len(t.instructions))
	for n := range t.instructions {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Rules returns the rules of a value of the rules dimension: a version in
// .agentao/permissions, or a preset (read-only, workspace-write,
// full-access, plan).
func (t *Tree) Rules(value string) (*permission.Rules, error) {
	if r, ok := t.rules[value]; ok {
		return r, nil
	}
	if m := permission.Mode(value); m.Valid() {
		return permission.Preset(m)
	}
	return nil, fmt.Errorf("rules %q: no %s/%s.json and not a preset (read-only, workspace-write, full-access, plan); versions: %v",
		value, PermissionsDir, value, t.RuleVersions())
}

// Skills returns a tenant's skills of a set ("none": no skills).
func (t *Tree) Skills(set, tenant string) ([]*skill.Skill, error) {
	if set == None {
		return nil, nil
	}
	if t.skills == nil {
		return nil, fmt.Errorf("skills %q: the configuration has no skills/ directory", set)
	}
	return t.skills.Skills(set, tenant)
}

// Instructions returns the text of a value of the instructions dimension
// ("none": no instructions).
func (t *Tree) Instructions(value string) (string, error) {
	if value == None {
		return "", nil
	}
	p, err := prompt.InstructionsPath(value)
	if err != nil {
		return "", err
	}
	text, ok := t.instructions[p]
	if !ok {
		if p == prompt.RootInstructions {
			return "", nil // a missing AGENTAO.md is a warning, not an error
		}
		return "", fmt.Errorf("instructions %q: %s does not exist; have %v", value, p, t.InstructionNames())
	}
	return text, nil
}

// Known is what the canary router may choose from in this tree. Dimensions
// canary.json omits default to: the model; the "default" skill set (or
// none); rules v1 (or the workspace-write preset); sandbox.json's
// default_profile; AGENTAO.md (or none).
func (t *Tree) Known(model string, models []string) canary.Known {
	defaults := canary.ByDimension{model, None, string(permission.ModeWorkspaceWrite), string(sandbox.DefaultProfile), None}
	if slices.Contains(t.SkillSets(), "default") {
		defaults[canary.Skills] = "default"
	}
	if _, ok := t.rules["v1"]; ok {
		defaults[canary.Rules] = "v1"
	}
	if t.sandbox != nil {
		defaults[canary.Sandbox] = string(t.sandbox.Default())
	}
	if _, ok := t.instructions[prompt.RootInstructions]; ok {
		defaults[canary.Instructions] = prompt.RootInstructions
	}
	return canary.Known{Defaults: defaults, Models: models, Exists: t.Exists}
}

// Exists says why value v of dimension dim (not the model: the catalog
// decides those) cannot be served from this tree, or nil.
func (t *Tree) Exists(dim canary.Dimension, v string) error {
	switch dim {
	case canary.Skills:
		if v == None || slices.Contains(t.SkillSets(), v) || t.skillsBroken {
			return nil
		}
		return fmt.Errorf("skill set %q does not exist; sets: %v (or %q)", v, t.SkillSets(), None)
	case canary.Rules:
		_, err := t.Rules(v)
		return err
	case canary.Sandbox:
		if _, err := sandbox.ParseProfile(v); err != nil {
			return err
		}
		return nil
	case canary.Instructions:
		if v == None {
			return nil
		}
		p, err := prompt.InstructionsPath(v)
		if err != nil {
			return err
		}
		if _, ok := t.instructions[p]; !ok {
			return fmt.Errorf("instructions %q: %s does not exist; have %v (or %q)", v, p, t.InstructionNames(), None)
		}
		return nil
	}
	return nil
}

// Hashes returns the content hashes of everything a policy points at, so
// a configuration version records exactly what ran.
func (t *Tree) Hashes(p *canary.Policy) map[string]string {
	out := map[string]string{}
	for _, dim := range []canary.Dimension{canary.Skills, canary.Rules, canary.Instructions} {
		values := []string{p.Stable(dim)}
		for _, n := range p.VariantNames(dim) {
			v, _ := p.Variant(dim, n)
			values = append(values, v.Value)
		}
		for _, v := range values {
			var key string
			switch dim {
			case canary.Skills:
				key = "skills/" + v
			case canary.Rules:
				key = "rules/" + v
			case canary.Instructions:
				ip, err := prompt.InstructionsPath(v)
				if err != nil {
					continue
				}
				key = "instructions/" + ip
			}
			if h, ok := t.hashes[key]; ok {
				out[key] = h
			}
		}
	}
	if h, ok := t.hashes["sandbox.json"]; ok {
		out["sandbox.json"] = h
	}
	return out
}
