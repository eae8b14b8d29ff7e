package chaos_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/llm/llmtest"
	"github.com/agentd/agentd/internal/sandbox"
)

// The keys of the two tenants and of the operator, as AGENTD_API_KEYS gives
// them to the binary.
const (
	acmeKey   = "acme-key-0123456789"
	globexKey = "globex-key-012345678"
	opsKey    = "ops-admin-key-0123456"
)

const (
	// slots is how many sessions take load at once, half per tenant.
	slots = 64
	// turnsPerSession retires a session after this many turns and starts a
	// new one in its slot: histories stay short, so that the fake model
	// and the checks do not slow down as the campaign goes on.
	turnsPerSession = 24
	// minLoad and maxLoad bound the random moment of a kill after the load
	// started.
	minLoad, maxLoad = 500 * time.Millisecond, 2500 * time.Millisecond
	// exitWait bounds how long a killed agentd may take to exit: SIGTERM
	// drains within AGENTD_SHUTDOWN_TIMEOUT (8 s), SIGKILL at once.
	exitWait = 30 * time.Second
	// orphanGrace is how long a process of a dead agentd may take to go
	// (the helper reaps its command when agentd's death reaches it).
	orphanGrace = 10 * time.Second
)

// settings are what the environment asks of the campaign.
type settings struct {
	runs   int
	seed   uint64
	budget time.Duration // 0: none
}

func settingsFromEnv(t *testing.T) settings {
	s := settings{runs: 200, seed: uint64(time.Now().UnixNano())}
	if v := os.Getenv("AGENTD_CHAOS_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("AGENTD_CHAOS_RUNS=%q: want a positive number of kills", v)
		}
		s.runs = n
	}
	if v := os.Getenv("AGENTD_CHAOS_BUDGET"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("AGENTD_CHAOS_BUDGET=%q: want a positive duration (\"14m\")", v)
		}
		s.budget = d
	}
	if v := os.Getenv("AGENTD_CHAOS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("AGENTD_CHAOS_SEED=%q: want an unsigned integer", v)
		}
		s.seed = n
	}
	return s
}

// replay is the command that runs the campaign again with the same seed.
func (s settings) replay() string {
	return fmt.Sprintf("AGENTD_CHAOS=1 AGENTD_CHAOS_SEED=%d AGENTD_CHAOS_RUNS=%d go test -count=1 -timeout 60m -run TestCrashCampaign -v ./internal/chaos/", s.seed, s.runs)
}

// TestCrashCampaign kills a loaded agentd AGENTD_CHAOS_RUNS times and
// checks the invariants of docs/reliability.md after each restart and at
// the end. The seed fixes every choice of the campaign (kill kinds and
// moments, turn kinds and contents); the interleaving with the processes
// is the machine's, so a replay reproduces the conditions, not the exact
// timing.
func TestCrashCampaign(t *testing.T) {
	if os.Getenv("AGENTD_CHAOS") != "1" {
		t.Skip("the crash campaign runs with AGENTD_CHAOS=1 (scripts/chaos)")
	}
	set := settingsFromEnv(t)
	began := time.Now()
	c := newCampaign(t, set)
	defer func() {
		c.logf("%s", c.summary(set, time.Since(began)))
		if len(c.violations) > 0 {
			t.Errorf("%d violation(s); replay with:\n  %s", len(c.violations), set.replay())
		}
	}()
	c.run(began)
}

// campaign is the state of one crash campaign.
type campaign struct {
	t        *testing.T
	set      settings
	rng      *rand.Rand // the kill kinds and moments
	binary   string
	data     string
	config   string
	llm      *llmtest.Server
	client   *http.Client
	proc     *agentd
	round    int // the current kill, from 1
	runsDone int
	slots    [slots]*convo
	all      []*convo // every session ever created, in order
	admin    []*adminWrite
	counts   counts
	mu       sync.Mutex // guards violations and counts from the load
	badRuns  map[int]bool
	// violations are the invariants broken, each with its run.
	violations      []string
	seenInterrupted map[string]bool // session id + turn number
}

type counts struct {
	sigkill, sigterm        int
	sigtermNonZero          int // SIGTERM exits not 0 (the drain did not finish): violations
	turnsSent, turnsAcked   int
	turnsRefused            int // 409 or 503 before the turn started
	turnsUnknown            int // the answer was lost with the process
	turnsChecked            int // acknowledged turns found in their history
	checks                  int // acknowledged turns found in their history, summed over every check
	toolTurnsAcked          int
	byKind                  map[string]int
	interrupted             int // distinct turns recorded as interrupted
	adminWrites, adminAcked int
	orphansWaited           int // processes that outlived agentd but went within the grace period
	sessionsCreated         int
}

