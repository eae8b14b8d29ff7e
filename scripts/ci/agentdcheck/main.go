// Command agentdcheck drives a running agentd over its public HTTP API for the
// deployment checks (scripts/ci-docker.sh, scripts/ci-k8s.sh), against a fake
// model endpoint (cmd/fakellm) whose replies are steered by directives in the
// user message. It is a black-box client: it knows the API, not agentd's code.
//
//	agentdcheck open   -url URL -key KEY -user U      create a session, run one turn; print the session id
//	agentdcheck hang   -url URL -key KEY -session ID -ready FILE [-want-done]
//	                   start a [[hang]] turn (SSE); create FILE once the turn is in flight,
//	                   then wait for the stream to end and print how it ended
//	agentdcheck verify -url URL -key KEY -session ID -turns N
//	                   the session after a restart: N turns, the last one cancelled with
//	                   reason shutdown, a valid history; then a new turn works
//	agentdcheck shell  -url URL -key KEY -user U      a turn that runs `echo hi` with run_shell_command
//
// The fleet (scripts/ci-k8s.sh): -url is the Service, -urls names each pod's own
// address as name=http://host:port,...; admin commands take an admin key.
//
//	agentdcheck fleet      -urls PODS -key ADMIN -members N
//	                       wait until every pod names the same leader and N voting members that
//	                       answer (GET /v1/admin/fleet); print the leader
//	agentdcheck apply      -url URL -key ADMIN -file F -reason R    PUT /v1/admin/canary with If-Match
//	agentdcheck halt       -url SVC -urls PODS -key ADMIN -dimension D -variant V -within 2s
//	                       halt through the Service; measure until each pod serves it halted
//	agentdcheck everywhere -url SVC -urls PODS -key KEY -user U [-session ID]
//	                       create a session through the Service (or take ID); GET, a turn and an
//	                       SSE turn through every pod, X-Agentd-Owner checked; print the id
//	agentdcheck writes     -url SVC -urls PODS -key ADMIN -file F -marker FILE -old-leader NAME -after 25s -within 10s
//	                       PUT /v1/admin/canary through the Service every 200 ms; from the
//	                       marker on (the leader lost: its time is the loss's) measure the longest
//	                       time without a committed write and when a new leader is named
//	agentdcheck versions   -urls PODS -key ADMIN    every pod serves the same version history, n..1
//
// Every command exits 0 when its check holds and 1 with a reason when not.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "agentdcheck:", err)
		os.Exit(1)
	}
}

const usage = "usage: agentdcheck open|hang|verify|shell|fleet|apply|halt|everywhere|writes|versions -key KEY [flags] (see the package doc)"

