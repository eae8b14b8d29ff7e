package chaos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/session"
)

// adminWrite is one configuration change the load asked for. Its reason is
// unique, so the version history says whether it was applied.
type adminWrite struct {
	reason  string
	state   turnState
	version int // the version the reply named, when acknowledged
	why     string
}

// adminWork is the operator's load during one run: a new canary
// configuration (PUT with If-Match), and now and then a return to the
// version before it, until stop or until agentd stops answering.
func (c *campaign) adminWork(rng *rand.Rand, stop <-chan struct{}) {
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cur := c.call(ctx, "GET", "/v1/admin/canary", opsKey, "", nil)
		v, _ := cur.body["version"].(float64)
		if cur.err != nil || cur.status != http.StatusOK || v < 1 {
			cancel()
			return
		}
		marker := fmt.Sprintf("mk-r%d-admin-%d", c.round, seq)
		w := &adminWrite{reason: "chaos " + marker}
		r := c.call(ctx, "PUT", "/v1/admin/canary", opsKey, "", []byte(canaryDoc(marker, rng.IntN(50))),
			"If-Match", fmt.Sprintf(`"%d"`, int(v)), "X-Agentd-Reason", w.reason)
		n, _ := r.body["version"].(float64)
		c.admitted(w, r, int(n))
		if w.state == acked && rng.IntN(3) == 0 {
			back := &adminWrite{reason: "chaos " + marker + "-revert"}
			body, _ := json.Marshal(map[string]any{"to_version": int(v), "reason": back.reason})
			r := c.call(ctx, "POST", "/v1/admin/rollback", opsKey, "", body)
			ver, _ := r.body["version"].(map[string]any)
			n, _ := ver["version"].(float64)
			c.admitted(back, r, int(n))
		}
		cancel()
		if w.state == unknown {
			return
		}
		time.Sleep(time.Duration(50+rng.IntN(200)) * time.Millisecond) // operator think time
	}
}

// admitted records the answer to an admin write: 200 with a version
// acknowledges it, another HTTP status refuses it (412 when the guard made
// a version in between, 503 while draining), a transport error leaves it
// unknown.
func (c *campaign) admitted(w *adminWrite, r reply, version int) {
	switch {
	case r.err != nil:
		w.state, w.why = unknown, r.err.Error()
	case r.status == http.StatusOK && version > 0:
		w.state, w.version = acked, version
	case r.status >= 500 && r.status != http.StatusServiceUnavailable:
		w.state, w.why = unknown, fmt.Sprintf("%d %s", r.status, r.raw)
	default:
		w.state, w.why = refused, fmt.Sprintf("%d %s", r.status, r.raw)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.admin = append(c.admin, w)
	c.counts.adminWrites++
	if w.state == acked {
		c.counts.adminAcked++
	}
}

// checkConfig checks the configuration history (invariant 6): versions
// 1..N with no gap, the served version is N, every acknowledged write is
// there under the version its reply named, a refused one is not, and none
// is there twice.
func (c *campaign) checkConfig() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	reasons := map[int]string{}
	for before := 0; ; {
		path := "/v1/admin/versions?limit=1000"
		if before > 0 {
			path += "&before=" + strconv.Itoa(before)
		}
		r := c.call(ctx, "GET", path, opsKey, "", nil)
		var page struct {
			Versions []struct {
				Version int    `json:"version"`
				Reason  string `json:"reason"`
			} `json:"versions"`
		}
		if r.err != nil || r.status != http.StatusOK || json.Unmarshal([]byte(r.raw), &page) != nil {
			c.violate("GET %s = %d %v %.300s", path, r.status, r.err, r.raw)
			return
		}
		for _, v := range page.Versions {
			if _, dup := reasons[v.Version]; dup {
				c.violate("version %d listed twice", v.Version)
			}
			reasons[v.Version] = v.Reason
			if before == 0 || v.Version < before {
				before = v.Version
			}
		}
		if len(page.Versions) < 1000 || before <= 1 {
			break
		}
	}
	last := 0
	for n := range reasons {
		last = max(last, n)
	}
	if len(reasons) != last {
		c.violate("the configuration history has %d versions numbered up to %d: a gap", len(reasons), last)
	}
	cur := c.call(ctx, "GET", "/v1/admin/canary", opsKey, "", nil)
	if served, _ := cur.body["version"].(float64); int(served) != last {
		c.violate("served configuration version %v; the history's last is %d", cur.body["version"], last)
	}
	byReason := map[string][]int{}
	for n, why := range reasons {
		byReason[why] = append(byReason[why], n)
	}
	for _, w := range c.admin {
		got := byReason[w.reason]
		switch {
		case len(got) > 1:
			c.violate("admin write %q applied %d times: versions %v", w.reason, len(got), got)
		case w.state == acked && (len(got) == 0 || got[0] != w.version):
			c.violate("acknowledged admin write %q (version %d) lost: the history has it at %v", w.reason, w.version, got)
		case w.state == refused && len(got) > 0:
			c.violate("refused admin write %q (%s) applied as version %v", w.reason, w.why, got)
		}
	}
}

