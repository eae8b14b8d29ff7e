package session_test

import (
	"context"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/agent/agenttest"
	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/session/sessiontest"
)

// BenchmarkDurableTurns64 runs turns from 64 concurrent sessions, each turn
// saved to bbolt with fsync before it returns, against an in-process model
// that answers at once: it measures agentd's own ceiling of durable turns
// per second. Each worker starts a new session every 20 turns so histories
// stay conversation-sized.
func BenchmarkDurableTurns64(b *testing.B) {
	const workers = 64
	db, err := boltdb.Open(filepath.Join(b.TempDir(), "agentd.db"), boltdb.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	m := agenttest.NewModel()
	m.Default = func(agent.Request) agenttest.Step { return agenttest.Reply("a short answer") }
	pool, err := session.NewPool(db.Sessions(), agent.New(m, agent.Config{}), (&sessiontest.Hooks{
		AssignFn: func(string, string) (session.Assignment, error) { return session.Assignment{Model: "m"}, nil },
		ToolsFn:  func(*session.Session, string) ([]agent.Tool, io.Closer, error) { return nil, nil, nil },
	}).Pool(), session.Config{Dir: b.TempDir(), MaxLive: 10_000})
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	began := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var id session.ID
			for turn := 0; next.Add(1) <= int64(b.N); turn++ {
				if turn%20 == 0 {
					s, err := pool.Create(context.Background(), "bench", "u", "")
					if err != nil {
						b.Error(err)
						return
					}
					id = s.ID
				}
				if _, err := pool.Turn(context.Background(), "bench", id, session.TurnInput{Content: "hi"}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "turns/s")
}
