package prompt_test

import (
	"os"
	"testing"

	"github.com/agentd/agentd/internal/prompt"
	"github.com/agentd/agentd/internal/skill"
)

// maxPromptChars is CI's system prompt length check (Agentao §6.8): the
// prompt of the repository's configuration, with every default skill
// active, stays under this many characters (about 4 000 tokens).
const maxPromptChars = 16_000

func TestRepositoryPromptLength(t *testing.T) {
	root := os.DirFS("../..")
	instr, err := prompt.LoadInstructions(root, prompt.RootInstructions)
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := skill.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, set := range catalog.Sets() {
		for _, tenant := range append([]string{""}, catalog.Tenants()...) {
			skills, err := catalog.Skills(set, tenant)
			if err != nil {
				t.Fatal(err)
			}
			for _, parts := range []prompt.Parts{
				{Instructions: instr, Base: prompt.Base, Skills: skills},
				{Instructions: instr, Base: prompt.Base, Skills: skills, Active: skills},
			} {
				n := len([]rune(prompt.Build(parts)))
				t.Logf("set %q tenant %q, %d active: %d characters", set, tenant, len(parts.Active), n)
				if n > maxPromptChars {
					t.Errorf("set %q tenant %q with %d active skills: system prompt is %d characters; want at most %d",
						set, tenant, len(parts.Active), n, maxPromptChars)
				}
			}
		}
	}
}
