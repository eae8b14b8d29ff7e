package main

// The fleet checks of scripts/ci-k8s.sh: three replicas behind a Service,
// each pod also reached at its own address. Each command prints what it
// measured, so that the CI log has the numbers, and fails when a bound of
// issue 12 does not hold.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// pod is one replica reached at its own address.
type pod struct {
	name string
	c    *client
}

// parsePods reads -urls: "name=http://host:port,name=http://host:port,...".
func parsePods(spec string, base *client) ([]pod, error) {
	var pods []pod
	for _, part := range strings.Split(spec, ",") {
		name, url, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || name == "" || !strings.HasPrefix(url, "http") {
			return nil, fmt.Errorf("-urls: %q is not name=http://host:port", part)
		}
		c := *base
		c.url = strings.TrimRight(url, "/")
		pods = append(pods, pod{name: name, c: &c})
	}
	if len(pods) == 0 {
		return nil, errors.New("-urls is empty")
	}
	return pods, nil
}

// response is a whole HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string {
	return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body))
}

// send makes one request with the client's key and user; extra headers go
// as given.
func (c *client) send(ctx context.Context, method, path string, body any, hdr map[string]string) (response, error) {
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case []byte:
			rd = bytes.NewReader(b)
		default:
			j, err := json.Marshal(body)
			if err != nil {
				return response{}, err
			}
			rd = bytes.NewReader(j)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url+path, rd)
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("X-Agentd-User", c.user)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s%s: %w", method, c.url, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s%s: read body: %w", method, c.url, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// statusError is an answer with an unwanted status.
type statusError struct {
	status int
	msg    string
}

func (e statusError) Error() string { return e.msg }

// ms formats a duration in milliseconds.
func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + " ms" }

// ---- fleet: who leads -----------------------------------------------------------------

// fleetView is what a replica says of the fleet (GET /v1/admin/fleet).
type fleetView struct {
	Self    string        `json:"self"`
	Leader  string        `json:"leader"`
	Members []fleetMember `json:"members"`
}

type fleetMember struct {
	Name      string `json:"name"`
	Voter     bool   `json:"voter"`
	Reachable bool   `json:"reachable"`
}

// errNoFleet: the replica has no fleet route (a fleet of one, or a binary
// without the fleet); waiting does not help.
var errNoFleet = errors.New("this agentd serves no fleet")

func (c *client) fleet(ctx context.Context) (fleetView, error) {
	var f fleetView
	r, err := c.send(ctx, http.MethodGet, "/v1/admin/fleet", nil, nil)
	if err != nil {
		return f, err
	}
	if r.status == http.StatusNotFound {
		return f, fmt.Errorf("GET /v1/admin/fleet: %s: %w", r, errNoFleet)
	}
	if r.status != http.StatusOK {
		return f, fmt.Errorf("GET /v1/admin/fleet: %s", r)
	}
	if err := json.Unmarshal(r.body, &f); err != nil {
		return f, fmt.Errorf("GET /v1/admin/fleet: decode %q: %w", r.body, err)
	}
	return f, nil
}

