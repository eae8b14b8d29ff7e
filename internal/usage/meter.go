package usage

import (
	"cmp"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/canary"
	"github.com/agentd/agentd/internal/session"
)

// Retention and resolution of the counters.
const (
	// SlotLength is the resolution of the rate counters (Window).
	SlotLength = 5 * time.Minute
	// KeepSlots is how long slots are kept.
	KeepSlots = 24 * time.Hour
	// KeepDays is how many days (today included) the day counters keep:
	// today and the 7 before, what the daily-token alert compares.
	KeepDays = 8
	// KeepSessions is how long a session's tokens are kept after its last
	// LLM call.
	KeepSessions = 24 * time.Hour
	// DefaultFlushEvery is how often the counters are written to the store.
	DefaultFlushEvery = time.Second
	// StatusDays is how many days Status lists.
	StatusDays = 7
)

// Store keeps the counters (boltdb.UsageStore). The Meter writes absolute
// values, not increments, so a write that failed is simply written again.
type Store interface {
	// Load returns every record kept.
	Load() (Records, error)
	// Apply writes the changes in one transaction.
	Apply(Changes) error
}

// DayKey names a day counter: a day in the usage zone ("2026-12-02") and a scope.
type DayKey struct {
	Day   string
	Scope Scope
}

// SlotKey names a rate counter: a 5-minute slot (its start, Unix seconds) and a scope.
type SlotKey struct {
	Start int64
	Scope Scope
}

// SessionKey names a session's token counter.
type SessionKey struct{ Tenant, Session string }

// Records are counters as stored.
type Records struct {
	Days     map[DayKey]Counts
	Slots    map[SlotKey]Counts
	Sessions map[SessionKey]SessionUse
}

// Changes are what a flush writes: records to put and keys to delete.
type Changes struct {
	Put         Records
	DelDays     []DayKey
	DelSlots    []SlotKey
	DelSessions []SessionKey
}

func (c Changes) empty() bool {
	return len(c.Put.Days)+len(c.Put.Slots)+len(c.Put.Sessions)+len(c.DelDays)+len(c.DelSlots)+len(c.DelSessions) == 0
}

// Config is what a Meter runs with.
type Config struct {
	Store Store          // required
	Zone  *time.Location // the day of budgets and the daily counters; nil: UTC
	Now   func() time.Time
	// Budgets returns the budgets in force (control.File.Get of
	// budgets.json); nil: none.
	Budgets func() Budgets
	// OnRefuse, if set, is called for every refusal with the kind of the
	// spent budget: "tenant" or "user" (agentd_budget_refusals_total).
	OnRefuse func(kind string)
	// FlushEvery is the longest a count waits in memory before it is
	// written; default DefaultFlushEvery.
	FlushEvery time.Duration
	Logger     *zap.Logger
}

// Meter counts what turns spend, per day, per 5-minute slot and per
// session, and refuses LLM calls over a daily token budget. It implements
// session.Meter; the turn observer calls Turn. It is safe for concurrent
// use; reads are served from memory.
//
// Counts are written to the store by one goroutine, at most every
// FlushEvery and at Close, not on the turn's path: an LLM call must not wait
// for an fsync (bbolt has one writer, so a write per call would serialise
// every session's calls behind the disk). The price: a kill -9 (or a power
// loss) loses the counts of the last second at most, which a budget
// tolerates (it may then allow that second's tokens once more).
//
// A budget is checked before each call with the tokens counted so far, and
// a call's tokens are known only when it ends, so calls in flight when the
// budget is reached (one per running turn of the tenant) may overshoot it.
type Meter struct {
	cfg  Config
	log  *zap.Logger
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	days     map[DayKey]Counts
	slots    map[SlotKey]Counts
	sessions map[SessionKey]SessionUse
	// dirty: true to write the record, false to delete it.
	dirtyDays     map[DayKey]bool
	dirtySlots    map[SlotKey]bool
	dirtySessions map[SessionKey]bool
	refusalLogged map[Scope]string // scope → the day its refusal was logged
	// shares are the other replicas' counts of a fleet (fleet.go): node →
	// day → scope.
	shares   map[string]map[string]map[Scope]Counts
	pruned   time.Time
	flushErr string // the last flush error logged ("" after a success)

	closeOnce sync.Once
	closeErr  error
}

