package boltdb

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

func TestAlertStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agentd.db")
	db := open(t, path)
	ctx := context.Background()
	s := db.Alerts()
	if got, err := s.Load(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Load() on a new store = %v, %v; want empty", got, err)
	}
	if err := s.Save(ctx, map[string][]byte{"a\x00x": []byte(`{"n":1}`), "b": []byte(`{"n":2}`)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, map[string][]byte{"a\x00x": []byte(`{"n":3}`)}, []string{"b", "never-stored"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open(t, path) // survives a reopen
	defer db.Close()
	got, err := db.Alerts().Load(ctx)
	if err != nil || len(got) != 1 || string(got["a\x00x"]) != `{"n":3}` {
		t.Fatalf("Load() after reopen = %q, %v; want only a\\x00x = {\"n\":3}", got, err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := db.Alerts().Save(canceled, map[string][]byte{"c": nil}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Save on a canceled context = %v; want context.Canceled", err)
	}
}
