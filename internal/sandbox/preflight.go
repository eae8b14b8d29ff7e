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
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PreflightTimeout bounds the checks of one profile.
const PreflightTimeout = 5 * time.Second

// Report is the result of [Preflight]: what the kernel supports and, per
// built-in profile, whether confinement was proven on it and which
// guarantees the running kernel enforces.
type Report struct {
	Enabled         bool   // false: shell commands run unconfined
	Source          string // where the policy came from
	Arch            string // GOARCH
	LandlockABI     int    // 0 if Landlock is unavailable
	LandlockProblem string // why it is unavailable, if it is
	// Containment says how a command's processes are ended with it.
	Containment string
	// Cgroup is the cgroup v2 directory below which each command gets a
	// cgroup of its own, "" where agentd may make none.
	Cgroup string
	// Profiles has one entry per built-in profile, in the order of
	// Profiles(), when Enabled; none otherwise.
	Profiles []ProfileReport
}

// ProfileReport is the preflight result of one profile.
type ProfileReport struct {
	Profile    Profile
	InUse      bool // the default profile or named by a rule
	OK         bool
	Problem    string      // why it failed, when !OK
	Guarantees []Guarantee // what the running kernel enforces under this profile
	Proved     []string    // what was checked, "<check>: <result>"
}

// Guarantee is one promise of a profile and how it is kept.
type Guarantee struct {
	Name     string // "reads", "writes", "signals", ...
	Enforced bool   // false: the kernel cannot keep it (How says why)
	How      string
}

func (g Guarantee) String() string {
	if g.Enforced {
		return g.Name + ": " + g.How
	}
	return g.Name + ": NOT ENFORCED: " + g.How
}

// supervisor is how every helper ends a command's processes.
const supervisor = "a supervisor per command (the helper stays as the command's parent and child subreaper, " +
	"outside its sandbox, with a parent-death signal from agentd): when the command ends, times out or is cancelled, " +
	"its session is deleted or evicted, or agentd exits by any path, every process it started is killed, setsid daemons included"

// containment describes how commands are contained, with or without a
// cgroup (cgroupWhy says why not).
func containment(cgroup, cgroupWhy string) string {
	if cgroup != "" {
		return "a cgroup v2 per command (" + cgroup + "/cmd-<helper>, ended with cgroup.kill; agentd sweeps those a dead helper left) and " + supervisor
	}
	return supervisor + "; no cgroup per command (" + cgroupWhy + ")"
}

// guarantees lists what prof promises on a kernel with Landlock ABI abi.
func guarantees(prof Profile, abi int, cgroup bool) []Guarantee {
	l := func(v int) string { return fmt.Sprintf("Landlock (ABI %d+)", v) }
	g := []Guarantee{
		{"reads", true, l(1) + ": the workspace, the system paths (" + strings.Join(systemReadPaths, " ") +
			" without agentd's files), /dev/{null,zero,full,random,urandom} and paths sandbox.json names; not /proc, /tmp, the data directory or other sessions"},
	}
	if prof.Writes() {
		g = append(g, Guarantee{"writes", true, l(3) + ": the workspace (its TMPDIR included) and /dev/{null,zero,full} only"})
	} else {
		g = append(g, Guarantee{"writes", true, l(3) + ": none but /dev/null"})
	}
	g = append(g,
		Guarantee{"signals", abi >= 6, l(6) + " signal scope: only the command's own processes"},
		Guarantee{"abstract UNIX sockets", abi >= 6, l(6) + " scope: only the command's own"},
	)
	switch {
	case abi >= 9:
		g = append(g, Guarantee{"UNIX socket files", true, l(9) + ": only those in the workspace"})
	case !prof.Network():
		g = append(g, Guarantee{"UNIX socket files", true, "seccomp: AF_UNIX sockets are refused (Landlock ABI 9 would allow those in the workspace)"})
	default:
		g = append(g, Guarantee{"UNIX socket files", false, "a network profile reaches any socket file below Landlock ABI 9; use a -no-network profile"})
	}
	if prof.Network() {
		g = append(g, Guarantee{"network", true, "allowed by the profile"})
	} else {
		g = append(g, Guarantee{"network", true, l(4) + " for TCP, seccomp for every other socket family"})
	}
	processes := "a supervisor per command: nothing it starts outlives it"
	if cgroup {
		processes = "a cgroup v2 and a supervisor per command: nothing it starts outlives it"
	}
	return append(g,
		Guarantee{"privileges", true, "no_new_privs, every capability dropped"},
		Guarantee{"processes", true, processes},
	)
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

// String renders the report for a log or a terminal: per profile, whether
// it is usable and what the kernel enforces.
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
	fmt.Fprintf(&b, "\n  processes: %s", r.Containment)
	// What every profile guarantees alike is said once.
	common := map[string]int{}
	for _, p := range r.Profiles {
		for _, g := range p.Guarantees {
			common[g.String()]++
		}
	}
	if len(r.Profiles) > 0 {
		b.WriteString("\n  every profile:")
		for _, g := range r.Profiles[0].Guarantees {
			if common[g.String()] == len(r.Profiles) {
				fmt.Fprintf(&b, "\n    %s", g)
			}
		}
	}
	for _, p := range r.Profiles {
		use := ""
		if p.InUse {
			use = " (in use)"
		}
		if p.OK {
			fmt.Fprintf(&b, "\n  %s%s: ok", p.Profile, use)
		} else {
			fmt.Fprintf(&b, "\n  %s%s: REFUSED, its commands do not run: %s", p.Profile, use, p.Problem)
		}
		for _, g := range p.Guarantees {
			if common[g.String()] != len(r.Profiles) {
				fmt.Fprintf(&b, "\n    %s", g)
			}
		}
	}
	return b.String()
}

