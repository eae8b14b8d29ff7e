package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/agentd/agentd/internal/canary"
)

// governance is the configuration tree: AGENTAO.md, instructions/,
// skills/, .agentao/permissions and sandbox.json.
type governance struct {
	dir    string
	model  string
	models []string
}

var (
	sandboxProfiles = []string{"readonly", "workspace-write", "workspace-write-no-network"}
	rulePresets     = []string{"read-only", "workspace-write", "full-access", "plan"}
)

// None is the value of the skills or instructions dimension that means
// "nothing": no skills, no project instructions.
const none = "none"

func (g *governance) exists(rel string) bool {
	_, err := os.Stat(filepath.Join(g.dir, rel))
	return err == nil
}

// known is what the canary router may choose from. Dimensions canary.json
// omits default to what the tree has: the "default" skill set, rules v1,
// AGENTAO.md, or nothing (and the workspace-write preset) when it lacks
// them.
func (g *governance) known() canary.Known {
	defaults := [5]string{g.model, none, "workspace-write", "workspace-write-no-network", none}
	if g.exists("skills/default") {
		defaults[canary.Skills] = "default"
	}
	if g.exists(".agentao/permissions/v1.json") {
		defaults[canary.Rules] = "v1"
	}
	if g.exists("AGENTAO.md") {
		defaults[canary.Instructions] = "AGENTAO.md"
	}
	return canary.Known{
		Defaults: defaults,
		Models:   g.models,
		Exists: func(dim canary.Dimension, v string) error {
			if !filepath.IsLocal(v) {
				return fmt.Errorf("%s %q is not a name inside the config dir", dim, v)
			}
			var path string
			switch dim {
			case canary.Skills:
				if v == none {
					return nil
				}
				path = filepath.Join("skills", v)
			case canary.Rules:
				if slices.Contains(rulePresets, v) {
					return nil
				}
				path = filepath.Join(".agentao", "permissions", v+".json")
			case canary.Sandbox:
				if slices.Contains(sandboxProfiles, v) {
					return nil
				}
				return fmt.Errorf("unknown sandbox profile %q; known: %v", v, sandboxProfiles)
			case canary.Instructions:
				if v == none {
					return nil
				}
				path = v
			}
			if !g.exists(path) {
				return fmt.Errorf("%s %q: %s does not exist in %s", dim, v, path, g.dir)
			}
			return nil
		},
	}
}

// hashes are the content hashes of what a policy points at.
func (g *governance) hashes(p *canary.Policy) map[string]string { return nil }