var _ session.Meter = (*Meter)(nil)

// New loads the counters from cfg.Store and starts the writer. Close it.
func New(cfg Config) (*Meter, error) {
	if cfg.Store == nil {
		return nil, errors.New("usage: no store")
	}
	if cfg.Zone == nil {
		cfg.Zone = time.UTC
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Budgets == nil {
		cfg.Budgets = func() Budgets { return Budgets{} }
	}
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = DefaultFlushEvery
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	recs, err := cfg.Store.Load()
	if err != nil {
		return nil, err
	}
	m := &Meter{
		cfg: cfg, log: cfg.Logger.Named("usage"), stop: make(chan struct{}), done: make(chan struct{}),
		days: orEmpty(recs.Days), slots: orEmpty(recs.Slots), sessions: orEmpty(recs.Sessions),
		dirtyDays: map[DayKey]bool{}, dirtySlots: map[SlotKey]bool{}, dirtySessions: map[SessionKey]bool{},
		refusalLogged: map[Scope]string{},
	}
	m.mu.Lock()
	m.prune(cfg.Now())
	m.mu.Unlock()
	go m.loop()
	return m, nil
}

func orEmpty[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return map[K]V{}
	}
	return m
}

// Zone is the zone of the meter's days.
func (m *Meter) Zone() *time.Location { return m.cfg.Zone }

// Budgets returns the budgets in force.
func (m *Meter) Budgets() Budgets { return m.cfg.Budgets() }

// day is the day in the zone that holds t.
func (m *Meter) day(t time.Time) string { return t.In(m.cfg.Zone).Format(time.DateOnly) }

// DayEnd is the end of the day (in the zone) that holds t: when its budgets
// are whole again.
func (m *Meter) DayEnd(t time.Time) time.Time {
	l := t.In(m.cfg.Zone)
	return time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, m.cfg.Zone)
}

func slotStart(t time.Time) int64 { return t.Truncate(SlotLength).Unix() }

// scopes are the scopes a session's use counts in: total, its tenant, its
// end user (if named) and, for every dimension, its variant or "stable".
func scopes(sum session.Summary) []Scope {
	out := make([]Scope, 0, 3+canary.NumDimensions)
	out = append(out, Total(), Tenant(sum.Tenant))
	if sum.User != "" {
		out = append(out, User(sum.Tenant, sum.User))
	}
	for _, dim := range canary.Dimensions() {
		name := sum.Assignment.VariantOf(dim)
		if name == "" {
			name = "stable"
		}
		out = append(out, Variant(dim.String(), name))
	}
	return out
}

// add counts c for sum's scopes at now. Call with mu held.
func (m *Meter) add(sum session.Summary, now time.Time, c Counts) {
	day, slot := m.day(now), slotStart(now)
	for _, sc := range scopes(sum) {
		dk, sk := DayKey{day, sc}, SlotKey{slot, sc}
		m.days[dk] = m.days[dk].Add(c)
		m.slots[sk] = m.slots[sk].Add(c)
		m.dirtyDays[dk], m.dirtySlots[sk] = true, true
	}
}

// Called counts one LLM call: its tokens, the call and, if it failed with
// a 5xx, the failure (session.Meter).
func (m *Meter) Called(sum session.Summary, c agent.LLMCall) {
	if sum.Tenant == session.ProbeTenant {
		return
	}
	n := Counts{InputTokens: int64(c.Usage.PromptTokens), OutputTokens: int64(c.Usage.CompletionTokens), LLMCalls: 1}
	if c.Status >= 500 {
		n.LLM5xx = 1
	}
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.add(sum, now, n)
	k := SessionKey{sum.Tenant, string(sum.ID)}
	su := m.sessions[k]
	su.Tenant, su.Session, su.Last = sum.Tenant, string(sum.ID), now
	su.Tokens += n.Tokens()
	m.sessions[k] = su
	m.dirtySessions[k] = true
}

