package prompt_test

import (
	"fmt"
	"testing/fstest"

	"github.com/agentd/agentd/internal/prompt"
	"github.com/agentd/agentd/internal/skill"
)

func ExampleBuild() {
	config := fstest.MapFS{
		"AGENTAO.md": {Data: []byte("---\nowner: platform\n---\nNever reveal credentials.\n")},
		"skills/default/debugging/SKILL.md": {Data: []byte(
			"---\nname: debugging\ndescription: Find a failure's cause.\nwhen-to-use: Something fails.\n---\n# Debugging\n\nReproduce first.\n")},
		"skills/default/release/SKILL.md": {Data: []byte("---\nname: release\ndescription: Cut a release.\n---\n# Release\n\nTag, then push.\n")},
	}
	instructions, err := prompt.LoadInstructions(config, "AGENTAO.md")
	if err != nil {
		panic(err)
	}
	catalog, err := skill.Load(config)
	if err != nil {
		panic(err)
	}
	skills, err := catalog.Skills("default", "acme")
	if err != nil {
		panic(err)
	}
	active, _ := skill.Select(skills, []string{"release"}) // the session's stored active names

	fmt.Println(prompt.Build(prompt.Parts{
		Instructions: instructions,
		Base:         "You are a test agent.", // the server passes prompt.Base
		Skills:       skills,
		Active:       active,
	}))
	// Output:
	// === Project Instructions ===
	//
	// Never reveal credentials.
	//
	// === Agent Instructions ===
	//
	// You are a test agent.
	//
	// === Available Skills ===
	// You have access to specialized skills. Use the 'activate_skill' tool to activate them when needed.
	//
	// • debugging: Find a failure's cause.
	//   Activate when: Something fails.
	//
	// When the user's request matches a skill's description, call activate_skill with the skill's name and your task before you proceed. Active skills, if any, are listed with their instructions under "Active Skills".
	//
	// === Active Skills ===
	//
	// ## release - Release
	// Skill file: skills/default/release/SKILL.md
	// Skill directory: skills/default/release
	// Relative paths in the skill's instructions (e.g. scripts/foo.py) resolve against the skill directory, not your current working directory.
	//
	// ---
	// name: release
	// description: Cut a release.
	// ---
	// # Release
	//
	// Tag, then push.
}
