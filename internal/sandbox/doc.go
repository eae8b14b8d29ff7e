// Package sandbox confines every run_shell_command with the Linux kernel,
// following Agentao's sandbox.json profiles, and fails closed.
//
// # Configuration
//
// [Load] and [Parse] read Agentao's flat sandbox.json schema. Anything
// malformed (bad JSON, a wrong type, an unknown or duplicated field, an
// unknown profile name, profiles_dir or workspace_root set) is an error that
// names the field; a missing file means the defaults: enabled, with the
// default profile workspace-write-no-network.
//
// # Profiles
//
// Reads and exec are allowed everywhere, as in Agentao's profiles.
//
//   - [Readonly]: no writes anywhere except /dev/null; no network.
//   - [WorkspaceWrite]: writes only in the session's workspace, the extra
//     writable directories the server names, /tmp, and the character
//     devices /dev/null, /dev/zero and /dev/full; network allowed.
//   - [WorkspaceWriteNoNetwork]: the same writes, no network.
//
// # Enforcement
//
// [Policy.Hook] returns the function internal/tools calls as
// Config.PrepareShell. It rewrites the command to re-execute the agentd
// binary as a helper:
//
//	<self> __sandbox-exec <spec> -- <original argv...>
//
// where <spec> is one argv element, base64url (unpadded) of a JSON object
// {"v":1,"profile":…,"workspace":…,"writable":[…],"path":…}; "path" is the
// program to execute, the argv after "--" is passed to it unchanged, and the
// environment is passed through unchanged. The helper ([ExecMain]) locks its
// OS thread, sets no_new_privs, drops every capability, applies a Landlock
// ruleset and, for the no-network profiles, a seccomp filter, then execve's
// the command from that thread, so only the command (and its children) is
// confined, never the server. Landlock is strict: if the kernel's Landlock ABI
// cannot enforce what the profile needs, the helper exits 125 and the
// command never runs.
//
// The helper's own failures are reported on stderr with the prefix
// "agentd sandbox:" and the exit codes of docker run: 125 when the sandbox
// could not be set up (nothing ran), 126 when the command could not be
// executed, 127 when it does not exist.
//
// # Fail closed
//
// [Preflight] proves, on the running kernel, that each profile confines a
// real command (a write outside the workspace fails, a TCP connect fails
// under no-network, ...) and records its [Report] in the Policy. The hook
// refuses to run anything, with an error wrapping [ErrMisconfigured], when
// the policy could not be loaded ([Refuse]), the profile is unknown,
// Preflight has not run, or the profile failed its preflight. A policy with
// "enabled": false runs commands unconfined, and its Report says so loudly.
//
// # Limits
//
// Reads are allowed everywhere: a command can read other sessions'
// workspaces and agentd's data directory (not agentd's own environment or
// memory through /proc: Landlock denies ptrace-class access to processes
// outside the sandbox). /tmp is shared by all sessions. Landlock does not
// restrict chmod, chown, utime, setxattr or stat outside the workspace
// (dropping capabilities limits chown and the rest to files the user owns).
// Signals are not scoped, so a command can signal any process of agentd's
// user, agentd included: scoping them would stop a later command from
// killing an earlier background one. Pathname UNIX sockets outside the
// sandbox (e.g. /var/run/docker.sock) stay reachable below Landlock ABI 9.
//
// The package has no package-level mutable state. A Policy is safe for
// concurrent use.
package sandbox