// markerRE finds the turn markers of a text.
var markerRE = regexp.MustCompile(`mk-r\d+-w\d+-\d+`)

// storedTurn is a turn record as GET /v1/sessions/{id} shows it.
type storedTurn struct {
	N       int           `json:"n"`
	Outcome agent.Outcome `json:"outcome"`
}

// checkSessions checks the sessions over the API (invariants 2, 3 and the
// history half of 4): each is there, its history is valid, its turn
// records match its user messages one to one, every acknowledged turn is
// there once with the number and status its reply gave, a refused turn is
// not there, and no turn is there twice.
func (c *campaign) checkSessions(list []*convo) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, s := range list {
		r := c.call(ctx, "GET", "/v1/sessions/"+s.id, s.key, s.user, nil)
		var got struct {
			Messages []agent.Message `json:"messages"`
			Turns    []storedTurn    `json:"turns"`
		}
		if r.err != nil || r.status != http.StatusOK || json.Unmarshal([]byte(r.raw), &got) != nil {
			c.violate("session %s/%s: GET = %d %v %.300s; want it with its history", s.tenant, s.id, r.status, r.err, r.raw)
			continue
		}
		c.checkHistory(s, got.Messages, got.Turns)
	}
}

func (c *campaign) checkHistory(s *convo, msgs []agent.Message, turns []storedTurn) {
	where := s.tenant + "/" + s.id
	if err := agent.Validate(msgs); err != nil {
		c.violate("session %s: invalid history: %v", where, err)
	}
	at := map[string]int{} // marker → the index of its user message
	users := 0
	for _, m := range msgs {
		if m.Role != agent.RoleUser {
			continue
		}
		seen := map[string]bool{}
		for _, mk := range markerRE.FindAllString(m.Content, -1) {
			if seen[mk] {
				continue
			}
			seen[mk] = true
			if prev, dup := at[mk]; dup {
				c.violate("session %s: turn %s ran twice: user messages %d and %d", where, mk, prev+1, users+1)
			}
			at[mk] = users
		}
		users++
	}
	for i, t := range turns {
		if t.N != i+1 {
			c.violate("session %s: turn record %d is numbered %d", where, i+1, t.N)
		}
		if t.Outcome.IncompleteReason == agent.IncompleteInterrupted {
			key := fmt.Sprintf("%s#%d", s.id, t.N)
			if !c.seenInterrupted[key] {
				c.seenInterrupted[key] = true
				c.counts.interrupted++
			}
		}
	}
	matched := users == len(turns)
	if !matched {
		c.violate("session %s: %d user messages but %d turn records", where, users, len(turns))
	}
	for _, tr := range s.turns {
		i, present := at[tr.marker]
		switch tr.state {
		case acked:
			switch {
			case !present:
				c.violate("session %s: acknowledged %s turn %s (run %d, turn %d, %s) is missing", where, tr.kind, tr.marker, tr.round, tr.n, tr.status)
			case tr.n > 0 && i != tr.n-1:
				c.violate("session %s: acknowledged turn %s was turn %d; the history has it as turn %d", where, tr.marker, tr.n, i+1)
			case matched && string(turns[i].Outcome.Status) != tr.status:
				c.violate("session %s: acknowledged turn %s ended %s; its record says %+v", where, tr.marker, tr.status, turns[i].Outcome)
			default:
				c.counts.checks++
				if !tr.checked {
					tr.checked = true
					c.counts.turnsChecked++
				}
			}
		case refused:
			if present {
				c.violate("session %s: refused turn %s (%s) is in the history as turn %d", where, tr.marker, tr.why, i+1)
			}
		}
	}
}