func newCampaign(t *testing.T, set settings) *campaign {
	c := &campaign{
		t: t, set: set, rng: rand.New(rand.NewPCG(set.seed, 0)), data: t.TempDir(), config: t.TempDir(),
		llm:             llmtest.NewServer(t),
		client:          &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * slots}},
		seenInterrupted: map[string]bool{},
	}
	c.counts.byKind = map[string]int{}
	c.llm.KeepRequests(false)
	c.binary = os.Getenv("AGENTD_E2E_BINARY")
	if c.binary == "" {
		c.binary = filepath.Join(t.TempDir(), "agentd")
		build := exec.Command("go", "build", "-o", c.binary, "github.com/agentd/agentd/cmd/agentd")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build agentd: %v\n%s", err, out)
		}
	}
	t.Cleanup(sandbox.SweepCgroups) // the command cgroups of the agentds killed outright
	writeFile(t, c.config, ".agentao/canary.json", canaryDoc("file", 0))
	writeFile(t, c.config, ".agentao/permissions/v1.json", `{"mode": "full-access", "rules": []}`)
	return c
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// canaryDoc is a canary configuration with a model variant: each admin
// write serves a distinct one (the marker is in its allowlist).
func canaryDoc(marker string, percent int) string {
	return fmt.Sprintf(`{"models": ["stable-model", "canary-model"],
  "model": {"stable": "stable-model", "variants": [
    {"name": "beta", "value": "canary-model", "percent": %d, "users": [%q]}]}}`, percent, "u-"+marker)
}

func (c *campaign) logf(format string, args ...any) {
	c.t.Helper()
	c.t.Logf(format, args...)
}

// violate records a broken invariant of the current run.
func (c *campaign) violate(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	msg := fmt.Sprintf("run %d: ", c.round) + fmt.Sprintf(format, args...)
	c.violations = append(c.violations, msg)
	c.t.Error(msg)
}

// run is the campaign: start, then set.runs times load, kill, restart and
// check; then the checks of every session, a clean stop, and the checks of
// the store and the workspaces.
func (c *campaign) run(began time.Time) {
	c.start()
	c.createSessions()
	for c.round = 1; c.round <= c.set.runs; c.round++ {
		if c.set.budget > 0 && time.Since(began) > c.set.budget {
			c.t.Errorf("over budget: %v spent before run %d of %d (AGENTD_CHAOS_BUDGET=%v); the campaign must fit its CI step", time.Since(began).Round(time.Second), c.round, c.set.runs, c.set.budget)
			break
		}
		c.cycle()
		c.runsDone++
		if c.runsDone%25 == 0 {
			c.logf("run %d of %d: %d SIGKILL, %d SIGTERM, %d turns acknowledged, %d violations, %v", c.runsDone, c.set.runs,
				c.counts.sigkill, c.counts.sigterm, c.counts.turnsAcked, len(c.violations), time.Since(began).Round(time.Second))
		}
		if len(c.violations) > 0 {
			c.logf("agentd logs of run %d (tail):\n%s", c.round, c.proc.logs.tail(8000))
			return
		}
	}
	c.round = c.set.runs + 1 // the final checks, on the agentd the last run started
	c.checkSessions(c.all)
	c.checkConfig()
	c.stop(syscall.SIGTERM)
	c.checkStore()
	c.checkWorkspaces()
}

// cycle is one run: load, a kill at a random moment, the orphan check, a
// restart and the checks of what the load touched.
func (c *campaign) cycle() {
	sig := syscall.SIGKILL
	if c.rng.IntN(2) == 0 {
		sig = syscall.SIGTERM
	}
	delay := minLoad + time.Duration(c.rng.Int64N(int64(maxLoad-minLoad)))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range slots {
		wg.Add(1)
		rng := rand.New(rand.NewPCG(c.set.seed, uint64(c.round)<<8|uint64(w)))
		go func() {
			defer wg.Done()
			c.work(w, rng, stop)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.adminWork(rand.New(rand.NewPCG(c.set.seed, uint64(c.round)<<8|0xff)), stop)
	}()
	time.Sleep(delay) // the random moment of the kill: not an assertion
	c.stop(sig)
	close(stop)
	wg.Wait()
	c.start()
	var touched []*convo
	for _, s := range c.all {
		if s.touched {
			touched = append(touched, s)
			s.touched = false
		}
	}
	c.checkSessions(touched)
	c.checkConfig()
}

// agentd is one running agentd serve.
type agentd struct {
	cmd  *exec.Cmd
	url  string
	logs *tailBuffer
	done chan struct{}
}

// start runs agentd on the campaign's data directory and waits until it is
// ready: the store opened and the server listens (invariant 1).
func (c *campaign) start() {
	c.t.Helper()
	cmd := exec.Command(c.binary, "serve")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"AGENTD_ADDR=127.0.0.1:0",
		"AGENTD_DATA=" + c.data,
		"AGENTD_CONFIG_DIR=" + c.config,
		"OPENAI_BASE_URL=" + c.llm.URL(),
		"OPENAI_API_KEY=sk-test-not-a-real-key",
		"OPENAI_MODEL=stable-model",
		"AGENTD_MODELS=canary-model",
		"AGENTD_API_KEYS=" + acmeKey + "=acme," + globexKey + "=globex," + opsKey + "=ops:admin",
		"AGENTD_CONFIG_POLL=1s",
		"AGENTD_LLM_MAX_ATTEMPTS=1",
	}
	p := &agentd{cmd: cmd, logs: &tailBuffer{max: 1 << 20}, done: make(chan struct{})}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		listening := false
		for sc.Scan() {
			p.logs.Write(sc.Bytes()) // not append(sc.Bytes(), …): that would write into the scanner's buffer
			p.logs.Write([]byte{'\n'})
			var line struct{ Msg, Addr string }
			if !listening && json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				listening = true
				addr <- line.Addr
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = cmd.Wait()
		close(p.done)
	}()
	c.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	c.proc = p
	select {
	case a := <-addr:
		p.url = "http://" + a
	case <-p.done:
		c.violate("the store did not open: agentd exited at start (%v):\n%s", cmd.ProcessState, p.logs.tail(4000))
		c.t.FailNow()
	case <-time.After(60 * time.Second):
		c.violate("agentd did not listen within 60s:\n%s", p.logs.tail(4000))
		c.t.FailNow()
	}
	// The "listening" line comes after the store opened and the sessions
	// in flight were recovered; /readyz confirms the server answers.
	if r := c.call(context.Background(), "GET", "/readyz", "", "", nil); r.status != http.StatusOK {
		c.violate("GET /readyz after start = %d %s; want 200", r.status, r.raw)
		c.t.FailNow()
	}
}

