package skill_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/skill"
)

// session is a fake session layer: it records activations.
type session struct {
	mu     sync.Mutex
	active []string
	err    error
}

func (s *session) activate(_ context.Context, sk *skill.Skill) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return false, s.err
	}
	if slices.Contains(s.active, sk.Name) {
		return true, nil
	}
	s.active = append(s.active, sk.Name)
	return false, nil
}

func activateFixture(t *testing.T) []*skill.Skill {
	t.Helper()
	long := strings.Repeat("é", 199) + "xyz"
	fsys := fstest.MapFS{
		"skills/default/code-review/SKILL.md":         file(reviewMD),
		"skills/default/code-review/references/a.md":  file("x"),
		"skills/default/code-review/assets/t.md":      file("x"),
		"skills/default/code-review/scripts/check.sh": file("x"),
		"skills/default/long/SKILL.md":                file("---\ndescription: " + long + "\n---\n"),
		"skills/default/bare/SKILL.md":                file("no frontmatter, no title\n"),
	}
	for i := range skill.MaxResources + 2 {
		fsys["skills/default/long/scripts/"+string(rune('a'+i/26))+string(rune('a'+i%26))+".py"] = file("x")
	}
	c := mustLoad(t, fsys)
	list, err := c.Skills("default", "")
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func call(args string) agent.Call {
	return agent.Call{ID: "call_1", Name: skill.ActivateToolName, Args: json.RawMessage(args), Output: func(string) {}}
}

func TestActivateToolSpec(t *testing.T) {
	tool := skill.NewActivateTool(activateFixture(t), (&session{}).activate)
	spec := tool.Spec()
	if spec.Name != "activate_skill" || spec.ReadOnly || spec.Confirm {
		t.Errorf("Spec() = %q read-only %t confirm %t; want activate_skill, false, false", spec.Name, spec.ReadOnly, spec.Confirm)
	}
	var params struct {
		Type       string
		Required   []string
		Properties map[string]struct {
			Type string
			Enum []string
		}
	}
	if err := json.Unmarshal(spec.Parameters, &params); err != nil {
		t.Fatalf("Parameters %s: %v", spec.Parameters, err)
	}
	if params.Type != "object" || !slices.Equal(params.Required, []string{"skill_name", "task_description"}) {
		t.Errorf("Parameters = %s; want an object requiring skill_name and task_description", spec.Parameters)
	}
	if got := params.Properties["skill_name"].Enum; !slices.Equal(got, []string{"bare", "code-review", "long"}) {
		t.Errorf("skill_name enum = %q; want [bare code-review long]", got)
	}
	if got := params.Properties["task_description"].Type; got != "string" {
		t.Errorf("task_description type = %q; want string", got)
	}

	empty := skill.NewActivateTool(nil, (&session{}).activate).Spec()
	if strings.Contains(string(empty.Parameters), "enum") {
		t.Errorf("Parameters without skills = %s; want no enum", empty.Parameters)
	}
}

func TestActivateToolRun(t *testing.T) {
	list := activateFixture(t)
	tests := []struct {
		name    string
		args    string
		want    string
		wantErr string
	}{
		{
			name: "activation message",
			args: `{"skill_name": "code-review", "task_description": "Review PR 12"}`,
			want: "Skill activated: code-review\n" +
				"Title: Code review\n" +
				"Description: Review a diff for bugs.\n" +
				"Task: Review PR 12\n" +
				"Documentation: skills/default/code-review/SKILL.md\n" +
				"Skill directory: skills/default/code-review\n" +
				"Relative paths in the skill's instructions (e.g. scripts/foo.py) resolve against the skill directory, not your current working directory.\n" +
				"\n=== Available Resource Files ===\n" +
				"References:\n  - references/a.md\n" +
				"\nAssets:\n  - assets/t.md\n" +
				"\nScripts (prefer running or patching these instead of retyping their code):\n  - scripts/check.sh\n" +
				"\nThe skill is now active: its full instructions are in the system prompt under \"=== Active Skills ===\".",
		},
		{
			name: "no description, no resources",
			args: `{"skill_name": "bare", "task_description": "t"}`,
			want: "Skill activated: bare\nTitle: bare\nTask: t\n" +
				"Documentation: skills/default/bare/SKILL.md\nSkill directory: skills/default/bare\n" +
				"Relative paths in the skill's instructions (e.g. scripts/foo.py) resolve against the skill directory, not your current working directory.\n" +
				"\nThe skill is now active: its full instructions are in the system prompt under \"=== Active Skills ===\".",
		},
		{
			name: "already active",
			args: `{"skill_name": "code-review", "task_description": "Again"}`,
			want: "Skill already active: code-review\nTask: Again\n" +
				"Its full instructions are already in the system prompt under \"=== Active Skills ===\".",
		},
		{name: "unknown skill", args: `{"skill_name": "deploy", "task_description": "t"}`,
			wantErr: `unknown skill "deploy". Available skills: bare, code-review, long`},
		{name: "missing skill_name", args: `{"task_description": "t"}`, wantErr: `argument "skill_name" is required`},
		{name: "null task", args: `{"skill_name": "bare", "task_description": null}`, wantErr: `argument "task_description" is required`},
		{name: "empty task", args: `{"skill_name": "bare", "task_description": "  "}`, wantErr: `argument "task_description" must not be empty`},
		{name: "number", args: `{"skill_name": 3, "task_description": "t"}`, wantErr: `argument "skill_name" must be a string`},
		{name: "not an object", args: `[]`, wantErr: "arguments must be a JSON object: json: cannot unmarshal array into Go value of type map[string]json.RawMessage"},
	}
	sess := &session{}
	tool := skill.NewActivateTool(list, sess.activate)
	for _, tc := range tests { // in order: "already active" follows the first activation
		t.Run(tc.name, func(t *testing.T) {
			got, err := tool.Run(t.Context(), call(tc.args))
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Errorf("Run(%s) = %q, %v; want error %q", tc.args, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Run(%s) = %v\n%s\nwant\n%s", tc.args, err, got, tc.want)
			}
		})
	}
	if want := []string{"code-review", "bare"}; !slices.Equal(sess.active, want) {
		t.Errorf("recorded activations = %q; want %q", sess.active, want)
	}
}

func TestActivateToolTruncatesAndCaps(t *testing.T) {
	tool := skill.NewActivateTool(activateFixture(t), (&session{}).activate)
	got, err := tool.Run(t.Context(), call(`{"skill_name": "long", "task_description": "t"}`))
	if err != nil {
		t.Fatal(err)
	}
	wantDesc := "Description: " + strings.Repeat("é", 199) + "x...\n"
	if !strings.Contains(got, wantDesc) {
		t.Errorf("Run(long) =\n%s\nwant it to contain %q (200 characters and ...)", got, wantDesc)
	}
	if want := "  - ... (2 more files under scripts/ not shown)\n"; !strings.Contains(got, want) {
		t.Errorf("Run(long) =\n%s\nwant it to contain %q", got, want)
	}
}

func TestActivateToolErrors(t *testing.T) {
	list := activateFixture(t)
	failing := &session{err: errors.New("store unavailable")}
	_, err := skill.NewActivateTool(list, failing.activate).Run(t.Context(), call(`{"skill_name": "bare", "task_description": "t"}`))
	if want := `activate skill "bare": store unavailable`; err == nil || err.Error() != want {
		t.Errorf("Run with a failing session = %v; want %q", err, want)
	}
	_, err = skill.NewActivateTool(nil, (&session{}).activate).Run(t.Context(), call(`{"skill_name": "bare", "task_description": "t"}`))
	if want := `unknown skill "bare": no skills are available in this session`; err == nil || err.Error() != want {
		t.Errorf("Run without skills = %v; want %q", err, want)
	}
}