// Preflight proves on the running kernel that each built-in profile
// confines real commands, by running the helper (self, the agentd binary)
// as the shell tool would, and records the report in p for [Policy.Hook]:
// a profile that failed makes the hook refuse. For each profile it runs
// `/bin/sh -c :`, a shell write outside the workspace (which must fail and
// leave no file), and a probe that tries reads and writes outside, /proc,
// signals to agentd and to its own helper, UNIX sockets, network sockets
// and a TCP connect, checks capabilities and leaves a setsid daemon that
// must be gone when the command is, all compared with what the profile
// promises. Each profile has PreflightTimeout.
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
		cg, cgErr := commandCgroupParent()
		why := ""
		if cgErr != nil {
			why = cgErr.Error()
		}
		r.Cgroup, r.Containment = cg, containment(cg, why)
		for _, prof := range Profiles() {
			pr := ProfileReport{Profile: prof}
			switch {
			case err != nil:
				pr.Problem = "Landlock is unavailable: " + err.Error()
			case abi < prof.minABI():
				pr.Problem = fmt.Sprintf("the kernel's Landlock ABI %d is too old: profile %s needs ABI %d "+
					"(Linux 6.12) to keep commands from signalling agentd and other processes", abi, prof, prof.minABI())
			default:
				pr = preflightProfile(ctx, self, prof, p.Settings(prof), r.Cgroup)
			}
			if err == nil {
				pr.Guarantees = guarantees(prof, abi, r.Cgroup != "")
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

func preflightProfile(ctx context.Context, self string, prof Profile, set ProfileSettings, cgroup string) (pr ProfileReport) {
	pr.Profile = prof
	if err := proveProfile(ctx, self, prof, set, cgroup, &pr.Proved); err != nil {
		pr.Problem = err.Error()
		return pr
	}
	pr.OK = true
	return pr
}

// proveProfile runs the checks of one profile, appending what held to
// proved, and returns the first failure.
func proveProfile(ctx context.Context, self string, prof Profile, set ProfileSettings, cgroup string, proved *[]string) error {
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
	s := spec{Version: specVersion, Profile: prof, Workspace: ws, ReadOnly: set.ReadOnlyPaths, Cgroup: cgroup}
	for _, r := range set.ReadOnlyPaths {
		if _, err := os.Stat(r); err != nil {
			return fmt.Errorf("sandbox.json names read-only path %s for profile %s: %v", r, prof, err)
		}
	}

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

	// The probe: the agentd binary itself, made readable for this run only.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("preflight listener: %v", err)
	}
	defer ln.Close()
	abstract := fmt.Sprintf("agentd-preflight-%d-%s", os.Getpid(), filepath.Base(dir))
	aln, err := net.Listen("unix", "@"+abstract)
	if err != nil {
		return fmt.Errorf("preflight abstract socket: %v", err)
	}
	defer aln.Close()
	sockPath := filepath.Join(out, "sock")
	pln, err := net.Listen("unix", sockPath)
	if err != nil {
		return fmt.Errorf("preflight socket file: %v", err)
	}
	defer pln.Close()
	sock, err := probeSocket()
	if err != nil {
		return fmt.Errorf("preflight socket: %v", err)
	}
	defer sock.Close()
	psJSON, _ := json.Marshal(probeSpec{Workspace: ws, Outside: out, Connect: ln.Addr().String(),
		Parent: os.Getpid(), Abstract: abstract, UnixPath: sockPath})
	ps := s
	ps.ReadOnly = append(slices.Clone(s.ReadOnly), self)
	res = runConfined(ctx, self, ps, []*os.File{sock}, self, ExecArg, probeArg, base64.RawURLEncoding.EncodeToString(psJSON))
	if res.err != nil || res.code != 0 {
		return fmt.Errorf("the probe under the sandbox: %s", res)
	}
	var got map[string]string
	if err := json.Unmarshal(res.stdout, &got); err != nil {
		return fmt.Errorf("the probe's output %q: %v", res.stdout, err)
	}
	abi, _ := landlockABI()
	for _, e := range expectations(prof, abi) {
		g, ok := got[e.check]
		if !ok {
			return fmt.Errorf("the probe did not report %q", e.check)
		}
		if e.want != "" && g != e.want {
			return fmt.Errorf("%s: got %s, want %s", e.check, g, e.want)
		}
		*proved = append(*proved, e.check+": "+g)
	}
	// The daemon the probe left must have died with it.
	pidText, ok := strings.CutPrefix(got[checkDaemon], "ok ")
	pid, err := strconv.Atoi(pidText)
	if !ok || err != nil || pid <= 0 {
		return fmt.Errorf("%s: got %q, want ok <pid>", checkDaemon, got[checkDaemon])
	}
	if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		return fmt.Errorf("a setsid daemon (pid %d) outlived its command (kill(pid, 0): %v)", pid, err)
	}
	*proved = append(*proved, "setsid daemon: gone with its command")
	if _, err := os.Lstat(filepath.Join(out, "probe")); err == nil {
		return errors.New("the probe left a file outside the workspace")
	}
	if b, err := os.ReadFile(existing); err != nil || string(b) != "keep" {
		return fmt.Errorf("a file outside the workspace was changed (%q, %v)", b, err)
	}
	for name, l := range map[string]net.Listener{"the abstract UNIX socket": aln, "the UNIX socket file": pln, "the loopback listener": ln} {
		if name == "the UNIX socket file" && got[checkPathUnix] == "ok" || name == "the loopback listener" && prof.Network() {
			continue // the profile allows it
		}
		if acceptOne(l) {
			return fmt.Errorf("%s accepted a connection from the sandbox", name)
		}
	}
	*proved = append(*proved, "listeners outside: no connection")
	return nil
}