// stop signals agentd and waits for it to exit, then for every process it
// started to be gone (invariant 5). A SIGTERM must end in exit 0
// (invariant 7): the drain finishes, whatever the load's clients do.
func (c *campaign) stop(sig syscall.Signal) {
	c.t.Helper()
	p := c.proc
	pid := p.cmd.Process.Pid
	if sig == syscall.SIGKILL {
		c.counts.sigkill++
	} else {
		c.counts.sigterm++
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(exitWait):
		c.violate("agentd did not exit within %v of %v:\n%s", exitWait, sig, p.logs.tail(4000))
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	if sig == syscall.SIGTERM {
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			c.counts.sigtermNonZero++
			c.violate("run %d: SIGTERM exit %v (a drain that did not finish):\n%s", c.round, p.cmd.ProcessState, p.logs.tail(2000))
		}
	}
	c.waitOrphans(pid)
}

// tailBuffer keeps the last max bytes written (at least): the logs of a
// loaded agentd are long, and only their end explains a failure.
type tailBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 2*t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) tail(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.b) > n {
		return string(t.b[len(t.b)-n:])
	}
	return string(t.b)
}

// summary is the campaign's report: the counts and the seed.
func (c *campaign) summary(set settings, took time.Duration) string {
	k := c.counts
	var b strings.Builder
	fmt.Fprintf(&b, "crash campaign summary\n")
	fmt.Fprintf(&b, "  seed:                %d\n", set.seed)
	fmt.Fprintf(&b, "  runs:                %d of %d\n", c.runsDone, set.runs)
	fmt.Fprintf(&b, "  kills:               %d SIGKILL, %d SIGTERM (the final stop included: %d)\n", k.sigkill, k.sigterm, k.sigkill+k.sigterm)
	fmt.Fprintf(&b, "  SIGTERM not exit 0:  %d\n", k.sigtermNonZero)
	fmt.Fprintf(&b, "  sessions created:    %d\n", k.sessionsCreated)
	fmt.Fprintf(&b, "  turns sent:          %d (json %d, sse %d, acp %d; with tool calls %d)\n", k.turnsSent, k.byKind["json"], k.byKind["sse"], k.byKind["acp"], k.byKind["tool"])
	fmt.Fprintf(&b, "  turns acknowledged:  %d (with tool calls that ran: %d)\n", k.turnsAcked, k.toolTurnsAcked)
	fmt.Fprintf(&b, "  turns refused:       %d (409/503 before they started; checked absent)\n", k.turnsRefused)
	fmt.Fprintf(&b, "  turns unacknowledged:%d (the answer died with the process)\n", k.turnsUnknown)
	fmt.Fprintf(&b, "  turns checked:       %d acknowledged turns found in their history (%d times over every check)\n", k.turnsChecked, k.checks)
	fmt.Fprintf(&b, "  interrupted seen:    %d\n", k.interrupted)
	fmt.Fprintf(&b, "  admin writes:        %d sent, %d acknowledged\n", k.adminWrites, k.adminAcked)
	fmt.Fprintf(&b, "  orphans waited for:  %d (gone within %v)\n", k.orphansWaited, orphanGrace)
	fmt.Fprintf(&b, "  violations:          %d\n", len(c.violations))
	fmt.Fprintf(&b, "  duration:            %v\n", took.Round(time.Second))
	fmt.Fprintf(&b, "  replay:              %s", set.replay())
	return b.String()
}