// waitFleet waits until every pod names the same leader and n members, each
// a voter that answers, and prints the leader's name.
func waitFleet(ctx context.Context, pods []pod, n int, stdout io.Writer) error {
	t0 := time.Now()
	var last string
	for {
		leader, why, err := fleetAgreed(ctx, pods, n)
		if err != nil {
			return err
		}
		if why == "" {
			fmt.Fprintf(os.Stderr, "fleet: %d members, leader %s, agreed by every pod after %s\n", n, leader, ms(time.Since(t0)))
			fmt.Fprintln(stdout, leader)
			return nil
		}
		last = why
		select {
		case <-ctx.Done():
			return fmt.Errorf("no fleet of %d with one leader after %s: %s", n, time.Since(t0).Round(time.Second), last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// fleetAgreed returns the leader every pod names, or why there is none.
func fleetAgreed(ctx context.Context, pods []pod, n int) (string, string, error) {
	if len(pods) != n {
		return "", "", fmt.Errorf("-urls names %d pods, -members %d", len(pods), n)
	}
	leader := ""
	for _, p := range pods {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		f, err := p.c.fleet(rctx)
		cancel()
		switch {
		case errors.Is(err, errNoFleet):
			return "", "", fmt.Errorf("%s: %w", p.name, err)
		case err != nil:
			return "", p.name + ": " + err.Error(), nil
		case f.Leader == "":
			return "", p.name + ": no leader", nil
		case len(f.Members) != n:
			names := []string{}
			for _, m := range f.Members {
				names = append(names, m.Name)
			}
			return "", fmt.Sprintf("%s: %d members %v, want %d", p.name, len(f.Members), names, n), nil
		case !allVoting(f.Members):
			return "", fmt.Sprintf("%s: not every member votes and answers: %+v", p.name, f.Members), nil
		case leader != "" && f.Leader != leader:
			return "", fmt.Sprintf("%s names leader %s, another pod %s", p.name, f.Leader, leader), nil
		}
		leader = f.Leader
	}
	return leader, "", nil
}

func allVoting(ms []fleetMember) bool {
	for _, m := range ms {
		if !m.Voter || !m.Reachable {
			return false
		}
	}
	return true
}

// ---- apply: PUT /v1/admin/canary -------------------------------------------------------

func (c *client) canaryVersion(ctx context.Context) (string, error) {
	r, err := c.send(ctx, http.MethodGet, "/v1/admin/canary", nil, nil)
	if err != nil {
		return "", err
	}
	if r.status != http.StatusOK || r.header.Get("ETag") == "" {
		return "", fmt.Errorf("GET /v1/admin/canary: %s (ETag %q)", r, r.header.Get("ETag"))
	}
	return r.header.Get("ETag"), nil
}

// putCanary replaces the canary document (If-Match: the current version).
func (c *client) putCanary(ctx context.Context, doc []byte, reason string) (int, error) {
	tag, err := c.canaryVersion(ctx)
	if err != nil {
		return 0, err
	}
	r, err := c.send(ctx, http.MethodPut, "/v1/admin/canary", doc, map[string]string{"If-Match": tag, "X-Agentd-Reason": reason})
	if err != nil {
		return 0, err
	}
	if r.status != http.StatusOK {
		return 0, statusError{r.status, fmt.Sprintf("PUT /v1/admin/canary (If-Match %s): %s", tag, r)}
	}
	var v struct {
		N int `json:"version"`
	}
	if err := json.Unmarshal(r.body, &v); err != nil || v.N == 0 {
		return 0, fmt.Errorf("PUT /v1/admin/canary: no version in %q", r.body)
	}
	return v.N, nil
}

func (c *client) apply(ctx context.Context, file, reason string, stdout io.Writer) error {
	doc, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	t0 := time.Now()
	n, err := c.putCanary(ctx, doc, reason)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "PUT /v1/admin/canary through %s: version %d in %s\n", c.url, n, ms(time.Since(t0)))
	return nil
}

// ---- halt: a halt through the Service, seen on every pod --------------------------------

type canaryState struct {
	Version  int `json:"version"`
	Variants []struct {
		Dimension string `json:"dimension"`
		Name      string `json:"name"`
		Halted    bool   `json:"halted"`
	} `json:"variants"`
}

// halted says whether the pod serves dim/variant halted; found=false: the
// variant is not in its configuration.
func (c *client) halted(ctx context.Context, dim, variant string) (halted, found bool, version int, err error) {
	r, err := c.send(ctx, http.MethodGet, "/v1/admin/canary", nil, nil)
	if err != nil {
		return false, false, 0, err
	}
	if r.status != http.StatusOK {
		return false, false, 0, fmt.Errorf("GET /v1/admin/canary: %s", r)
	}
	var st canaryState
	if err := json.Unmarshal(r.body, &st); err != nil {
		return false, false, 0, fmt.Errorf("GET /v1/admin/canary: decode: %w", err)
	}
	for _, v := range st.Variants {
		if v.Dimension == dim && v.Name == variant {
			return v.Halted, true, st.Version, nil
		}
	}
	return false, false, st.Version, nil
}

// halt posts a halt of dim/variant through svc and measures, on every pod,
// the time from sending it until that pod serves the variant halted.
func halt(ctx context.Context, svc *client, pods []pod, dim, variant string, within time.Duration, stdout io.Writer) error {
	for _, p := range pods {
		h, found, _, err := p.c.halted(ctx, dim, variant)
		switch {
		case err != nil:
			return fmt.Errorf("%s: %w", p.name, err)
		case !found:
			return fmt.Errorf("%s: no variant %s/%s to halt", p.name, dim, variant)
		case h:
			return fmt.Errorf("%s: %s/%s is halted already", p.name, dim, variant)
		}
	}
	type seen struct {
		after   time.Duration
		version int
		err     error
	}
	results := make([]seen, len(pods))
	var wg sync.WaitGroup
	t0 := time.Now()
	deadline := t0.Add(within + 10*time.Second) // keep watching past the bound, to say by how much it was missed
	for i, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last error
			for time.Now().Before(deadline) {
				rctx, cancel := context.WithTimeout(ctx, time.Second)
				h, _, v, err := p.c.halted(rctx, dim, variant)
				cancel()
				if err == nil && h {
					results[i] = seen{after: time.Since(t0), version: v}
					return
				}
				last = err
				time.Sleep(10 * time.Millisecond)
			}
			results[i] = seen{err: fmt.Errorf("not halted after %s (last error: %v)", time.Since(t0).Round(time.Millisecond), last)}
		}()
	}
	r, err := svc.send(ctx, http.MethodPost, "/v1/admin/rollback",
		map[string]string{"dimension": dim, "variant": variant, "reason": "ci: halt through the Service"}, nil)
	answered := time.Since(t0)
	if err != nil {
		return err
	}
	if r.status != http.StatusOK {
		return fmt.Errorf("POST /v1/admin/rollback: %s", r)
	}
	var out struct {
		Version struct {
			N int `json:"version"`
		} `json:"version"`
		Changed bool `json:"changed"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil || !out.Changed {
		return fmt.Errorf("POST /v1/admin/rollback: want a change, got %q", r.body)
	}
	wg.Wait()
	fmt.Fprintf(stdout, "POST /v1/admin/rollback {%s/%s} through %s: version %d, answered in %s\n", dim, variant, svc.url, out.Version.N, ms(answered))
	var failed []string
	var worst time.Duration
	for i, p := range pods {
		s := results[i]
		switch {
		case s.err != nil:
			fmt.Fprintf(stdout, "  %s: %v\n", p.name, s.err)
			failed = append(failed, p.name)
		default:
			fmt.Fprintf(stdout, "  %s: halted (version %d) %s after the request was sent\n", p.name, s.version, ms(s.after))
			worst = max(worst, s.after)
			if s.after > within {
				failed = append(failed, p.name)
			}
		}
	}
	if failed != nil {
		return fmt.Errorf("the halt did not reach %v within %s", failed, within)
	}
	fmt.Fprintf(stdout, "the halt reached every pod within %s (bound %s)\n", ms(worst), within)
	return nil
}

// ---- everywhere: a session created through the Service, served through every pod ----------

// ownerOf is the node a session id names (sess_<32 hex>_<node>).
func ownerOf(id string) string {
	rest, ok := strings.CutPrefix(id, "sess_")
	if !ok || len(rest) < 34 || rest[32] != '_' {
		return ""
	}
	return rest[33:]
}

// checkOwner wants the answer to name owner in X-Agentd-Owner.
func checkOwner(r response, via, what, owner string) error {
	if got := r.header.Get("X-Agentd-Owner"); got != owner {
		return fmt.Errorf("%s via %s: X-Agentd-Owner %q, want %q", what, via, got, owner)
	}
	return nil
}

func everywhere(ctx context.Context, svc *client, pods []pod, id string, stdout io.Writer) error {
	log := func(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) }
	turns := 0
	if id == "" {
		// Sessions through the Service until two pods have created one:
		// the Service spreads, and the one kept is reached through the
		// others below. The others are deleted through the Service.
		// A new connection each time: kube-proxy picks a pod per
		// connection, not per request.
		fresh := *svc
		fresh.hc = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		owners := map[string]int{}
		var extra []string
		for i := 0; i < 20 && (id == "" || len(owners) < 2); i++ {
			r, err := fresh.send(ctx, http.MethodPost, "/v1/sessions", nil, nil)
			if err != nil {
				return err
			}
			if r.status != http.StatusCreated {
				return fmt.Errorf("POST /v1/sessions via the Service: %s", r)
			}
			var s sessionView
			if err := json.Unmarshal(r.body, &s); err != nil || s.ID == "" {
				return fmt.Errorf("POST /v1/sessions via the Service: no id in %q", r.body)
			}
			owner := ownerOf(s.ID)
			if owner == "" {
				return fmt.Errorf("session id %q names no node (want sess_<32 hex>_<node>)", s.ID)
			}
			if err := checkOwner(r, "the Service", "POST /v1/sessions", owner); err != nil {
				return err
			}
			owners[owner]++
			if id == "" {
				id = s.ID
			} else {
				extra = append(extra, s.ID)
			}
		}
		log("the Service spread %d new sessions over %d pods: %v", len(extra)+1, len(owners), owners)
		if len(owners) < 2 {
			return fmt.Errorf("20 sessions created through the Service all landed on one pod: %v", owners)
		}
		for _, x := range extra {
			r, err := svc.send(ctx, http.MethodDelete, "/v1/sessions/"+x, nil, nil)
			if err != nil {
				return err
			}
			if r.status != http.StatusNoContent {
				return fmt.Errorf("DELETE /v1/sessions/%s via the Service: %s", x, r)
			}
		}
		if _, err := svc.echoTurn(ctx, id, "created through the Service"); err != nil {
			return fmt.Errorf("session %s: a turn through the Service: %w", id, err)
		}
		log("session %s: created through the Service, owner %s, turn 1 through the Service", id, ownerOf(id))
	}
	owner := ownerOf(id)
	s0, err := svc.get(ctx, id)
	if err != nil {
		return err
	}
	turns = len(s0.Turns)
	for _, p := range pods {
		t0 := time.Now()
		r, err := p.c.send(ctx, http.MethodGet, "/v1/sessions/"+id, nil, nil)
		if err != nil {
			return err
		}
		if r.status != http.StatusOK {
			return fmt.Errorf("GET /v1/sessions/%s via %s: %s", id, p.name, r)
		}
		if err := checkOwner(r, p.name, "GET", owner); err != nil {
			return err
		}
		getTook := time.Since(t0)
		text := "through " + p.name
		t0 = time.Now()
		r, err = p.c.send(ctx, http.MethodPost, "/v1/sessions/"+id+"/messages", map[string]string{"content": text}, nil)
		if err != nil {
			return err
		}
		var tr turnReply
		if r.status != http.StatusOK || json.Unmarshal(r.body, &tr) != nil || tr.Outcome.Status != "ok" || tr.Reply != "echo: "+text {
			return fmt.Errorf("a turn on %s via %s: %s", id, p.name, r)
		}
		if err := checkOwner(r, p.name, "POST messages", owner); err != nil {
			return err
		}
		turns++
		if tr.Turn != turns {
			return fmt.Errorf("a turn on %s via %s: turn %d, want %d", id, p.name, tr.Turn, turns)
		}
		hop := "local"
		if p.name != owner {
			hop = "forwarded to " + owner
		}
		log("%s: GET %s, turn %d %s (%s)", p.name, ms(getTook), tr.Turn, ms(time.Since(t0)), hop)
	}
	// A streamed turn through a pod that does not own the session: the
	// stream is forwarded as a stream and ends with its done event.
	for _, p := range pods {
		if p.name == owner {
			continue
		}
		events, done, err := p.c.sseTurn(ctx, id, "streamed through "+p.name)
		if err != nil {
			return err
		}
		if done.Outcome.Status != "ok" || done.Reply != "echo: streamed through "+p.name {
			return fmt.Errorf("SSE turn via %s: done %+v", p.name, done)
		}
		turns++
		log("%s: SSE turn %d forwarded to %s: %d events, done ok", p.name, done.Turn, owner, events)
		break
	}
	s, err := svc.get(ctx, id)
	if err != nil {
		return err
	}
	if len(s.Turns) != turns {
		return fmt.Errorf("session %s: %d turns, want %d", id, len(s.Turns), turns)
	}
	if err := checkHistory(s.Messages); err != nil {
		return fmt.Errorf("session %s: %w", id, err)
	}
	log("session %s (owner %s): served through every pod, %d turns, history valid", id, owner, turns)
	fmt.Fprintln(stdout, id)
	return nil
}

// sseTurn runs a streamed turn and returns the number of events and the
// done event.
func (c *client) sseTurn(ctx context.Context, id, content string) (int, turnReply, error) {
	var d turnReply
	b, _ := json.Marshal(map[string]string{"content": content})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/v1/sessions/"+id+"/messages", bytes.NewReader(b))
	if err != nil {
		return 0, d, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("X-Agentd-User", c.user)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, d, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		body, _ := io.ReadAll(resp.Body)
		return 0, d, fmt.Errorf("SSE turn via %s: %s %s: %s", c.url, resp.Status, resp.Header.Get("Content-Type"), bytes.TrimSpace(body))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	n, event, done := 0, "", ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
			n++
		case strings.HasPrefix(line, "data: ") && event == "done":
			done = strings.TrimPrefix(line, "data: ")
		}
	}
	if done == "" {
		return n, d, fmt.Errorf("SSE turn via %s: %d events, no done event (%v)", c.url, n, sc.Err())
	}
	if err := json.Unmarshal([]byte(done), &d); err != nil {
		return n, d, fmt.Errorf("done event %q: %w", done, err)
	}
	return n, d, nil
}

// ---- writes: admin writes through the Service while the leader goes ------------------------

// writes puts a new canary document through svc every 200 ms. Once the
// marker file exists (the script made the leader go; its time is the
// loss's) it goes on for
// `after`, then reports: every failed write, when another leader was named,
// and the longest time without a successful write, which must be at most
// within; and a write must have succeeded under the new leader.
func writes(ctx context.Context, svc *client, pods []pod, docFile, marker, oldLeader string, after, within time.Duration, stdout io.Writer) error {
	base := map[string]any{}
	if docFile != "" {
		b, err := os.ReadFile(docFile)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &base); err != nil {
			return fmt.Errorf("%s: %w", docFile, err)
		}
	}
	t0 := time.Now()
	var (
		mu        sync.Mutex
		deleted   time.Time // when the marker appeared
		newLeader string
		leaderAt  time.Time
	)
	// Who leads, as the surviving pods say, every 200 ms.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			for _, p := range pods {
				if p.name == oldLeader {
					continue
				}
				rctx, cancel := context.WithTimeout(ctx, time.Second)
				f, err := p.c.fleet(rctx)
				cancel()
				if err == nil && f.Leader != "" && f.Leader != oldLeader {
					mu.Lock()
					if newLeader == "" {
						newLeader, leaderAt = f.Leader, time.Now()
					}
					mu.Unlock()
				}
			}
		}
	}()
	type attempt struct {
		start, end time.Time
		err        error
	}
	var log []attempt
	var lastOK time.Time
	var gap time.Duration // the longest time without a successful write
	okAfterLeader := 0
	for i := 0; ; i++ {
		if deleted.IsZero() {
			if fi, err := os.Stat(marker); err == nil {
				deleted = fi.ModTime() // written right after the loss
			}
		} else if time.Since(deleted) > after {
			break
		}
		if time.Since(t0) > after+2*time.Minute {
			close(stop)
			wg.Wait()
			return errors.New("the marker file never appeared")
		}
		doc := map[string]any{}
		for k, v := range base {
			doc[k] = v
		}
		doc["guard"] = map[string]any{"min_samples": 50 + i%100} // a new document each time (the window is 200)
		b, _ := json.Marshal(doc)
		a := attempt{start: time.Now()}
		rctx, cancel := context.WithTimeout(ctx, 4*time.Second)
		_, a.err = svc.putCanary(rctx, b, "ci: a write while the leader goes")
		cancel()
		a.end = time.Now()
		log = append(log, a)
		if a.err == nil {
			if !lastOK.IsZero() {
				gap = max(gap, a.end.Sub(lastOK))
			}
			lastOK = a.end
			mu.Lock()
			if newLeader != "" && a.start.After(leaderAt) {
				okAfterLeader++
			}
			mu.Unlock()
		}
		time.Sleep(200 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	// The gap still open at the end counts too.
	gap = max(gap, time.Since(lastOK))

	rel := func(t time.Time) string { return fmt.Sprintf("%+.1fs", t.Sub(deleted).Seconds()) }
	ok, failed, refused := 0, 0, 0
	for _, a := range log {
		if a.err == nil {
			ok++
			continue
		}
		failed++
		var se statusError
		if errors.As(a.err, &se) && se.status >= 400 && se.status < 500 && se.status != http.StatusPreconditionFailed {
			refused++ // the check's own request is wrong: not an outage
		}
		fmt.Fprintf(stdout, "  write at %s (relative to the loss) failed after %s: %v\n", rel(a.start), ms(a.end.Sub(a.start)), a.err)
	}
	fmt.Fprintf(stdout, "%d writes through %s: %d committed, %d failed\n", len(log), svc.url, ok, failed)
	if refused > 0 {
		return fmt.Errorf("%d writes were refused as bad requests: the check is broken", refused)
	}
	if newLeader == "" {
		// A SIGKILLed agentd restarted in place by the kubelet may win the
		// election again (its log is as long as any): then the proof is
		// that writes committed after the loss, under whoever leads now.
		okAfterLoss := 0
		for _, a := range log {
			if a.err == nil && a.start.After(deleted) {
				okAfterLoss++
			}
		}
		if okAfterLoss == 0 {
			return fmt.Errorf("no pod named a leader other than %s within %s of the loss, and no write committed after it", oldLeader, after)
		}
		fmt.Fprintf(stdout, "leader %s again (restarted in place and re-elected); %d writes committed after the loss\n", oldLeader, okAfterLoss)
		newLeader, leaderAt, okAfterLeader = oldLeader, deleted, okAfterLoss
	}
	fmt.Fprintf(stdout, "leader %s -> %s, named %s after the loss\n", oldLeader, newLeader, ms(leaderAt.Sub(deleted)))
	fmt.Fprintf(stdout, "longest time without a committed write: %s (bound %s); %d writes committed under the new leader\n", ms(gap), within, okAfterLeader)
	if okAfterLeader == 0 {
		return fmt.Errorf("no write committed after %s took over", newLeader)
	}
	if gap > within {
		return fmt.Errorf("writes stopped for %s, more than %s", gap.Round(time.Millisecond), within)
	}
	return nil
}

// ---- versions: one history on every pod --------------------------------------------------

func (c *client) versions(ctx context.Context) ([]json.RawMessage, error) {
	r, err := c.send(ctx, http.MethodGet, "/v1/admin/versions?limit=1000", nil, nil)
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/admin/versions: %s", r)
	}
	var out struct {
		Versions []json.RawMessage `json:"versions"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil {
		return nil, fmt.Errorf("GET /v1/admin/versions: decode: %w", err)
	}
	return out.Versions, nil
}

// sameVersions waits (followers apply within a second) until every pod
// serves the same history, numbered n, n-1, ..., 1 without a gap.
func sameVersions(ctx context.Context, pods []pod, stdout io.Writer) error {
	t0 := time.Now()
	var why string
	for {
		var first []any
		why = ""
		for i, p := range pods {
			vs, err := p.c.versions(ctx)
			if err != nil {
				why = p.name + ": " + err.Error()
				break
			}
			decoded := make([]any, len(vs))
			for j, v := range vs {
				if err := json.Unmarshal(v, &decoded[j]); err != nil {
					return err
				}
			}
			if i == 0 {
				first = decoded
				if err := contiguous(decoded); err != nil {
					why = p.name + ": " + err.Error()
					break
				}
				continue
			}
			if !reflect.DeepEqual(first, decoded) {
				why = fmt.Sprintf("%s's history (%d versions) differs from %s's (%d): %s", p.name, len(decoded), pods[0].name, len(first), firstDiff(first, decoded))
				break
			}
		}
		if why == "" {
			names := []string{}
			for _, p := range pods {
				names = append(names, p.name)
			}
			fmt.Fprintf(stdout, "one version history on %s: %d versions, numbered %d..1, identical (seen after %s):\n",
				strings.Join(names, ", "), len(first), len(first), ms(time.Since(t0)))
			for i, v := range first {
				if i == 3 && len(first) > 6 {
					fmt.Fprintf(stdout, "  ... (%d more)\n", len(first)-6)
				}
				if i >= 3 && i < len(first)-3 {
					continue
				}
				m, _ := v.(map[string]any)
				fmt.Fprintf(stdout, "  %v %v by %v: %v\n", m["version"], m["kind"], m["actor"], m["reason"])
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New(why)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// contiguous wants versions newest first, numbered n..1.
func contiguous(vs []any) error {
	if len(vs) == 0 {
		return errors.New("no versions")
	}
	var ns []int
	for _, v := range vs {
		m, _ := v.(map[string]any)
		f, _ := m["version"].(float64)
		ns = append(ns, int(f))
	}
	want := make([]int, len(ns))
	for i := range want {
		want[i] = len(ns) - i
	}
	if !slices.Equal(ns, want) {
		return fmt.Errorf("versions %v are not one sequence %d..1", ns, len(ns))
	}
	return nil
}

func firstDiff(a, b []any) string {
	for i := 0; i < min(len(a), len(b)); i++ {
		if !reflect.DeepEqual(a[i], b[i]) {
			ja, _ := json.Marshal(a[i])
			jb, _ := json.Marshal(b[i])
			return fmt.Sprintf("entry %d: %s vs %s", i, ja, jb)
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(a), len(b))
}
