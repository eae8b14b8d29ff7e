package alerts_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/agentd/agentd/internal/alerts"
	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/usage"
)

// clock is a fake clock the tests step.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func (c *clock) set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func newClock(t time.Time) *clock    { return &clock{t: t} }

// source is an in-memory alerts.Source with the semantics usage.Meter
// promises: days in a zone, 5-minute slots, last use per scope, sessions.
type source struct {
	mu       sync.Mutex
	zone     *time.Location
	now      func() time.Time
	days     map[usage.Scope]map[string]usage.Counts
	slots    map[usage.Scope]map[time.Time]usage.Counts
	last     map[usage.Scope]time.Time
	sessions map[string]usage.SessionUse
}

var _ alerts.Source = (*source)(nil)

const slot = 5 * time.Minute

func newSource(zone *time.Location, now func() time.Time) *source {
	return &source{zone: zone, now: now, days: map[usage.Scope]map[string]usage.Counts{},
		slots: map[usage.Scope]map[time.Time]usage.Counts{}, last: map[usage.Scope]time.Time{},
		sessions: map[string]usage.SessionUse{}}
}

func (s *source) day(t time.Time) string { return t.In(s.zone).Format("2006-01-02") }

// add counts c at time at in every scope given and in the total.
func (s *source) add(at time.Time, c usage.Counts, scopes ...usage.Scope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sc := range append([]usage.Scope{usage.Total()}, scopes...) {
		if s.days[sc] == nil {
			s.days[sc] = map[string]usage.Counts{}
			s.slots[sc] = map[time.Time]usage.Counts{}
		}
		s.days[sc][s.day(at)] = s.days[sc][s.day(at)].Add(c)
		s.slots[sc][at.Truncate(slot)] = s.slots[sc][at.Truncate(slot)].Add(c)
		if at.After(s.last[sc]) {
			s.last[sc] = at
		}
	}
}

// call records an LLM call of a session: its tokens go to the session too.
func (s *source) call(at time.Time, tenant, id string, tokens int64) {
	s.add(at, usage.Counts{InputTokens: tokens, LLMCalls: 1}, usage.Tenant(tenant))
	s.mu.Lock()
	defer s.mu.Unlock()
	su := s.sessions[tenant+"/"+id]
	su.Tenant, su.Session, su.Tokens, su.Last = tenant, id, su.Tokens+tokens, at
	s.sessions[tenant+"/"+id] = su
}

func (s *source) Day(scope usage.Scope, t time.Time) usage.Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.days[scope][s.day(t)]
}

func (s *source) Window(scope usage.Scope, since time.Time) usage.Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	var c usage.Counts
	now := s.now()
	for at, n := range s.slots[scope] {
		if !at.Before(since.Truncate(slot)) && !at.After(now) {
			c = c.Add(n)
		}
	}
	return c
}

func (s *source) Active(since time.Time) []usage.Scope {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []usage.Scope
	for sc, t := range s.last {
		if !t.Before(since) {
			out = append(out, sc)
		}
	}
	return out
}

func (s *source) Sessions(since time.Time) []usage.SessionUse {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []usage.SessionUse
	for _, su := range s.sessions {
		if !su.Last.Before(since) {
			out = append(out, su)
		}
	}
	return out
}

// env is an Alerts on a real bbolt store with a fake clock and source, and
// its log lines observed.
type env struct {
	t     *testing.T
	path  string
	db    *boltdb.DB
	clock *clock
	src   *source
	logs  *observer.ObservedLogs
	cfg   alerts.Config
	al    *alerts.Alerts
}

func newEnv(t *testing.T, zone *time.Location, start time.Time, edit func(*alerts.Config)) *env {
	t.Helper()
	e := &env{t: t, path: filepath.Join(t.TempDir(), "agentd.db"), clock: newClock(start)}
	e.src = newSource(zone, e.clock.now)
	e.cfg = alerts.Config{Source: e.src, Zone: zone, Now: e.clock.now}
	if edit != nil {
		edit(&e.cfg)
	}
	e.open()
	return e
}

// open opens the store and the alerts (again, after close: a restart).
func (e *env) open() {
	e.t.Helper()
	db, err := boltdb.Open(e.path, boltdb.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	cfg := e.cfg
	cfg.Store = db.Alerts()
	cfg.Logger = zap.New(zapcore.NewTee(core, zaptest.NewLogger(e.t).Core()))
	al, err := alerts.New(context.Background(), cfg)
	if err != nil {
		db.Close()
		e.t.Fatal(err)
	}
	e.db, e.al, e.logs = db, al, logs
	e.t.Cleanup(e.close)
}

// close closes the alerts and the store; a second call does nothing.
func (e *env) close() {
	if e.al == nil {
		return
	}
	if err := e.al.Close(); err != nil {
		e.t.Error(err)
	}
	if err := e.db.Close(); err != nil {
		e.t.Error(err)
	}
	e.al, e.db = nil, nil
}

func (e *env) eval() {
	e.t.Helper()
	if err := e.al.Evaluate(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

// firing returns the firing alerts of name, by scope.
func (e *env) firing(name string) map[alerts.Scope]alerts.Alert {
	out := map[alerts.Scope]alerts.Alert{}
	for _, a := range e.al.List() {
		if a.Name == name && a.ResolvedAt == nil {
			out[a.Scope] = a
		}
	}
	return out
}

// resolved returns the resolved alerts of name, by scope (the newest).
func (e *env) resolved(name string) map[alerts.Scope]alerts.Alert {
	out := map[alerts.Scope]alerts.Alert{}
	list := e.al.List()
	for i := len(list) - 1; i >= 0; i-- {
		if a := list[i]; a.Name == name && a.ResolvedAt != nil {
			out[a.Scope] = a
		}
	}
	return out
}

// lines counts the log lines whose message starts with prefix.
func (e *env) lines(prefix string) int {
	n := 0
	for _, l := range e.logs.All() {
		if len(l.Message) >= len(prefix) && l.Message[:len(prefix)] == prefix {
			n++
		}
	}
	return n
}