// Turn counts a finished turn's tool calls and failures (its LLM calls and
// tokens were counted as they ended, by Called).
func (m *Meter) Turn(sum session.Summary, rec session.TurnRecord) {
	if sum.Tenant == session.ProbeTenant || rec.Stats.ToolCalls == 0 && rec.Stats.ToolFailures == 0 {
		return
	}
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.add(sum, now, Counts{ToolCalls: int64(rec.Stats.ToolCalls), ToolFailures: int64(rec.Stats.ToolFailures)})
}

// Admit refuses with a *session.BudgetError when the daily token budget of
// the session's tenant or end user is spent (session.Meter): it is asked
// before a turn and before each of its LLM calls.
func (m *Meter) Admit(sum session.Summary) error {
	if sum.Tenant == session.ProbeTenant {
		return nil
	}
	b := m.cfg.Budgets()
	now := m.cfg.Now()
	day := m.day(now)
	check := []struct {
		kind, name string
		scope      Scope
		limit      int64
	}{
		{"tenant", sum.Tenant, Tenant(sum.Tenant), b.Tenant(sum.Tenant).DailyTokens},
		{"user", sum.Tenant + "/" + sum.User, User(sum.Tenant, sum.User), b.User(sum.Tenant, sum.User).DailyTokens},
	}
	for _, c := range check {
		if c.limit <= 0 {
			continue
		}
		m.mu.Lock()
		used := m.fleetDay(day, c.scope).Tokens() // the whole fleet's, in a fleet
		if used < c.limit {
			m.mu.Unlock()
			continue
		}
		first := m.refusalLogged[c.scope] != day
		m.refusalLogged[c.scope] = day
		m.mu.Unlock()
		err := &session.BudgetError{Scope: c.kind + " " + c.name, Used: used, Limit: c.limit, Reset: m.DayEnd(now)}
		if first { // once per scope and day: a refused tenant retrying must not flood the log
			m.log.Warn("daily token budget spent: LLM calls refused until the day ends",
				zap.String("scope", c.kind), zap.String("tenant", sum.Tenant), zap.String("user", sum.User),
				zap.Int64("used", used), zap.Int64("limit", c.limit), zap.Time("resets_at", err.Reset))
		}
		if m.cfg.OnRefuse != nil {
			m.cfg.OnRefuse(c.kind)
		}
		return err
	}
	return nil
}

// Day returns what scope spent on the day (in the zone) that holds t.
func (m *Meter) Day(scope Scope, t time.Time) Counts {
	day := m.day(t)
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.days[DayKey{day, scope}]
}

// Window returns what scope spent in the 5-minute slots from the one that
// holds since to the current one (so up to 5 minutes more than since..now;
// at most the last 24 h).
func (m *Meter) Window(scope Scope, since time.Time) Counts {
	now := m.cfg.Now()
	if oldest := now.Add(-KeepSlots - SlotLength); since.Before(oldest) {
		since = oldest
	}
	last := slotStart(now)
	m.mu.Lock()
	defer m.mu.Unlock()
	var c Counts
	for s := slotStart(since); s <= last; s += int64(SlotLength / time.Second) {
		c = c.Add(m.slots[SlotKey{s, scope}])
	}
	return c
}

// Active returns the scopes (of every kind) with any use since, sorted:
// from the 5-minute slots within the last 24 h, from the days before.
func (m *Meter) Active(since time.Time) []Scope {
	now := m.cfg.Now()
	set := map[Scope]bool{}
	m.mu.Lock()
	from := slotStart(since)
	for k := range m.slots {
		if k.Start >= from {
			set[k.Scope] = true
		}
	}
	if since.Before(now.Add(-KeepSlots)) {
		first := m.day(since)
		for k := range m.days {
			if k.Day >= first {
				set[k.Scope] = true
			}
		}
	}
	m.mu.Unlock()
	return slices.Sorted(maps.Keys(set))
}

