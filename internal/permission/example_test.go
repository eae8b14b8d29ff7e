package permission_test

import (
	"fmt"

	"github.com/agentd/agentd/internal/permission"
)

func ExampleRules_Check() {
	rules, err := permission.Parse("v3", []byte(`{
		"mode": "workspace-write",
		"rules": [
			{"tool": "run_shell_command", "args": {"command": "^go (test|vet|build) "}, "action": "allow"},
			{"tool": "mcp_github_.*", "action": "deny"}
		]
	}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	shell := func(command string) permission.Call {
		return permission.Call{Tool: "run_shell_command", Args: map[string]any{"command": command}, Confirm: true}
	}
	for _, c := range []permission.Call{
		shell("go test ./..."),                                   // the version's rule
		shell("npm install"),                                     // the preset asks about other shell commands
		shell("sudo timeout 5 rm -rf /"),                         // the floor: no rule can allow this
		{Tool: "mcp_github_create_issue", Confirm: true},         // the version's rule
		{Tool: "todo_write", Args: map[string]any{"todos": nil}}, // no rule: runs, it needs no confirmation
	} {
		d := rules.Check(c)
		fmt.Printf("%-5s %s\n", d.Action, d.Reason)
	}
	// Output:
	// allow user-rule: rules[0] of version v3 matched: run_shell_command {command: ^go (test|vet|build) } allow
	// ask   mode-preset: workspace-write preset rule 5 matched: run_shell_command ask
	// deny  hardline: recursive delete of /
	// deny  user-rule: rules[1] of version v3 matched: mcp_github_.* deny
	// allow default: no rule matched and the tool needs no confirmation
}
