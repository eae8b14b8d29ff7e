// Package tools implements Agentao's built-in file and shell tools
// (read_file, write_file, replace, list_directory, glob,
// search_file_content, run_shell_command) for one session, confined to that
// session's workspace directory.
//
// Confinement contract. A Set is bound to one workspace directory, opened
// once as an [os.Root]. Every file operation goes through that root, so a
// path that leaves the workspace is refused race-free, however it tries:
// ".." components, an absolute path outside the workspace, or a symbolic
// link (absolute or relative, to a file or a directory) that points outside.
// A refused path is a tool error of the form
//
//	path "<p>" is outside the workspace
//
// and nothing outside is read, written or listed. An absolute path inside the
// workspace is accepted, as are symbolic links that stay inside it (absolute
// links are mapped onto the workspace before os.Root sees them). Error texts
// name only the path the model gave, never a host path beyond the workspace.
//
// The shell is not confined by this package: run_shell_command starts
// /bin/sh in the workspace (or a working_directory inside it) with a scrubbed
// environment, in its own process group, but the command itself can reach
// anything its uid can. Confining it is the job of [Config.PrepareShell]
// (the sandbox). Whatever the sandbox does, the process group is killed when
// the command ends, times out for inactivity, or its turn is cancelled, and
// [Set.Close] kills and reaps background commands.
//
// web_fetch, offered when [Config.WebFetch] is set, reaches only public
// addresses: local names are refused without a lookup, the host is resolved
// once and refused if any answer is not globally routable (IPv4 odd forms,
// v4-mapped, 6to4 and NAT64 addresses judged by the IPv4 inside), the
// connection goes to a validated address only (no second lookup), every
// redirect hop is checked again, and proxies from the environment are not
// used. [WebFetchConfig.AllowCIDRs] is the only exception.
//
// A Set is safe for concurrent use. It has no package-level state.
package tools
