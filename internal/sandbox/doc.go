// Package sandbox confines every run_shell_command and MCP stdio server
// with the Linux kernel, following Agentao's sandbox.json profiles, and
// fails closed. The threat model and each guarantee are in
// docs/security.md.
//
// # Configuration
//
// [Load] and [Parse] read Agentao's flat sandbox.json schema, plus an
// optional "profiles" object that gives a built-in profile extra
// read-only paths and environment variables ([ProfileSettings]). Anything
// malformed (bad JSON, a wrong type, an unknown or duplicated field, an
// unknown profile name, profiles_dir or workspace_root set) is an error that
// names the field; a missing file means the defaults: enabled, with the
// default profile workspace-write-no-network.
//
// # Profiles
//
// Every profile reads only the workspace, the system paths (/bin /sbin /usr
// /lib* /etc), /dev/{null,zero,full,random,urandom} and the extra read-only
// paths; never /proc, /tmp or what the caller hides ([Confine]).
//
//   - [Readonly]: no writes but /dev/null; no network.
//   - [WorkspaceWrite]: writes in the workspace and the extra writable
//     directories (and /dev/null, /dev/zero, /dev/full); network allowed.
//   - [WorkspaceWriteNoNetwork]: the same writes, no network.
//
// Under every profile a command can neither signal nor connect to an
// abstract UNIX socket of a process outside its own sandbox.
//
// # Enforcement
//
// [Policy.HookWith] returns the function internal/tools calls as
// Config.PrepareShell. It rewrites the command to re-execute the agentd
// binary as a helper:
//
//	<self> __sandbox-exec <spec> -- <original argv...>
//
// where <spec> is one argv element, base64url (unpadded) of a JSON object
// {"v":2,"profile":…,"workspace":…,"writable":[…],"read_only":[…],
// "hidden":[…],"path":…,"extra_files":n}; "path" is the program to execute,
// the argv after "--" is passed to it unchanged, and so are the
// environment, the working directory and descriptors 0-2 (and extra_files
// more). The helper ([ExecMain]) builds a Landlock ruleset with go-landlock,
// confines one locked thread (no_new_privs, no capabilities, the ruleset,
// and a seccomp filter: socket families for the no-network profiles, and
// for every profile no thread-directed signal or trace aimed at that very
// thread), starts the command from that thread and lets the thread exit:
// the command is confined, the helper's remaining threads are not, and so
// the command can neither signal nor trace its helper. The helper stays as the command's parent and child
// subreaper until every process the command started is gone: when the
// command's first process exits, or the helper gets SIGTERM (its
// parent-death signal, sent when agentd dies, kill -9 included), it kills
// all of them, setsid daemons included, and exits with the command's status
// (or dies of the same signal). Where agentd may make cgroup v2 groups
// (the preflight proves it), the command also runs in a cgroup of its own
// that the helper ends with cgroup.kill, and [SweepCgroups] ends what a
// helper killed outright left. It leaves the command's process group, so
// agentd's signals to the group reach the command only. Landlock is strict:
// if the kernel's Landlock ABI cannot enforce what the profile needs (ABI 6),
// the helper exits 125 and the command never runs.
//
// The helper's own failures are reported on stderr with the prefix
// "agentd sandbox:" and the exit codes of docker run: 125 when the sandbox
// could not be set up (nothing ran), 126 when the command could not be
// executed, 127 when it does not exist.
//
// # Fail closed
//
// [Preflight] proves, on the running kernel, that each profile confines a
// real command (reads and writes outside fail, /proc and /tmp are closed,
// agentd and the helper cannot be signalled, UNIX sockets outside are out of
// reach, a TCP connect fails under no-network, no capabilities are left, a
// setsid daemon dies with its command) and records its [Report] in the
// Policy, with per profile the guarantees the kernel enforces. The hook
// refuses to run anything, with an error wrapping [ErrMisconfigured], when
// the policy could not be loaded ([Refuse]), the profile is unknown,
// Preflight has not run, or the profile failed its preflight. A policy with
// "enabled": false runs commands unconfined, and its Report says so loudly.
//
// # Limits
//
// Landlock does not restrict chmod, chown, utime, setxattr or stat outside
// the workspace (dropping capabilities limits chown and the rest to files
// the user owns). Pathname UNIX sockets outside the workspace stay reachable
// under the network profile below Landlock ABI 9 (the report says so).
// Without a delegated cgroup, a helper killed with SIGKILL by someone other
// than agentd (the OOM killer, an operator) leaves its command's processes
// to the next subreaper.
//
// The package has no package-level mutable state. A Policy is safe for
// concurrent use.
package sandbox
