package prompt

import (
	"fmt"
	"slices"
	"strings"

	"github.com/agentd/agentd/internal/skill"
)

// Parts are the inputs of a system prompt.
type Parts struct {
	// Instructions are the project instructions (AGENTAO.md or
	// instructions/<version>.md, frontmatter stripped). Empty: no
	// "Project Instructions" section.
	Instructions string
	// Base is agentd's stable prompt, normally [Base].
	Base string
	// Skills is the session's skill list (its set, with its tenant's
	// forks). The catalog shows those that have a description and are not
	// active, sorted by name.
	Skills []*skill.Skill
	// Active are the session's active skills, in activation order; a name
	// repeated is shown once. They need not be in Skills.
	Active []*skill.Skill
}

// Section headings, as Agentao writes them.
const (
	projectHeading   = "=== Project Instructions ==="
	agentHeading     = "=== Agent Instructions ==="
	availableHeading = "=== Available Skills ==="
	activeHeading    = "=== Active Skills ==="
)

// Build returns the system prompt for p, without a trailing newline. Its
// output depends only on p.
func Build(p Parts) string {
	var b strings.Builder
	if instr := strings.TrimSpace(p.Instructions); instr != "" {
		b.WriteString(projectHeading + "\n\n" + instr + "\n\n" + agentHeading + "\n\n")
	}
	b.WriteString(strings.TrimSpace(p.Base))

	active := map[string]bool{}
	var actives []*skill.Skill
	for _, s := range p.Active {
		if !active[s.Name] {
			active[s.Name] = true
			actives = append(actives, s)
		}
	}
	writeCatalog(&b, p.Skills, active)
	writeActive(&b, actives)
	return strings.TrimRight(b.String(), "\n")
}

// writeCatalog writes the inactive described skills, sorted by name.
func writeCatalog(b *strings.Builder, skills []*skill.Skill, active map[string]bool) {
	var list []*skill.Skill
	for _, s := range skills {
		if strings.TrimSpace(s.Description) != "" && !active[s.Name] {
			list = append(list, s)
		}
	}
	if len(list) == 0 {
		return
	}
	slices.SortFunc(list, func(a, b *skill.Skill) int { return strings.Compare(a.Name, b.Name) })
	b.WriteString("\n\n" + availableHeading + "\n")
	fmt.Fprintf(b, "You have access to specialized skills. Use the '%s' tool to activate them when needed.\n\n", skill.ActivateToolName)
	for _, s := range list {
		fmt.Fprintf(b, "• %s: %s\n", s.Name, oneLine(s.Description))
		if w := oneLine(s.WhenToUse); w != "" {
			fmt.Fprintf(b, "  Activate when: %s\n", w)
		}
	}
	fmt.Fprintf(b, "\nWhen the user's request matches a skill's description, call %s with the skill's name "+
		"and your task before you proceed. Active skills, if any, are listed with their instructions under "+
		"\"Active Skills\".", skill.ActivateToolName)
}

// writeActive writes the full SKILL.md and resources of each active skill.
func writeActive(b *strings.Builder, actives []*skill.Skill) {
	if len(actives) == 0 {
		return
	}
	b.WriteString("\n\n" + activeHeading + "\n")
	for _, s := range actives {
		fmt.Fprintf(b, "\n## %s - %s\n", s.Name, s.Title)
		fmt.Fprintf(b, "Skill file: %s\n", s.Path)
		fmt.Fprintf(b, "Skill directory: %s\n", s.Dir)
		b.WriteString("Relative paths in the skill's instructions (e.g. scripts/foo.py) resolve against the skill directory, not your current working directory.\n")
		fmt.Fprintf(b, "\n%s\n", strings.TrimSpace(s.Content))
		if len(s.Resources) > 0 {
			b.WriteString("\nResource files (relative to the skill directory):\n")
			for _, r := range s.Resources {
				for _, l := range r.Lines() {
					fmt.Fprintf(b, "  - %s\n", l)
				}
			}
		}
	}
}

// oneLine collapses runs of white space (a YAML block scalar's newlines
// included) to single spaces.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