// client talks to one agentd.
type client struct {
	url  string
	key  string
	user string
	hc   *http.Client
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	cmd := args[0]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:8080", "agentd's base URL")
	key := fs.String("key", "", "API key (Authorization: Bearer)")
	user := fs.String("user", "ci-user", "end user (X-Agentd-User)")
	id := fs.String("session", "", "session id")
	ready := fs.String("ready", "", "hang: file created once the turn is in flight")
	turns := fs.Int("turns", 0, "verify: number of turns the session must have")
	timeout := fs.Duration("timeout", 60*time.Second, "deadline of the whole command (hang: of the wait for the turn to start)")
	urls := fs.String("urls", "", "the pods: name=http://host:port,...")
	members := fs.Int("members", 3, "fleet: number of members")
	file := fs.String("file", "", "apply, writes: a canary.json document")
	why := fs.String("reason", "ci", "apply: X-Agentd-Reason")
	dim := fs.String("dimension", "", "halt: dimension")
	variant := fs.String("variant", "", "halt: variant")
	within := fs.Duration("within", 0, "halt, writes: the bound")
	marker := fs.String("marker", "", "writes: the file that says the leader is lost (its modification time is when)")
	oldLeader := fs.String("old-leader", "", "writes: the leader that goes")
	after := fs.Duration("after", 25*time.Second, "writes: how long to go on after the marker")
	wantDone := fs.Bool("want-done", false, "hang: fail if the stream ends without a done event (a direct connection to agentd, no tunnel)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *key == "" {
		return errors.New("-key is required")
	}
	c := &client{url: strings.TrimRight(*url, "/"), key: *key, user: *user, hc: &http.Client{}}
	var pods []pod
	switch cmd {
	case "fleet", "halt", "everywhere", "writes", "versions":
		var err error
		if pods, err = parsePods(*urls, c); err != nil {
			return err
		}
	}
	switch cmd {
	case "open":
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		return c.open(ctx, stdout)
	case "hang":
		if *id == "" || *ready == "" {
			return errors.New("hang needs -session and -ready")
		}
		return c.hang(ctx, *id, *ready, *timeout, *wantDone, stdout)
	case "verify":
		if *id == "" || *turns < 1 {
			return errors.New("verify needs -session and -turns")
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		return c.verify(ctx, *id, *turns, stdout)
	case "shell":
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		return c.shell(ctx, stdout)
	case "fleet":
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		return waitFleet(ctx, pods, *members, stdout)
	case "apply":
		if *file == "" {
			return errors.New("apply needs -file")
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		return c.apply(ctx, *file, *why, stdout)
	case "halt":
		if *dim == "" || *variant == "" || *within <= 0 {
			return errors.New("halt needs -dimension, -variant and -within")
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		return halt(ctx, c, pods, *dim, *variant, *within, stdout)
	case "everywhere":
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		return everywhere(ctx, c, pods, *id, stdout)
	case "writes":
		if *marker == "" || *oldLeader == "" || *within <= 0 {
			return errors.New("writes needs -marker, -old-leader and -within")
		}
		return writes(ctx, c, pods, *file, *marker, *oldLeader, *after, *within, stdout)
	case "versions":
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		return sameVersions(ctx, pods, stdout)
	}
	return fmt.Errorf("unknown command %q; %s", cmd, usage)
}

// The API's shapes, as far as these checks need them.
type (
	toolCall struct {
		ID       string `json:"id"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	}
	message struct {
		Role       string     `json:"role"`
		Content    string     `json:"content"`
		ToolCalls  []toolCall `json:"tool_calls"`
		ToolCallID string     `json:"tool_call_id"`
	}
	outcome struct {
		Status           string `json:"status"`
		IncompleteReason string `json:"incomplete_reason"`
		CancelReason     string `json:"cancel_reason"`
		ToolCount        int    `json:"tool_count"`
		Error            string `json:"error"`
	}
	turnRecord struct {
		N       int     `json:"n"`
		Outcome outcome `json:"outcome"`
	}
	sessionView struct {
		ID       string          `json:"id"`
		Running  bool            `json:"running"`
		Messages []message       `json:"messages"`
		Turns    []turnRecord    `json:"turns"`
		InFlight json.RawMessage `json:"in_flight"`
	}
	turnReply struct {
		Turn    int     `json:"turn"`
		Reply   string  `json:"reply"`
		Outcome outcome `json:"outcome"`
	}
)

// do sends a JSON request and decodes a JSON answer of status want into out.
func (c *client) do(ctx context.Context, method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("X-Agentd-User", c.user)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: got %s, want %d: %s", method, path, resp.Status, want, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode %q: %w", method, path, b, err)
		}
	}
	return nil
}

func (c *client) create(ctx context.Context) (string, error) {
	var s sessionView
	if err := c.do(ctx, http.MethodPost, "/v1/sessions", nil, http.StatusCreated, &s); err != nil {
		return "", err
	}
	if s.ID == "" {
		return "", errors.New("POST /v1/sessions: no id in the answer")
	}
	return s.ID, nil
}

func (c *client) turn(ctx context.Context, id, content string) (turnReply, error) {
	var r turnReply
	err := c.do(ctx, http.MethodPost, "/v1/sessions/"+id+"/messages", map[string]string{"content": content}, http.StatusOK, &r)
	return r, err
}

// echoTurn runs a plain turn and checks the fake model's echo came back.
func (c *client) echoTurn(ctx context.Context, id, text string) (turnReply, error) {
	r, err := c.turn(ctx, id, text)
	if err != nil {
		return r, err
	}
	if r.Outcome.Status != "ok" || r.Reply != "echo: "+text {
		return r, fmt.Errorf("turn %q: got status %q reply %q (%+v), want ok and %q", text, r.Outcome.Status, r.Reply, r.Outcome, "echo: "+text)
	}
	return r, nil
}

func (c *client) open(ctx context.Context, stdout io.Writer) error {
	id, err := c.create(ctx)
	if err != nil {
		return err
	}
	if _, err := c.echoTurn(ctx, id, "hello from "+c.user); err != nil {
		return fmt.Errorf("session %s: %w", id, err)
	}
	fmt.Fprintln(stdout, id)
	return nil
}

// hang starts a turn that the fake model never answers and holds the stream
// open until the server ends it. The ready file appears once agentd has
// started the model call, i.e. the turn is in flight.
func (c *client) hang(ctx context.Context, id, ready string, startTimeout time.Duration, wantDone bool, stdout io.Writer) error {
	b, _ := json.Marshal(map[string]string{"content": "wait for me [[hang]]"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/v1/sessions/"+id+"/messages", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("X-Agentd-User", c.user)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	started := time.AfterFunc(startTimeout, func() {
		fmt.Fprintf(os.Stderr, "agentdcheck: hang: no llm_call_started within %s\n", startTimeout)
		os.Exit(1)
	})
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("hang turn: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("hang turn: got %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	var event, done string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if event == "llm_call_started" && started.Stop() {
				if err := os.WriteFile(ready, []byte(id+"\n"), 0o644); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "session %s: turn in flight\n", id)
			}
			if event == "done" {
				done = strings.TrimPrefix(line, "data: ")
			}
		}
	}
	if done == "" && wantDone {
		return fmt.Errorf("session %s: the stream ended without a done event (%v)", id, sc.Err())
	}
	if done == "" {
		// Through a port-forward the tunnel may close with the pod before
		// the last event arrives; the stored session is what counts.
		fmt.Fprintf(stdout, "session %s: stream ended without a done event (%v)\n", id, sc.Err())
		return nil
	}
	fmt.Fprintf(stdout, "session %s: stream ended with done %s\n", id, done)
	var d turnReply // the done event carries the fields of the JSON reply
	if err := json.Unmarshal([]byte(done), &d); err != nil {
		return fmt.Errorf("done event %q: %w", done, err)
	}
	if d.Outcome.Status != "cancelled" || d.Outcome.CancelReason != "shutdown" {
		return fmt.Errorf("done event: outcome %+v, want cancelled with reason shutdown", d.Outcome)
	}
	return nil
}

// checkHistory reports the first way messages are not a valid chat history:
// every assistant tool call is answered by exactly one tool message before the
// next non-tool message, and every tool message answers such a call.
func checkHistory(msgs []message) error {
	pending := map[string]bool{} // calls of the last assistant message not yet answered
	for i, m := range msgs {
		switch m.Role {
		case "tool":
			if !pending[m.ToolCallID] {
				return fmt.Errorf("message %d: tool result for %q answers no open tool call", i, m.ToolCallID)
			}
			delete(pending, m.ToolCallID)
		case "user", "assistant", "system":
			if len(pending) > 0 {
				return fmt.Errorf("message %d (%s): tool calls %v were never answered", i, m.Role, keys(pending))
			}
			for _, tc := range m.ToolCalls {
				if m.Role != "assistant" || tc.ID == "" {
					return fmt.Errorf("message %d (%s): bad tool call %+v", i, m.Role, tc)
				}
				pending[tc.ID] = true
			}
		default:
			return fmt.Errorf("message %d: unknown role %q", i, m.Role)
		}
	}
	if len(pending) > 0 {
		return fmt.Errorf("history ends with unanswered tool calls %v", keys(pending))
	}
	return nil
}

func keys(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func (c *client) get(ctx context.Context, id string) (sessionView, error) {
	var s sessionView
	err := c.do(ctx, http.MethodGet, "/v1/sessions/"+id, nil, http.StatusOK, &s)
	return s, err
}

func (c *client) verify(ctx context.Context, id string, turns int, stdout io.Writer) error {
	s, err := c.get(ctx, id)
	if err != nil {
		return err
	}
	if len(s.Turns) != turns {
		return fmt.Errorf("session %s: %d turns, want %d: %+v", id, len(s.Turns), turns, s.Turns)
	}
	last := s.Turns[len(s.Turns)-1].Outcome
	if last.Status != "cancelled" || last.CancelReason != "shutdown" {
		return fmt.Errorf("session %s: last turn %+v, want cancelled with reason shutdown", id, last)
	}
	if s.Running || len(s.InFlight) > 0 && string(s.InFlight) != "null" {
		return fmt.Errorf("session %s: still shows a running turn after the restart", id)
	}
	if err := checkHistory(s.Messages); err != nil {
		return fmt.Errorf("session %s: %w", id, err)
	}
	fmt.Fprintf(stdout, "session %s: %d turns, %d messages, history valid, last turn cancelled (shutdown)\n", id, len(s.Turns), len(s.Messages))

	r, err := c.echoTurn(ctx, id, "still here after the restart")
	if err != nil {
		return fmt.Errorf("session %s: new turn: %w", id, err)
	}
	s, err = c.get(ctx, id)
	if err != nil {
		return err
	}
	if len(s.Turns) != turns+1 || r.Turn != turns+1 {
		return fmt.Errorf("session %s: after a new turn %d: %d turns, want %d", id, r.Turn, len(s.Turns), turns+1)
	}
	if err := checkHistory(s.Messages); err != nil {
		return fmt.Errorf("session %s after the new turn: %w", id, err)
	}
	fmt.Fprintf(stdout, "session %s: new turn %d ok: %q\n", id, r.Turn, r.Reply)
	return nil
}

// shell runs `echo hi` through run_shell_command; the fake model then
// answers "tool said: RESULT", RESULT being the start of the tool's output.
func (c *client) shell(ctx context.Context, stdout io.Writer) error {
	id, err := c.create(ctx)
	if err != nil {
		return err
	}
	r, err := c.turn(ctx, id, `run it [[tool run_shell_command {"command":"echo hi"}]]`)
	if err != nil {
		return fmt.Errorf("session %s: %w", id, err)
	}
	s, err := c.get(ctx, id)
	if err != nil {
		return err
	}
	var result string
	for _, m := range s.Messages {
		if m.Role == "tool" {
			result = m.Content
		}
	}
	fmt.Fprintf(stdout, "session %s: outcome %+v\nrun_shell_command result: %q\nreply: %q\n", id, r.Outcome, result, r.Reply)
	if err := checkHistory(s.Messages); err != nil {
		return fmt.Errorf("session %s: %w", id, err)
	}
	if r.Outcome.Status != "ok" || r.Outcome.ToolCount != 1 {
		return fmt.Errorf("session %s: outcome %+v, want ok with 1 tool call", id, r.Outcome)
	}
	printed := false
	for _, line := range strings.Split(result, "\n") {
		if line == "hi" && strings.HasPrefix(r.Reply, "tool said: ") {
			printed = true
		}
	}
	if !printed {
		return fmt.Errorf("session %s: the shell did not print hi: tool result %q", id, result)
	}
	// The shell is sandboxed: the data directory (other sessions, the
	// store) is hidden from it.
	if _, err := c.turn(ctx, id, `peek [[tool run_shell_command {"command":"ls /data"}]]`); err != nil {
		return fmt.Errorf("session %s: %w", id, err)
	}
	if s, err = c.get(ctx, id); err != nil {
		return err
	}
	result = s.Messages[len(s.Messages)-2].Content
	fmt.Fprintf(stdout, "run_shell_command `ls /data`: %q\n", result)
	if !strings.Contains(result, "Permission denied") {
		return fmt.Errorf("session %s: `ls /data` was not refused by the sandbox: %q", id, result)
	}
	return nil
}
