package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
// keeping its Dir, Env, SysProcAttr (Setpgid) and I/O. It refuses, with an
// error wrapping ErrMisconfigured and running nothing, when p is nil, the
// profile or a path is invalid, [Preflight] has not run on p, or the profile
// failed its preflight. When p is not enabled it leaves commands unchanged:
// they run unconfined.
func (p *Policy) Hook(self string, workspace string, tool string, override string, writable ...string) func(*exec.Cmd) error {
	return p.HookWith(self, workspace, tool, override, Confine{Writable: writable})
}

// Confine adds paths to what a hook's profile grants or hides.
type Confine struct {
	// Writable names extra absolute directories the write profiles may
	// write to.
	Writable []string
	// Hidden names absolute paths that commands may not read at all (the
	// server's data directory: other sessions' workspaces and the store),
	// although every profile otherwise reads everywhere. The session's own
	// workspace stays readable (and writable for the write profiles) even
	// when it lies beneath a hidden path.
	Hidden []string
}

// HookWith is Hook with extra writable and hidden paths.
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
	var extra, hidden []string
	for _, w := range c.Writable {
		d, err := absDir("writable directory", w)
		if err != nil {
			return Refuse(err)
		}
		extra = append(extra, d)
	}
	for _, h := range c.Hidden {
		if !filepath.IsAbs(h) {
			return Refuse(fmt.Errorf("hidden path %q is not absolute", h))
		}
		hidden = append(hidden, filepath.Clean(h))
	}
	return func(cmd *exec.Cmd) error {
		if err := p.preflightOK(prof); err != nil {
			return misconfigured(err)
		}
		wrap(self, spec{Version: specVersion, Profile: prof, Workspace: ws, Writable: extra, Hidden: hidden}, cmd)
		return nil
	}
}

// wrap rewrites cmd to run under the helper with s (whose Path it sets).
func wrap(self string, s spec, cmd *exec.Cmd) {
	argv := cmd.Args
	if len(argv) == 0 {
		argv = []string{cmd.Path}
	}
	s.Path = cmd.Path
	cmd.Args = append([]string{self}, execArgs(s, argv)...)
	cmd.Path = self
}

// preflightOK says why commands under prof must be refused, if they must.
func (p *Policy) preflightOK(prof Profile) error {
	r := p.report.Load()
	if r == nil {
		return errors.New("the preflight check has not run for this policy")
	}
	pr, ok := r.profile(prof)
	if !ok {
		return fmt.Errorf("profile %s was not checked by the preflight", prof)
	}
	if !pr.OK {
		return fmt.Errorf("profile %s failed its preflight: %s", prof, pr.Problem)
	}
	return nil
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