// checkWorkspaces checks the other half of invariant 4, after the last
// stop: in each session's workspace every marker is in ran.log at most
// once, only for a turn that was not refused, and exactly once, with the
// file the turn wrote, for an acknowledged turn whose tools ran.
func (c *campaign) checkWorkspaces() {
	for _, s := range c.all {
		ws := filepath.Join(c.data, "workspaces", s.tenant, s.id)
		ran := map[string]int{}
		if b, err := os.ReadFile(filepath.Join(ws, "ran.log")); err == nil {
			for _, mk := range markerRE.FindAllString(string(b), -1) {
				ran[mk]++
			}
		} else if !os.IsNotExist(err) {
			c.violate("session %s/%s: read ran.log: %v", s.tenant, s.id, err)
		}
		mine := map[string]*turn{}
		for _, tr := range s.turns {
			mine[tr.marker] = tr
		}
		for mk, n := range ran {
			tr := mine[mk]
			switch {
			case n > 1:
				c.violate("session %s/%s: the command of turn %s ran %d times", s.tenant, s.id, mk, n)
			case tr == nil:
				c.violate("session %s/%s: ran.log has %s, not a turn of this session", s.tenant, s.id, mk)
			case tr.state == refused:
				c.violate("session %s/%s: the command of refused turn %s (%s) ran", s.tenant, s.id, mk, tr.why)
			}
		}
		for _, tr := range s.turns {
			if !tr.ranTool() {
				continue
			}
			if ran[tr.marker] != 1 {
				c.violate("session %s/%s: acknowledged turn %s (%q) ran its command %d times; want 1", s.tenant, s.id, tr.marker, tr.reply, ran[tr.marker])
			}
			if b, err := os.ReadFile(filepath.Join(ws, "out", tr.marker+".txt")); err != nil || string(b) != tr.marker {
				c.violate("session %s/%s: acknowledged turn %s: out/%s.txt = %q, %v", s.tenant, s.id, tr.marker, tr.marker, b, err)
			}
		}
	}
}

// checkStore opens the store itself after the last clean stop
// (invariant 1, at the file): every session the load created is there
// with a valid history, and the last version is the one served.
func (c *campaign) checkStore() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	db, err := boltdb.Open(filepath.Join(c.data, "agentd.db"), boltdb.Options{})
	if err != nil {
		c.violate("open the store after the last stop: %v", err)
		return
	}
	defer db.Close()
	stored := map[string]bool{}
	for _, tenant := range []string{"acme", "globex"} {
		for before := session.ID(""); ; {
			page, next, err := db.Sessions().List(ctx, tenant, session.ListQuery{Before: before, Limit: 1000})
			if err != nil {
				c.violate("list %s's sessions in the store: %v", tenant, err)
				return
			}
			for _, sum := range page {
				stored[tenant+"/"+string(sum.ID)] = true
				s, err := db.Sessions().Load(ctx, tenant, sum.ID)
				if err != nil {
					c.violate("load %s/%s from the store: %v", tenant, sum.ID, err)
					continue
				}
				if err := agent.Validate(s.Messages); err != nil && s.InFlight == nil {
					c.violate("stored session %s/%s: invalid history: %v", tenant, sum.ID, err)
				}
			}
			if next == "" {
				break
			}
			before = next
		}
	}
	for _, s := range c.all {
		if !stored[s.tenant+"/"+s.id] {
			c.violate("session %s/%s is not in the store", s.tenant, s.id)
		}
	}
	latest, ok, err := db.Versions().Latest(ctx)
	if err != nil || !ok {
		c.violate("the store's latest configuration version: %v (found %v)", err, ok)
	}
	for _, w := range c.admin {
		if w.state == acked && w.version > latest.N {
			c.violate("acknowledged admin write %q is version %d; the store's latest is %d", w.reason, w.version, latest.N)
		}
	}
}

