package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/agentd/agentd/internal/control"
)

type limits struct {
	Daily int `json:"daily"`
}

func parseLimits(data []byte) (limits, error) {
	l := limits{Daily: 100} // the default, when there is no file
	if data == nil {
		return l, nil
	}
	if err := json.Unmarshal(data, &l); err != nil {
		return limits{}, err
	}
	if l.Daily < 0 {
		return limits{}, errors.New("daily must be 0 or more")
	}
	return l, nil
}

func TestAddFile(t *testing.T) {
	tree := baseTree()
	tree[".agentao/limits.json"] = `{"daily": 5}`
	p, dir := newPlane(t, tree)
	f, err := control.AddFile(p, ".agentao/limits.json", parseLimits)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, ".agentao/limits.json")
	refresh := func() { p.Refresh(context.Background(), "test", true) }
	steps := []struct {
		name    string
		content string // "" removes the file
		want    int
		refused bool
	}{
		{"read at start", "", 5, false}, // not written: the start value
		{"an edit serves at the next poll", `{"daily": 7}`, 7, false},
		{"an invalid edit keeps the last good one", `{"daily": -1}`, 7, true},
		{"malformed JSON too", `{"daily":`, 7, true},
		{"fixed: served", `{"daily": 9}`, 9, false},
		{"removed: the defaults", "-", 100, false},
	}
	for _, st := range steps {
		switch st.content {
		case "":
		case "-":
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(path, []byte(st.content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		refresh()
		if got := f.Get().Daily; got != st.want {
			t.Errorf("%s: daily %d, want %d", st.name, got, st.want)
		}
		_, refused := p.Refused()["limits.json"]
		if refused != st.refused {
			t.Errorf("%s: refused %v, want %v (%v)", st.name, refused, st.refused, p.Refused())
		}
	}
	found := false
	for _, part := range p.Parts() {
		found = found || part == "limits.json"
	}
	if !found {
		t.Errorf("Parts() = %v, want limits.json in it", p.Parts())
	}
}

func TestAddFileInvalidAtStart(t *testing.T) {
	tree := baseTree()
	tree[".agentao/limits.json"] = `{"daily": -3}`
	p, _ := newPlane(t, tree)
	_, err := control.AddFile(p, ".agentao/limits.json", parseLimits)
	var ce *control.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *ConfigError", err)
	}
}