// acceptOne reports whether l has a connection waiting.
func acceptOne(l net.Listener) bool {
	type deadliner interface{ SetDeadline(time.Time) error }
	if d, ok := l.(deadliner); ok {
		d.SetDeadline(time.Now().Add(50 * time.Millisecond))
	}
	c, err := l.Accept()
	if err == nil {
		c.Close()
		return true
	}
	return false
}

// expect is what one probe check must report under a profile ("" = any).
type expect struct{ check, want string }

func expectations(prof Profile, abi int) []expect {
	const ok, denied, eperm = "ok", "EACCES", "EPERM"
	write, network := denied, denied
	if prof.Writes() {
		write = ok
	}
	if prof.Network() {
		network = ok
	}
	tmp := denied
	if _, err := os.Stat("/tmp"); err != nil {
		tmp = "" // no /tmp here: nothing to check
	}
	pathUnix, abstract := denied, eperm // Landlock (ABI 9, ABI 6 scope)
	switch {
	case prof.Network() && abi < 9:
		pathUnix = "" // reachable: the report says so
	case abi < 9:
		abstract = denied // the seccomp filter refuses AF_UNIX sockets first
	}
	e := []expect{
		{checkWriteWorkspace, write},
		{checkWriteTmp, tmp},
		{checkReadTmp, tmp},
		{checkWriteOutside, denied},
		{checkTruncateOutside, denied},
		{checkReadOutside, denied},
		{checkReadSystem, ok},
		{checkReadProc, denied},
		{checkWriteDevNull, ok},
		{checkSignalParent, eperm},
		{checkSignalHelper, eperm},
		{checkAbstractUnix, abstract},
		{checkPathUnix, pathUnix},
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

// scratchDir makes a preflight directory where the server may write and
// the sandbox may not read: anywhere but the system paths.
func scratchDir() (string, error) {
	candidates := []string{os.TempDir(), "/dev/shm", "/var/tmp"}
	if d, err := os.UserCacheDir(); err == nil {
		candidates = append(candidates, d)
	}
	var tried []string
	for _, c := range candidates {
		real, err := filepath.EvalSymlinks(c)
		if err != nil || !filepath.IsAbs(real) || slices.ContainsFunc(systemReadPaths, func(sys string) bool { return within(real, sys) }) {
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
	return "", fmt.Errorf("no writable scratch directory outside the system paths to prove confinement (tried %s)",
		strings.Join(tried, ", "))
}

// within reports whether path is dir or below it (both clean and absolute).
func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+"/")
}
