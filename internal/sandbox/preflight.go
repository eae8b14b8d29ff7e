package sandbox

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// PreflightTimeout bounds the checks of one profile.
const PreflightTimeout = 5 * time.Second

// Report is the result of [Preflight]: what the kernel supports and, per
// built-in profile, whether confinement was proven on it.
type Report struct {
	Enabled         bool   // false: shell commands run unconfined
	Source          string // where the policy came from
	Arch            string // GOARCH
	LandlockABI     int    // 0 if Landlock is unavailable
	LandlockProblem string // why it is unavailable, if it is
	// Profiles has one entry per built-in profile, in the order of
	// Profiles(), when Enabled; none otherwise.
	Profiles []ProfileReport
}

// ProfileReport is the preflight result of one profile.
type ProfileReport struct {
	Profile Profile
	InUse   bool // the default profile or named by a rule
	OK      bool
	Problem string   // why it failed, when !OK
	Proved  []string // what was checked, "<check>: <result>"
}

// OK reports whether the hook will confine commands under every profile the
// policy uses. It is true for a disabled policy, whose commands run
// unconfined: check Enabled.
func (r Report) OK() bool {
	for _, p := range r.Profiles {
		if p.InUse && !p.OK {
			return false
		}
	}
	return true
}

func (r *Report) profile(p Profile) (ProfileReport, bool) {
	for _, pr := range r.Profiles {
		if pr.Profile == p {
			return pr, true
		}
	}
	return ProfileReport{}, false
}

// String renders the report for a log, one line per profile.
func (r Report) String() string {
	var b strings.Builder
	if !r.Enabled {
		fmt.Fprintf(&b, "sandbox DISABLED by %s (\"enabled\": false): shell commands run UNCONFINED, "+
			"with agentd's own filesystem access, network and capabilities", r.Source)
		return b.String()
	}
	fmt.Fprintf(&b, "sandbox preflight (%s), %s: ", r.Source, r.Arch)
	if r.LandlockProblem != "" {
		fmt.Fprintf(&b, "Landlock unavailable: %s", r.LandlockProblem)
	} else {
		fmt.Fprintf(&b, "Landlock ABI %d", r.LandlockABI)
	}
	for _, p := range r.Profiles {
		use := ""
		if p.InUse {
			use = " (in use)"
		}
		if p.OK {
			fmt.Fprintf(&b, "\n  %s%s: ok: %s", p.Profile, use, strings.Join(p.Proved, "; "))
		} else {
			fmt.Fprintf(&b, "\n  %s%s: FAILED, its commands are refused: %s", p.Profile, use, p.Problem)
		}
	}
	return b.String()
}

// Preflight proves on the running kernel that each built-in profile
// confines real commands, by running the helper (self, the agentd binary)
// as the shell tool would, and records the report in p for [Policy.Hook]:
// a profile that failed makes the hook refuse. For each profile it runs
// `/bin/sh -c :`, a shell write outside the workspace (which must fail and
// leave no file), and a probe that tries writes, truncation, sockets, a TCP
// connect to a loopback listener and checks capabilities, all compared with
// what the profile promises. Each profile has PreflightTimeout.
//
// Run it at start and on every reload of sandbox.json, and log the report.
// A disabled policy is not probed; its report says commands run unconfined.
func Preflight(ctx context.Context, self string, p *Policy) Report {
	r := Report{Enabled: p.enabled, Source: p.source, Arch: runtime.GOARCH}
	abi, err := landlockABI()
	r.LandlockABI = abi
	if err != nil {
		r.LandlockProblem = err.Error()
	}
	if p.enabled {
		for _, prof := range Profiles() {
			pr := ProfileReport{Profile: prof}
			switch {
			case err != nil:
				pr.Problem = "Landlock is unavailable: " + err.Error()
			case abi < prof.minABI():
				pr.Problem = fmt.Sprintf("the kernel's Landlock ABI %d is too old: profile %s needs ABI %d", abi, prof, prof.minABI())
			default:
				pr = preflightProfile(ctx, self, prof)
			}
			pr.InUse = p.inUse(prof)
			r.Profiles = append(r.Profiles, pr)
		}
	}
	stored := r
	stored.Profiles = append([]ProfileReport(nil), r.Profiles...)
	p.report.Store(&stored)
	return r
}

func preflightProfile(ctx context.Context, self string, prof Profile) (pr ProfileReport) {
	pr.Profile = prof
	if err := proveProfile(ctx, self, prof, &pr.Proved); err != nil {
		pr.Problem = err.Error()
		return pr
	}
	pr.OK = true
	return pr
}