// Sessions returns the sessions with an LLM call since (within the last
// 24 h), sorted by tenant and id.
func (m *Meter) Sessions(since time.Time) []SessionUse {
	m.mu.Lock()
	var out []SessionUse
	for _, su := range m.sessions {
		if !su.Last.Before(since) {
			out = append(out, su)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b SessionUse) int {
		if a.Tenant != b.Tenant {
			return cmp.Compare(a.Tenant, b.Tenant)
		}
		return cmp.Compare(a.Session, b.Session)
	})
	return out
}

// SessionTokensMax returns the most tokens of any session with an LLM call
// since (0 if none).
func (m *Meter) SessionTokensMax(since time.Time) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var best int64
	for _, su := range m.sessions {
		if !su.Last.Before(since) && su.Tokens > best {
			best = su.Tokens
		}
	}
	return best
}

// Status is a scope's use today against its budget, and per day.
type Status struct {
	Today    Counts
	Budget   int64     // daily tokens; 0: no limit
	ResetsAt time.Time // the end of today in the zone
	Days     []DayCounts
}

// DayCounts is one day's counts.
type DayCounts struct {
	Day string // "2026-12-02", in the zone
	Counts
}

// TenantStatus returns tenant's status: today, its budget, and the last
// StatusDays days, oldest first (today last).
func (m *Meter) TenantStatus(tenant string) Status {
	return m.status(Tenant(tenant), m.cfg.Budgets().Tenant(tenant).DailyTokens)
}

// UserStatus returns the status of tenant's end user user.
func (m *Meter) UserStatus(tenant, user string) Status {
	return m.status(User(tenant, user), m.cfg.Budgets().User(tenant, user).DailyTokens)
}

func (m *Meter) status(sc Scope, budget int64) Status {
	now := m.cfg.Now()
	st := Status{Budget: budget, ResetsAt: m.DayEnd(now)}
	l := now.In(m.cfg.Zone)
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := StatusDays - 1; i >= 0; i-- {
		day := time.Date(l.Year(), l.Month(), l.Day()-i, 12, 0, 0, 0, m.cfg.Zone).Format(time.DateOnly)
		st.Days = append(st.Days, DayCounts{Day: day, Counts: m.fleetDay(day, sc)})
	}
	st.Today = st.Days[len(st.Days)-1].Counts
	return st
}

