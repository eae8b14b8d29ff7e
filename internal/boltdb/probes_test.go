package boltdb

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/probe"
)

func TestProbeStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agentd.db")
	db := open(t, path)
	ctx := context.Background()
	if runs, err := db.Probes().Runs(ctx, 5); err != nil || len(runs) != 0 {
		t.Fatalf("Runs on an empty store = %v, %v", runs, err)
	}
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for i := range 5 {
		r, err := db.Probes().Append(ctx, probe.Run{StartedAt: at.Add(time.Duration(i) * time.Hour), Results: []probe.Result{{Prompt: "p", Variant: "stable", Output: fmt.Sprint(i)}}}, 3)
		if err != nil || r.ID != i+1 {
			t.Fatalf("Append %d = id %d, %v; want id %d", i, r.ID, err, i+1)
		}
	}
	ids := func(db *DB, limit int) string {
		runs, err := db.Probes().Runs(ctx, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []int
		for _, r := range runs {
			out = append(out, r.ID)
		}
		return fmt.Sprint(out)
	}
	if got := ids(db, 10); got != "[5 4 3]" { // keep 3
		t.Errorf("Runs(10) = %s; want [5 4 3]", got)
	}
	if got := ids(db, 2); got != "[5 4]" {
		t.Errorf("Runs(2) = %s; want [5 4]", got)
	}
	db.Close()
	db = open(t, path)
	defer db.Close()
	runs, err := db.Probes().Runs(ctx, 1)
	if err != nil || len(runs) != 1 || runs[0].ID != 5 || runs[0].Results[0].Output != "4" || !runs[0].StartedAt.Equal(at.Add(4*time.Hour)) {
		t.Fatalf("after a reopen Runs(1) = %+v, %v", runs, err)
	}
	// Numbering goes on after the newest, never reusing a pruned id.
	if r, err := db.Probes().Append(ctx, probe.Run{}, 3); err != nil || r.ID != 6 {
		t.Errorf("Append after a reopen = id %d, %v; want 6", r.ID, err)
	}
}
