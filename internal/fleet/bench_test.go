package fleet

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/canary"
	"github.com/agentd/agentd/internal/rollback"
)

// BenchmarkFleetAdminWrite measures an admin write (PUT of the canary
// configuration, as rollback.History.Apply) until it is applied: on a single
// replica (stored and served), and in a fleet of three on loopback, taken
// by a follower and waited for until all three serve it. p50 and p99 of
// each are reported side by side.
//
//	go test -run '^$' -bench BenchmarkFleetAdminWrite -benchtime 200x ./internal/fleet
func BenchmarkFleetAdminWrite(b *testing.B) {
	docs := [2][]byte{[]byte(docBeta), []byte(`{"models":["gpt-4o","gpt-5"],"model":{"stable":"gpt-4o","variants":[{"name":"beta","value":"gpt-5","percent":10}]}}`)}
	b.Run("single", func(b *testing.B) {
		dir := b.TempDir()
		db, err := boltdb.Open(filepath.Join(dir, "agentd.db"), boltdb.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		p, _ := canary.Compile(canary.Document{}, known)
		h, err := rollback.Open(b.Context(), rollback.Config{Store: db.Versions(), Router: canary.NewRouter(p, 0),
			Known:    func() canary.Known { return known },
			ReadFile: func() ([]byte, error) { return os.ReadFile(filepath.Join(dir, "canary.json")) }})
		if err != nil {
			b.Fatal(err)
		}
		var took []time.Duration
		b.ResetTimer()
		for i := range b.N {
			_, cur := h.Current()
			began := time.Now()
			if _, err := h.Apply(b.Context(), docs[i%2], cur.N, "ops", "bench"); err != nil {
				b.Fatal(err)
			}
			took = append(took, time.Since(began))
		}
		report(b, took)
	})
	b.Run("fleet3", func(b *testing.B) {
		ms := newFleet(b, 3, func(c *Config) { c.Logger = zap.NewNop() })
		leader := leaderOf(b, ms)
		poll(b, ms)
		converged(b, ms, 1)
		f := followerOf(ms, leader)
		var took []time.Duration
		b.ResetTimer()
		for i := range b.N {
			_, cur := f.h.Current()
			began := time.Now()
			v, err := f.h.Apply(b.Context(), docs[i%2], cur.N, "ops", "bench")
			if err != nil {
				b.Fatal(err)
			}
			for _, m := range ms { // applied on all three
				for m.h.Applied().N < v.N {
					time.Sleep(50 * time.Microsecond)
				}
			}
			took = append(took, time.Since(began))
		}
		report(b, took)
	})
}

func report(b *testing.B, took []time.Duration) {
	b.StopTimer()
	slices.Sort(took)
	q := func(p float64) float64 { return float64(took[int(p*float64(len(took)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d writes: p50 %.2f ms, p99 %.2f ms", len(took), q(0.50), q(0.99))
}