// Users returns the end users of tenant with use in the days kept or a
// budget of their own, sorted.
func (m *Meter) Users(tenant string) []string {
	prefix := string(User(tenant, ""))
	set := map[string]bool{}
	for name := range m.cfg.Budgets().Users {
		if t, u, _ := strings.Cut(name, "/"); t == tenant {
			set[u] = true
		}
	}
	m.mu.Lock()
	scopes := map[Scope]bool{}
	for k := range m.days {
		scopes[k.Scope] = true
	}
	m.sharedScopes("user", scopes)
	m.mu.Unlock()
	for sc := range scopes {
		if s := string(sc); len(s) > len(prefix) && strings.HasPrefix(s, prefix) {
			set[s[len(prefix):]] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// Tenants returns the tenants with use in the days kept or a budget of
// their own, sorted.
func (m *Meter) Tenants() []string {
	set := map[string]bool{}
	for t := range m.cfg.Budgets().Tenants {
		set[t] = true
	}
	m.mu.Lock()
	scopes := map[Scope]bool{}
	for k := range m.days {
		scopes[k.Scope] = true
	}
	m.sharedScopes("tenant", scopes)
	m.mu.Unlock()
	for sc := range scopes {
		if sc.Kind() == "tenant" {
			set[sc.Name()] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// prune drops what is older than kept. Call with mu held.
func (m *Meter) prune(now time.Time) {
	m.pruned = now
	l := now.In(m.cfg.Zone)
	firstDay := time.Date(l.Year(), l.Month(), l.Day()-(KeepDays-1), 12, 0, 0, 0, m.cfg.Zone).Format(time.DateOnly)
	for k := range m.days {
		if k.Day < firstDay {
			delete(m.days, k)
			m.dirtyDays[k] = false
		}
	}
	firstSlot := slotStart(now.Add(-KeepSlots))
	for k := range m.slots {
		if k.Start < firstSlot {
			delete(m.slots, k)
			m.dirtySlots[k] = false
		}
	}
	for k, su := range m.sessions {
		if su.Last.Before(now.Add(-KeepSessions)) {
			delete(m.sessions, k)
			m.dirtySessions[k] = false
		}
	}
	today := m.day(now)
	for sc, day := range m.refusalLogged {
		if day != today {
			delete(m.refusalLogged, sc)
		}
	}
}

func (m *Meter) loop() {
	defer close(m.done)
	t := time.NewTicker(m.cfg.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.mu.Lock()
			if now := m.cfg.Now(); now.Sub(m.pruned) >= time.Minute || now.Before(m.pruned) {
				m.prune(now)
			}
			m.mu.Unlock()
			err := m.Flush()
			m.mu.Lock()
			msg := ""
			if err != nil {
				msg = err.Error()
			}
			changed := msg != m.flushErr
			m.flushErr = msg
			m.mu.Unlock()
			switch {
			case err != nil && changed: // retried every FlushEvery: said once per reason
				m.log.Error("usage counters not written; retrying (the budgets and alerts keep counting in memory)", zap.Error(err))
			case err == nil && changed:
				m.log.Info("usage counters written again")
			}
		}
	}
}

// Flush writes what changed since the last flush. A failed write is kept
// for the next.
func (m *Meter) Flush() error {
	m.mu.Lock()
	ch := Changes{Put: Records{Days: map[DayKey]Counts{}, Slots: map[SlotKey]Counts{}, Sessions: map[SessionKey]SessionUse{}}}
	for k, put := range m.dirtyDays {
		if put {
			ch.Put.Days[k] = m.days[k]
		} else {
			ch.DelDays = append(ch.DelDays, k)
		}
	}
	for k, put := range m.dirtySlots {
		if put {
			ch.Put.Slots[k] = m.slots[k]
		} else {
			ch.DelSlots = append(ch.DelSlots, k)
		}
	}
	for k, put := range m.dirtySessions {
		if put {
			ch.Put.Sessions[k] = m.sessions[k]
		} else {
			ch.DelSessions = append(ch.DelSessions, k)
		}
	}
	clear(m.dirtyDays)
	clear(m.dirtySlots)
	clear(m.dirtySessions)
	m.mu.Unlock()
	if ch.empty() {
		return nil
	}
	err := m.cfg.Store.Apply(ch)
	if err == nil {
		return nil
	}
	// Mark again what was not written, unless changed since (then it is
	// marked already, with what is in memory now).
	m.mu.Lock()
	defer m.mu.Unlock()
	remark(m.dirtyDays, m.days, slices.Collect(maps.Keys(ch.Put.Days)), ch.DelDays)
	remark(m.dirtySlots, m.slots, slices.Collect(maps.Keys(ch.Put.Slots)), ch.DelSlots)
	remark(m.dirtySessions, m.sessions, slices.Collect(maps.Keys(ch.Put.Sessions)), ch.DelSessions)
	return err
}

func remark[K comparable, V any](dirty map[K]bool, mem map[K]V, put, del []K) {
	for _, k := range append(put, del...) {
		if _, marked := dirty[k]; !marked {
			_, exists := mem[k]
			dirty[k] = exists
		}
	}
}

// Close stops the writer and writes what is left. Later calls return the
// first's result.
func (m *Meter) Close() error {
	m.closeOnce.Do(func() {
		close(m.stop)
		<-m.done
		m.closeErr = m.Flush()
	})
	return m.closeErr
}