// waitOrphans waits until no process of the agentd that was pid is left
// (invariant 5): none runs the agentd binary (the sandbox helper is the
// binary itself) and none works in the data directory (the commands).
// The helpers end their commands when agentd's death reaches them, so
// they get a grace period, polled; whatever is left after it is an orphan.
func (c *campaign) waitOrphans(pid int) {
	exe, err := filepath.EvalSymlinks(c.binary)
	if err != nil {
		exe = c.binary
	}
	data, err := filepath.EvalSymlinks(c.data)
	if err != nil {
		data = c.data
	}
	deadline := time.Now().Add(orphanGrace)
	var first []string
	for {
		left := c.scanProcesses(exe, data)
		if first == nil {
			first = left
		}
		if len(left) == 0 {
			c.counts.orphansWaited += len(first)
			return
		}
		if time.Now().After(deadline) {
			c.violate("%d process(es) outlived agentd (pid %d) by %v:\n  %s", len(left), pid, orphanGrace, strings.Join(left, "\n  "))
			return
		}
		time.Sleep(20 * time.Millisecond) // polling the process table, not a timed assertion
	}
}

// scanProcesses lists the live (not zombie) processes that run exe or
// whose working directory is under data.
func (c *campaign) scanProcesses(exe, data string) []string {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		c.t.Fatalf("scan /proc: %v", err)
	}
	var found []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// The state follows the command name in parentheses, which may
		// itself hold spaces or parentheses.
		if i := strings.LastIndexByte(string(stat), ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' {
			continue
		}
		bin, _ := os.Readlink(filepath.Join(dir, "exe"))
		cwd, _ := os.Readlink(filepath.Join(dir, "cwd"))
		if bin != exe && cwd != data && !strings.HasPrefix(cwd, data+"/") {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if len(args) > 3 {
			args = append(args[:3], "…") // the helper's spec is long
		}
		found = append(found, fmt.Sprintf("pid %d (%s) cwd %s: %s", pid, bin, cwd, strings.Join(args, " ")))
	}
	slices.Sort(found)
	return found
}

// TestOrphanScanFindsLeftovers proves invariant 5 can fail: a process
// working under the data directory, or running the agentd binary, is
// found, and is no longer once it is gone. It runs in the normal suite
// (no agentd needed).
func TestOrphanScanFindsLeftovers(t *testing.T) {
	data := t.TempDir()
	sys, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatalf("no sleep(1) to leave behind: %v", err)
	}
	// A copy of its own: other tests on the machine may run sleep too.
	b, err := os.ReadFile(sys)
	if err != nil {
		t.Fatal(err)
	}
	sleep := filepath.Join(t.TempDir(), "sleep")
	if err := os.WriteFile(sleep, b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		cwd    string // the leftover's working directory
		binary string // what the campaign calls the agentd binary
	}{
		{"a command in a workspace", filepath.Join(data, "workspaces", "acme", "s1"), filepath.Join(t.TempDir(), "agentd")},
		{"the agentd binary (a sandbox helper)", t.TempDir(), sleep},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.MkdirAll(tc.cwd, 0o755); err != nil {
				t.Fatal(err)
			}
			exe, _ := filepath.EvalSymlinks(tc.binary)
			if exe == "" {
				exe = tc.binary
			}
			c := &campaign{t: t}
			cmd := exec.Command(sleep, "60")
			cmd.Dir = tc.cwd
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			found := c.scanProcesses(exe, data)
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if len(found) != 1 || !strings.Contains(found[0], fmt.Sprintf("pid %d ", cmd.Process.Pid)) {
				t.Errorf("scan with a leftover = %q; want it (pid %d)", found, cmd.Process.Pid)
			}
			if left := c.scanProcesses(exe, data); len(left) != 0 {
				t.Errorf("scan after it ended = %q; want nothing", left)
			}
		})
	}
}
