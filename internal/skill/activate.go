package skill

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/agentd/agentd/internal/agent"
)

// ActivateToolName is the name of the activation tool: the wire contract
// the model learned from Agentao. Never rename it.
const ActivateToolName = "activate_skill"

// maxDescription is how much of a description the activation message
// repeats, in characters.
const maxDescription = 200

// dirNote tells the model how to read paths in a skill's instructions.
const dirNote = "Relative paths in the skill's instructions (e.g. scripts/foo.py) resolve against the skill directory, not your current working directory."

// ActivateFunc records that the session activated s, and reports whether s
// was already active. It must be safe for concurrent use. An error is
// shown to the model as the tool's failure.
type ActivateFunc func(ctx context.Context, s *Skill) (alreadyActive bool, err error)

// ActivateTool is Agentao's activate_skill for one session's skills. It
// implements [agent.Tool]. It holds no session state: activations go to
// the [ActivateFunc], and the session shows active skills through the
// system prompt it rebuilds every turn.
type ActivateTool struct {
	skills   []*Skill
	activate ActivateFunc
	spec     agent.ToolSpec
}

var _ agent.Tool = (*ActivateTool)(nil)

// NewActivateTool returns activate_skill over skills, the session's skill
// list (as from [Catalog.Skills]). Any skill of the list can be activated,
// including those the catalog hides for lack of a description. Build a new
// tool when the list changes.
func NewActivateTool(skills []*Skill, activate ActivateFunc) *ActivateTool {
	names := make([]string, len(skills))
	for i, s := range skills {
		names[i] = s.Name
	}
	slices.Sort(names)
	name := map[string]any{"type": "string", "description": "Name of the skill to activate."}
	if len(names) > 0 {
		name["enum"] = names // keeps the model from misspelling a name
	}
	params, _ := json.Marshal(map[string]any{ // cannot fail: strings only
		"type": "object",
		"properties": map[string]any{
			"skill_name":       name,
			"task_description": map[string]any{"type": "string", "description": "The task that you will do with this skill."},
		},
		"required": []string{"skill_name", "task_description"},
	})
	return &ActivateTool{
		skills:   slices.Clone(skills),
		activate: activate,
		spec: agent.ToolSpec{
			Name:        ActivateToolName,
			Description: "Activate a skill. A skill gives you instructions and files for one type of task.",
			Parameters:  params,
			ReadOnly:    false, // it changes the session's active skills
			Confirm:     false,
		},
	}
}

// Spec describes activate_skill: arguments skill_name and
// task_description, both required; not read-only; no confirmation.
func (t *ActivateTool) Spec() agent.ToolSpec { return t.spec }

// Run activates the named skill and returns Agentao's activation message.
// An unknown skill is an error listing the available ones; a skill that
// is already active is a success that says so.
func (t *ActivateTool) Run(ctx context.Context, c agent.Call) (string, error) {
	var args map[string]json.RawMessage
	if err := json.Unmarshal(c.Args, &args); err != nil {
		return "", fmt.Errorf("arguments must be a JSON object: %v", err)
	}
	name, err := stringArg(args, "skill_name")
	if err != nil {
		return "", err
	}
	task, err := stringArg(args, "task_description")
	if err != nil {
		return "", err
	}
	s := find(t.skills, name)
	if s == nil {
		return "", t.unknown(name)
	}
	already, err := t.activate(ctx, s)
	if err != nil {
		return "", fmt.Errorf("activate skill %q: %w", name, err)
	}
	if already {
		return fmt.Sprintf("Skill already active: %s\nTask: %s\n"+
			"Its full instructions are already in the system prompt under \"=== Active Skills ===\".", s.Name, task), nil
	}
	return activationMessage(s, task), nil
}

func (t *ActivateTool) unknown(name string) error {
	if len(t.skills) == 0 {
		return fmt.Errorf("unknown skill %q: no skills are available in this session", name)
	}
	names := make([]string, len(t.skills))
	for i, s := range t.skills {
		names[i] = s.Name
	}
	slices.Sort(names)
	return fmt.Errorf("unknown skill %q. Available skills: %s", name, strings.Join(names, ", "))
}

func stringArg(args map[string]json.RawMessage, key string) (string, error) {
	raw, ok := args[key]
	if !ok || string(raw) == "null" {
		return "", fmt.Errorf("argument %q is required", key)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("argument %q must be a string", key)
	}
	if s = strings.TrimSpace(s); s == "" {
		return "", fmt.Errorf("argument %q must not be empty", key)
	}
	return s, nil
}

// activationMessage is Agentao's activation message, with paths relative
// to the configuration root.
func activationMessage(s *Skill, task string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Skill activated: %s\n", s.Name)
	fmt.Fprintf(&b, "Title: %s\n", s.Title)
	if s.Description != "" {
		fmt.Fprintf(&b, "Description: %s\n", truncate(s.Description, maxDescription))
	}
	fmt.Fprintf(&b, "Task: %s\n", task)
	fmt.Fprintf(&b, "Documentation: %s\n", s.Path)
	fmt.Fprintf(&b, "Skill directory: %s\n", s.Dir)
	b.WriteString(dirNote + "\n")
	if len(s.Resources) > 0 {
		b.WriteString("\n=== Available Resource Files ===\n")
		for i, r := range s.Resources {
			if i > 0 {
				b.WriteString("\n")
			}
			b.WriteString(resourceHeading(r.Name) + ":\n")
			for _, l := range r.Lines() {
				fmt.Fprintf(&b, "  - %s\n", l)
			}
		}
	}
	b.WriteString("\nThe skill is now active: its full instructions are in the system prompt under \"=== Active Skills ===\".")
	return b.String()
}

func resourceHeading(dir string) string {
	switch dir {
	case "references":
		return "References"
	case "assets":
		return "Assets"
	}
	return "Scripts (prefer running or patching these instead of retyping their code)"
}

// truncate cuts s to n characters, marking the cut with "...".
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return strings.TrimRight(string(r[:n]), " ") + "..."
}
