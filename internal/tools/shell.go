package tools

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/workspace"
)

// backgroundDir holds the logs of background commands, inside the workspace.
const backgroundDir = ".agentd/background"

func (s *Set) runShell(ctx context.Context, c agent.Call, a args) (string, error) {
	command, err := a.required("command")
	if err != nil {
		return "", err
	}
	if _, err := a.str("description", ""); err != nil {
		return "", err
	}
	wd, err := a.str("working_directory", ".")
	if err != nil {
		return "", err
	}
	if wd == "" {
		wd = "."
	}
	secs, err := a.number("timeout", 0)
	if err != nil {
		return "", err
	}
	timeout := s.cfg.ShellInactivityTimeout
	if secs > 0 {
		timeout = s.cfg.MaxShellTimeout
		if secs < timeout.Seconds() {
			timeout = time.Duration(secs * float64(time.Second))
		}
	}
	background, err := a.boolean("is_background", false)
	if err != nil {
		return "", err
	}

	rel, err := s.resolve(wd)
	if err != nil {
		return "", err
	}
	fi, err := s.root.Stat(rel)
	if err != nil {
		return "", s.fsError(wd, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("working_directory %q is not a directory", wd)
	}
	cwd := filepath.Join(s.dir, rel)
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Dir = cwd
	cmd.Env = s.childEnv(cwd)
	if s.cfg.TempDir != "" {
		if err := workspace.EnsureDir(s.root, s.cfg.TempDir, 0o700); err != nil {
			return "", fmt.Errorf("command refused, nothing was run: make the session's TMPDIR: %w", err)
		}
		cmd.Env = append(cmd.Env, "TMPDIR="+filepath.Join(s.dir, s.cfg.TempDir))
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if background {
		return s.startBackground(cmd)
	}
	return s.runForeground(ctx, c, cmd, timeout)
}

// childEnv is the environment of a shell command: Config.Env scrubbed
// (see ScrubbedEnv), with PWD set to cwd.
func (s *Set) childEnv(cwd string) []string {
	return append(ScrubbedEnv(s.cfg.Env(), s.cfg.ScrubEnv), "PWD="+cwd)
}

// ScrubbedEnv is env without the variables named in scrub, every AGENTD_*
// (the server's own secrets) and *_API_KEY variable, and PWD (the caller
// sets its own); names compare case-insensitively. It is the one rule for
// every child agentd starts: shell commands and MCP servers.
func ScrubbedEnv(env, scrub []string) []string {
	drop := make(map[string]bool, len(scrub))
	for _, name := range scrub {
		drop[strings.ToUpper(name)] = true
	}
	out := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			continue
		}
		u := strings.ToUpper(name)
		if drop[u] || u == "PWD" || strings.HasPrefix(u, "AGENTD_") || strings.HasSuffix(u, "_API_KEY") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// prepare runs Config.PrepareShell on cmd.
func (s *Set) prepare(cmd *exec.Cmd) error {
	if s.cfg.PrepareShell == nil {
		return nil
	}
	if err := s.cfg.PrepareShell(cmd); err != nil {
		return fmt.Errorf("command refused, nothing was run: %w", err)
	}
	return nil
}

// runForeground runs cmd to completion, streaming its output to c.Output.
// The process group is stopped (SIGTERM, then SIGKILL after KillGrace) when
// the command is silent for timeout, when ctx is done or when the Set
// closes; whatever the command leaves in its group when it exits is killed.
func (s *Set) runForeground(ctx context.Context, c agent.Call, cmd *exec.Cmd, timeout time.Duration) (string, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return "", fmt.Errorf("start command: %v", err)
	}
	defer pr.Close()
	cmd.Stdout, cmd.Stderr = pw, pw // one pipe: stdout and stderr interleaved as written
	if err := s.prepare(cmd); err != nil {
		pw.Close()
		return "", err
	}
	err = cmd.Start()
	pw.Close() // the child has its copy; EOF comes when every holder closes it
	if err != nil {
		return "", fmt.Errorf("start command: %v", leaf(err))
	}
	pgid := cmd.Process.Pid
	w := startWaiter(cmd)

	chunks := make(chan []byte)
	go func() {
		defer close(chunks)
		buf := make([]byte, 32<<10)
		for {
			n, err := pr.Read(buf)
			if n > 0 {
				chunks <- bytes.Clone(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()

	out := newTail(s.cfg.MaxOutputChars)
	stream := utf8Stream{emit: c.Output}
	idle := time.NewTimer(timeout)
	defer idle.Stop()
	var grace *time.Timer
	var (
		idleC   = idle.C
		graceC  <-chan time.Time
		exited  = w.exited
		ctxDone = ctx.Done()
		closing = s.done
		stopped string // why we stopped the command: "timeout", "cancel", "close"
	)
	stop := func(why string) {
		if stopped != "" || exited == nil {
			return
		}
		stopped, idleC = why, nil
		signalGroup(pgid, syscall.SIGTERM)
		grace = time.NewTimer(s.cfg.KillGrace)
		graceC = grace.C
	}
	for chunks != nil || exited != nil {
		select {
		case b, ok := <-chunks:
			if !ok {
				chunks = nil
				continue
			}
			out.Write(b)
			stream.write(b)
			if idleC != nil {
				idle.Reset(timeout)
			}
		case <-exited:
			// The shell is gone but still unreaped, so its PGID cannot be
			// reused: kill what it left behind, then drain the pipe (bounded,
			// in case something escaped the group holding it open).
			exited, idleC, graceC = nil, nil, nil
			signalGroup(pgid, syscall.SIGKILL)
			pr.SetReadDeadline(time.Now().Add(s.cfg.KillGrace))
		case <-idleC:
			stop("timeout")
		case <-ctxDone:
			ctxDone = nil
			stop("cancel")
		case <-closing:
			closing = nil
			stop("close")
		case <-graceC:
			graceC = nil
			signalGroup(pgid, syscall.SIGKILL)
		}
	}
	if grace != nil {
		grace.Stop()
	}
	stream.flush()
	werr := w.reap()

	text := out.String()
	switch stopped {
	case "timeout":
		return "", fmt.Errorf("command timed out after %ss without output; its whole process group was killed%s",
			seconds(timeout), partial(text))
	case "cancel":
		reason, _ := agent.CancelReason(ctx)
		return "", fmt.Errorf("command stopped because the turn was cancelled (%s); its whole process group was killed%s",
			reason, partial(text))
	case "close":
		return "", fmt.Errorf("command stopped because the session is closing; its whole process group was killed%s", partial(text))
	}
	st := cmd.ProcessState
	if st == nil {
		return "", fmt.Errorf("wait for command: %v", werr)
	}
	var b strings.Builder
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		fmt.Fprintf(&b, "Killed by signal: %v\n", ws.Signal())
	} else {
		fmt.Fprintf(&b, "Exit code: %d\n", st.ExitCode())
	}
	if text == "" {
		b.WriteString("Output: (none)\n")
	} else {
		b.WriteString("Output:\n")
		b.WriteString(text)
		if !strings.HasSuffix(text, "\n") {
			b.WriteByte('\n')
		}
	}
	return b.String(), nil
}

func partial(text string) string {
	if text == "" {
		return ". There was no output."
	}
	return ". Output before it was stopped:\n" + text
}

// signalGroup sends sig to every process of the group pgid.
func signalGroup(pgid int, sig syscall.Signal) {
	if pgid > 0 {
		_ = syscall.Kill(-pgid, sig) // ESRCH: the group is already gone
	}
}

// startBackground starts cmd detached, in its own process group, with its
// output going to a log file under backgroundDir, and returns at once. The
// command runs until it ends by itself or the Set closes.
func (s *Set) startBackground(cmd *exec.Cmd) (string, error) {
	if err := workspace.EnsureDir(s.root, backgroundDir, 0o700); err != nil {
		return "", s.fsError(backgroundDir, err)
	}
	logRel := fmt.Sprintf("%s/%s-%s.log", backgroundDir, time.Now().UTC().Format("20060102T150405Z"), randomHex(4))
	f, err := s.root.OpenFile(logRel, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return "", s.fsError(logRel, err)
	}
	defer f.Close() // the child has its own copy once started
	cmd.Stdout, cmd.Stderr = f, f
	fail := func(err error) (string, error) {
		s.root.Remove(logRel)
		return "", err
	}
	if err := s.prepare(cmd); err != nil {
		return fail(err)
	}
	if err := s.acquire(); err != nil { // the supervisor's hold on Close
		return fail(err)
	}
	if err := cmd.Start(); err != nil {
		s.wg.Done()
		return fail(fmt.Errorf("start command: %v", leaf(err)))
	}
	pgid := cmd.Process.Pid
	go s.superviseBackground(pgid, startWaiter(cmd))
	return fmt.Sprintf("Background command started.\nPGID: %d\nLog: %s (stdout and stderr; read it with read_file)\n"+
		"It runs until it exits or the session ends; a later command cannot signal it when commands are sandboxed, "+
		"each in its own sandbox.\n", pgid, logRel), nil
}

// superviseBackground keeps a background command's leader unreaped until the
// Set closes, so its PGID stays valid, then stops the group and reaps it.
func (s *Set) superviseBackground(pgid int, w *waiter) {
	defer s.wg.Done()
	select {
	case <-w.exited:
		<-s.done
	case <-s.done:
		signalGroup(pgid, syscall.SIGTERM)
		t := time.NewTimer(s.cfg.KillGrace)
		select {
		case <-w.exited:
		case <-t.C:
		}
		t.Stop()
	}
	signalGroup(pgid, syscall.SIGKILL)
	_ = w.reap() // the exit status of a background command is not reported
}

// waiter learns when a started command's process exits, leaving it
// unreaped where the platform allows (see waitExited), so that its PID and
// PGID cannot be reused until reap.
type waiter struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	reaped bool          // the waiter had to reap it already
	err    error         // cmd.Wait's result when reaped
}

func startWaiter(cmd *exec.Cmd) *waiter {
	w := &waiter{cmd: cmd, exited: make(chan struct{})}
	go func() {
		if err := waitExited(cmd.Process.Pid); err != nil {
			w.err, w.reaped = cmd.Wait(), true
		}
		close(w.exited)
	}()
	return w
}

// reap waits for the process to exit and releases it. Call it once.
func (w *waiter) reap() error {
	<-w.exited
	if w.reaped {
		return w.err
	}
	return w.cmd.Wait()
}

// tail keeps the end of a command's output: enough raw bytes to fill
// maxChars characters after cleaning, and a count of what was dropped.
type tail struct {
	maxChars int
	keep     int // raw bytes kept
	buf      []byte
	dropped  int // characters dropped from the front of buf
	seen     int // bytes written so far
	binary   bool
}

func newTail(maxChars int) *tail {
	return &tail{maxChars: maxChars, keep: maxChars*utf8.UTFMax + 64<<10}
}

func (t *tail) Write(b []byte) {
	if t.seen < binarySniff && isBinary(b[:min(len(b), binarySniff-t.seen)]) {
		t.binary = true
	}
	t.seen += len(b)
	t.buf = append(t.buf, b...)
	if len(t.buf) > 2*t.keep {
		cut := len(t.buf) - t.keep
		t.dropped += utf8.RuneCount(t.buf[:cut])
		t.buf = t.buf[:copy(t.buf, t.buf[cut:])]
	}
}

// String returns the kept output, ANSI escapes stripped and \r-overwritten
// lines collapsed, cut to its last maxChars characters with a note saying
// how many were omitted.
func (t *tail) String() string {
	if t.binary {
		return fmt.Sprintf("[binary output: %d bytes not shown]", t.seen)
	}
	raw, dropped := t.buf, t.dropped
	if dropped > 0 { // cut mid-stream: restart at a line boundary
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			dropped += utf8.RuneCount(raw[:i+1])
			raw = raw[i+1:]
		}
	}
	text := collapseCR(stripANSI(strings.ToValidUTF8(string(raw), "\uFFFD")))
	if n := utf8.RuneCountInString(text); n > t.maxChars {
		i := 0
		for range n - t.maxChars {
			_, size := utf8.DecodeRuneInString(text[i:])
			i += size
		}
		text = text[i:]
		dropped += n - t.maxChars
	}
	if dropped > 0 {
		return fmt.Sprintf("[... %d earlier characters omitted; showing the last %d ...]\n%s",
			dropped, utf8.RuneCountInString(text), text)
	}
	return text
}

// stripANSI removes terminal escape sequences: CSI (colours, cursor moves),
// OSC (titles, hyperlinks), character-set designations and other two-byte
// escapes.
func stripANSI(s string) string {
	if !strings.Contains(s, "\x1b") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if s[i] != 0x1b {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := i + 1
		switch {
		case j >= len(s):
		case s[j] == '[': // CSI: parameters, intermediates, one final byte
			j++
			for j < len(s) && s[j] >= 0x30 && s[j] <= 0x3f {
				j++
			}
			for j < len(s) && s[j] >= 0x20 && s[j] <= 0x2f {
				j++
			}
			if j < len(s) && s[j] >= 0x40 && s[j] <= 0x7e {
				j++
			}
		case s[j] == ']': // OSC: up to BEL or ESC \
			j++
			for j < len(s) && s[j] != 0x07 && !(s[j] == 0x1b && j+1 < len(s) && s[j+1] == '\\') {
				j++
			}
			if j < len(s) && s[j] == 0x07 {
				j++
			} else if j < len(s) {
				j += 2
			}
		case s[j] >= 0x20 && s[j] <= 0x2f: // nF, e.g. ESC ( B
			for j < len(s) && s[j] >= 0x20 && s[j] <= 0x2f {
				j++
			}
			if j < len(s) {
				j++
			}
		case s[j] >= 0x30 && s[j] <= 0x7e: // two-byte escapes
			j++
		}
		i = j
	}
	return b.String()
}

// collapseCR keeps, of each line, what a terminal would show last after
// carriage returns (progress bars); a line overwritten with nothing is
// dropped, as Agentao does.
func collapseCR(s string) string {
	if !strings.Contains(s, "\r") {
		return s
	}
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	out := lines[:0]
	for _, l := range lines {
		if i := strings.LastIndexByte(l, '\r'); i >= 0 {
			if l = l[i+1:]; l == "" {
				continue
			}
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// utf8Stream passes output chunks on as valid UTF-8, holding back a
// character split across chunks. Binary chunks (with a NUL) are not passed.
type utf8Stream struct {
	emit  func(string)
	carry []byte
}

func (u *utf8Stream) write(b []byte) {
	if bytes.IndexByte(b, 0) >= 0 {
		u.carry = nil
		return
	}
	data := append(u.carry, b...)
	cut := len(data)
	for i := len(data) - 1; i >= 0 && i >= len(data)-utf8.UTFMax; i-- {
		if utf8.RuneStart(data[i]) {
			if !utf8.FullRune(data[i:]) {
				cut = i
			}
			break
		}
	}
	u.carry = append([]byte(nil), data[cut:]...)
	if cut > 0 {
		u.emit(strings.ToValidUTF8(string(data[:cut]), "\uFFFD"))
	}
}

func (u *utf8Stream) flush() {
	if len(u.carry) > 0 {
		u.emit(strings.ToValidUTF8(string(u.carry), "\uFFFD"))
		u.carry = nil
	}
}
