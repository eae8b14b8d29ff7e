package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
)

// ErrMisconfigured is wrapped by every error with which a hook refuses to
// run a command.
var ErrMisconfigured = errors.New("sandbox misconfigured")

// misconfigured is the error a refusing hook returns.
func misconfigured(why error) error {
	return fmt.Errorf("%w: %v; the shell tool is disabled until it is fixed", ErrMisconfigured, why)
}

// Refuse returns a PrepareShell function that refuses every command because
// of cause, typically the error of [Load]. Use it when there is no usable
// Policy: a broken sandbox.json must not mean unconfined commands.
func Refuse(cause error) func(*exec.Cmd) error {
	err := misconfigured(cause)
	return func(*exec.Cmd) error { return err }
}

// Hook returns the function to use as tools.Config.PrepareShell for one
// session whose workspace is the absolute directory workspace. self is the
// absolute path of the running agentd binary (os.Executable), which must
// call [ExecMain] when its first argument is [ExecArg]. tool is the tool's
// name (run_shell_command) and override, if non-empty, a profile a canary
// assigned to the session; see [Policy.Profile]. writable names extra
// absolute directories the write profiles may write to.
//
// The returned function rewrites a command to run as
//
//	<self> __sandbox-exec <spec> -- <cmd.Args...>
//
// keeping its Dir, Env, SysProcAttr (Setpgid) and I/O, and adding a
// parent-death signal (SIGTERM) for the helper. It refuses, with an error
// wrapping ErrMisconfigured and running nothing, when p is nil, the profile
// or a path is invalid, [Preflight] has not run on p, or the profile failed
// its preflight. When p is not enabled it leaves commands unchanged: they
// run unconfined.
func (p *Policy) Hook(self string, workspace string, tool string, override string, writable ...string) func(*exec.Cmd) error {
	return p.HookWith(self, workspace, tool, override, Confine{Writable: writable})
}

// Confine adds paths to what a hook's profile grants or hides.
type Confine struct {
	// Writable names extra absolute directories the write profiles may
	// write to.
	Writable []string
	// ReadOnly names extra absolute paths commands may read and execute
	// (the session's skill directories), beyond the system paths and the
	// profile's read_only_paths in sandbox.json. They are granted even
	// beneath a hidden path.
	ReadOnly []string
	// Hidden names absolute paths beneath the readable ones that commands
	// may not read at all: agentd's data directory (the store, other
	// sessions' workspaces), its API keys file and its configuration tree.
	// The session's own workspace and ReadOnly stay readable even beneath
	// a hidden path. sandbox.json's read_only_paths may not lie beneath
	// one (the hook refuses). Host secrets beneath /etc (shadow, sudoers,
	// ssh keys, ...) are always hidden.
	Hidden []string
}

// HookWith is Hook with extra writable, read-only and hidden paths.
func (p *Policy) HookWith(self string, workspace string, tool string, override string, c Confine) func(*exec.Cmd) error {
	if p == nil {
		return Refuse(errors.New("no sandbox policy"))
	}
	if !p.enabled {
		return func(*exec.Cmd) error { return nil }
	}
	prof, err := p.Profile(tool, override)
	if err != nil {
		return Refuse(err)
	}
	if !filepath.IsAbs(self) {
		return Refuse(fmt.Errorf("the agentd binary path %q is not absolute", self))
	}
	ws, err := absDir("workspace", workspace)
	if err != nil {
		return Refuse(err)
	}
	var extra, readOnly, hidden []string
	for _, w := range c.Writable {
		d, err := absDir("writable directory", w)
		if err != nil {
			return Refuse(err)
		}
		extra = append(extra, d)
	}
	for _, h := range c.Hidden {
		if !filepath.IsAbs(h) || filepath.Clean(h) == "/" {
			return Refuse(fmt.Errorf("hidden path %q is not an absolute path below /", h))
		}
		hidden = append(hidden, filepath.Clean(h))
	}
	for _, r := range p.Settings(prof).ReadOnlyPaths {
		if i := slices.IndexFunc(hidden, func(h string) bool { return within(r, h) || within(h, r) }); i >= 0 {
			return Refuse(fmt.Errorf("sandbox.json: profiles.%s.read_only_paths: %s would expose %s (agentd's data, keys or configuration)", prof, r, hidden[i]))
		}
		readOnly = append(readOnly, r)
	}
	for _, r := range c.ReadOnly {
		if !filepath.IsAbs(r) || filepath.Clean(r) == "/" {
			return Refuse(fmt.Errorf("read-only path %q is not an absolute path below /", r))
		}
		readOnly = append(readOnly, filepath.Clean(r))
	}
	for _, f := range sensitiveSystemFiles {
		// Only what agentd itself can open needs hiding: the file mode
		// already keeps the rest from commands.
		if fh, err := os.Open(f); err == nil {
			fh.Close()
			hidden = append(hidden, f)
		}
	}
	return func(cmd *exec.Cmd) error {
		r, err := p.preflightOK(prof)
		if err != nil {
			return misconfigured(err)
		}
		wrap(self, spec{Version: specVersion, Profile: prof, Workspace: ws, Writable: extra, ReadOnly: readOnly, Hidden: hidden,
			Cgroup: r.Cgroup}, cmd)
		return nil
	}
}

// wrap rewrites cmd to run under the helper with s (whose Path and
// ExtraFiles it sets). The helper gets SIGTERM when agentd dies, and then
// ends the command.
func wrap(self string, s spec, cmd *exec.Cmd) {
	argv := cmd.Args
	if len(argv) == 0 {
		argv = []string{cmd.Path}
	}
	s.Path = cmd.Path
	s.ExtraFiles = len(cmd.ExtraFiles)
	cmd.Args = append([]string{self}, execArgs(s, argv)...)
	cmd.Path = self
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	setParentDeathSignal(cmd.SysProcAttr)
}

// preflightOK returns the preflight's report, or why commands under prof
// must be refused.
func (p *Policy) preflightOK(prof Profile) (*Report, error) {
	r := p.report.Load()
	if r == nil {
		return nil, errors.New("the preflight check has not run for this policy")
	}
	pr, ok := r.profile(prof)
	if !ok {
		return nil, fmt.Errorf("profile %s was not checked by the preflight", prof)
	}
	if !pr.OK {
		return nil, fmt.Errorf("profile %s failed its preflight: %s", prof, pr.Problem)
	}
	return r, nil
}

// absDir checks that dir is an absolute path to an existing directory and
// returns it cleaned.
func absDir(what, dir string) (string, error) {
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("%s %q is not an absolute path", what, dir)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("%s: %v", what, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%s %q is not a directory", what, dir)
	}
	return filepath.Clean(dir), nil
}