// proveProfile runs the checks of one profile, appending what held to
// proved, and returns the first failure.
func proveProfile(ctx context.Context, self string, prof Profile, proved *[]string) error {
	ctx, cancel := context.WithTimeout(ctx, PreflightTimeout)
	defer cancel()
	if !filepath.IsAbs(self) {
		return fmt.Errorf("the agentd binary path %q is not absolute", self)
	}
	dir, err := scratchDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ws, out := filepath.Join(dir, "workspace"), filepath.Join(dir, "outside")
	existing := filepath.Join(out, probeExisting)
	for _, d := range []string{ws, out} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return fmt.Errorf("preflight scratch directory: %v", err)
		}
	}
	if err := os.WriteFile(existing, []byte("keep"), 0o600); err != nil {
		// Unconfined, this write must work: otherwise a failure under the
		// sandbox would prove nothing.
		return fmt.Errorf("preflight scratch directory: %v", err)
	}
	s := spec{Version: specVersion, Profile: prof, Workspace: ws}

	// Agentao's health check.
	if res := runConfined(ctx, self, s, nil, "/bin/sh", "-c", ":"); res.err != nil || res.code != 0 {
		return fmt.Errorf("/bin/sh -c : under the sandbox: %s", res)
	}
	*proved = append(*proved, "/bin/sh -c : runs")

	// A shell write outside the workspace, as a model would try it.
	target := filepath.Join(out, "shell-write")
	res := runConfined(ctx, self, s, nil, "/bin/sh", "-c", `echo x > "$1"`, "sh", target)
	if _, err := os.Lstat(target); err == nil || res.err != nil || res.code == 0 {
		return fmt.Errorf("a shell write outside the workspace was not stopped (%s)", res)
	}
	*proved = append(*proved, "shell write outside the workspace: refused")

	// The probe.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("preflight listener: %v", err)
	}
	defer ln.Close()
	sock, err := probeSocket()
	if err != nil {
		return fmt.Errorf("preflight socket: %v", err)
	}
	defer sock.Close()
	psJSON, _ := json.Marshal(probeSpec{Workspace: ws, Outside: out, Connect: ln.Addr().String()})
	res = runConfined(ctx, self, s, []*os.File{sock}, self, ExecArg, probeArg, base64.RawURLEncoding.EncodeToString(psJSON))
	if res.err != nil || res.code != 0 {
		return fmt.Errorf("the probe under the sandbox: %s", res)
	}
	var got map[string]string
	if err := json.Unmarshal(res.stdout, &got); err != nil {
		return fmt.Errorf("the probe's output %q: %v", res.stdout, err)
	}
	for _, e := range expectations(prof) {
		g, ok := got[e.check]
		if !ok {
			return fmt.Errorf("the probe did not report %q", e.check)
		}
		if e.want != "" && g != e.want {
			return fmt.Errorf("%s: got %s, want %s", e.check, g, e.want)
		}
		*proved = append(*proved, e.check+": "+g)
	}
	if _, err := os.Lstat(filepath.Join(out, "probe")); err == nil {
		return errors.New("the probe left a file outside the workspace")
	}
	if b, err := os.ReadFile(existing); err != nil || string(b) != "keep" {
		return fmt.Errorf("a file outside the workspace was changed (%q, %v)", b, err)
	}
	if !prof.Network() {
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(50 * time.Millisecond))
		if c, err := ln.Accept(); err == nil {
			c.Close()
			return errors.New("the loopback listener accepted a connection from the sandbox")
		}
		*proved = append(*proved, "loopback listener: no connection")
	}
	return nil
}

// expect is what one probe check must report under a profile ("" = any).
type expect struct{ check, want string }

func expectations(prof Profile) []expect {
	const ok, denied = "ok", "EACCES"
	write, network := denied, denied
	if prof.Writes() {
		write = ok
	}
	if prof.Network() {
		network = ok
	}
	tmp := write
	if _, err := os.Stat(tmpDir); err != nil {
		tmp = "" // no /tmp here: nothing to check
	}
	e := []expect{
		{checkWriteWorkspace, write},
		{checkWriteTmp, tmp},
		{checkWriteOutside, denied},
		{checkTruncateOutside, denied},
		{checkWriteDevNull, ok},
		{checkSocketUnix, ok},
		{checkTCPConnect, network},
		{checkCapabilities, ok},
	}
	if prof.Network() {
		return append(e, expect{checkSocketInet, ok})
	}
	return append(e,
		expect{checkSocketInet, denied},
		expect{checkSocketInet6Dgram, denied},
		expect{checkSocketPacket, denied})
}

// runResult is the outcome of one confined run.
type runResult struct {
	code           int
	stdout, stderr []byte
	err            error // could not run or wait (timeout included)
}

func (r runResult) String() string {
	if r.err != nil {
		return r.err.Error()
	}
	msg := strings.TrimSpace(string(r.stderr))
	if msg == "" {
		msg = "no stderr"
	}
	return fmt.Sprintf("exit status %d: %s", r.code, msg)
}

// runConfined runs argv under s the way internal/tools runs a shell command
// (own process group, killed whole on timeout, working directory the
// workspace), through the same wrap as the hook.
func runConfined(ctx context.Context, self string, s spec, extra []*os.File, argv ...string) runResult {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = s.Workspace
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	cmd.ExtraFiles = extra
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	wrap(self, s, cmd)
	err := cmd.Run()
	res := runResult{stdout: stdout.Bytes(), stderr: stderr.Bytes()}
	var ee *exec.ExitError
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		res.err = fmt.Errorf("timed out (the limit is %v per profile)", PreflightTimeout)
	case ctx.Err() != nil:
		res.err = fmt.Errorf("stopped: %v", context.Cause(ctx))
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		res.err = err
	}
	return res
}

// scratchDir makes a preflight directory where the server may write but the
// sandbox may not: not under /tmp, which the write profiles may write to.
func scratchDir() (string, error) {
	candidates := []string{os.TempDir(), "/dev/shm", "/var/tmp"}
	if d, err := os.UserCacheDir(); err == nil {
		candidates = append(candidates, d)
	}
	tmp := tmpDir
	if real, err := filepath.EvalSymlinks(tmpDir); err == nil {
		tmp = real
	}
	var tried []string
	for _, c := range candidates {
		real, err := filepath.EvalSymlinks(c)
		if err != nil || !filepath.IsAbs(real) || within(real, tmp) || within(real, tmpDir) {
			tried = append(tried, c)
			continue
		}
		d, err := os.MkdirTemp(real, "agentd-sandbox-preflight-*")
		if err != nil {
			tried = append(tried, c)
			continue
		}
		return d, nil
	}
	return "", fmt.Errorf("no writable scratch directory outside %s to prove write confinement (tried %s)",
		tmpDir, strings.Join(tried, ", "))
}

// within reports whether path is dir or below it (both clean and absolute).
func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+"/")
}
