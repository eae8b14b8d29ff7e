package session_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/session/sessiontest"
)

func TestIDWithNode(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, node string
	}{
		{"single process", ""},
		{"pod name", "agentd-0"},
		{"host name with dots", "node-1.agentd-headless.prod.svc"},
		{"one character", "a"},
		{"63 characters", strings.Repeat("a", 63)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := session.NewID(now, tc.node)
			if !id.Valid() {
				t.Fatalf("NewID(now, %q) = %q; not Valid", tc.node, id)
			}
			if got := id.Node(); got != tc.node {
				t.Errorf("NewID(now, %q).Node() = %q; want %q", tc.node, got, tc.node)
			}
			if tc.node == "" && len(id) != len("sess_")+32 {
				t.Errorf("NewID(now, \"\") = %q; want today's form sess_<32 hex>", id)
			}
		})
	}
	// Ids sort by creation time whatever their node: a listing merged from
	// several replicas keeps the order of one replica's.
	var ids []session.ID
	for i, node := range []string{"zz", "", "a", "m-1", ""} {
		ids = append(ids, session.NewID(now.Add(time.Duration(i)*time.Millisecond), node))
	}
	if !slices.IsSorted(ids) {
		t.Errorf("ids made in time order = %v; not sorted", ids)
	}
}

func TestIDShapes(t *testing.T) {
	hex := strings.Repeat("0", 32)
	tests := []struct {
		id    string
		valid bool
		node  string
	}{
		{"sess_" + hex, true, ""},
		{"sess_" + hex + "_agentd-0", true, "agentd-0"},
		{"sess_" + hex + "_a.b-c", true, "a.b-c"},
		{"sess_" + hex + "_", false, ""},
		{"sess_" + hex + "_Agentd", false, ""},
		{"sess_" + hex + "_-a", false, ""},
		{"sess_" + hex + "_a-", false, ""},
		{"sess_" + hex + "_a/b", false, ""},
		{"sess_" + hex + "_a@evil.example", false, ""},
		{"sess_" + hex + "_a:8080", false, ""},
		{"sess_" + hex + "_a%2fb", false, ""},
		{"sess_" + hex + "_a_b", false, ""},
		{"sess_" + hex + "_" + strings.Repeat("a", 64), false, ""},
		{"sess_" + hex + "_a\n", false, ""},
		{"sess_" + hex[:31] + "_a", false, ""},
		{"sess_" + hex + "x", false, ""},
		{"../../etc", false, ""},
		{"", false, ""},
	}
	for _, tc := range tests {
		id := session.ID(tc.id)
		if got := id.Valid(); got != tc.valid {
			t.Errorf("ID(%q).Valid() = %v; want %v", tc.id, got, tc.valid)
		}
		if got := id.Node(); got != tc.node {
			t.Errorf("ID(%q).Node() = %q; want %q", tc.id, got, tc.node)
		}
	}
}

func TestValidNode(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"agentd-0", true},
		{"a", true},
		{"0", true},
		{"node-1.agentd-headless", true},
		{strings.Repeat("x", 63), true},
		{"", false},
		{strings.Repeat("x", 64), false},
		{"Agentd-0", false},
		{"-a", false},
		{"a-", false},
		{".a", false},
		{"a_b", false},
		{"a/b", false},
		{"a b", false},
		{"a:1", false},
		{"ägent", false},
	}
	for _, tc := range tests {
		err := session.ValidNode(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidNode(%q) = %v; want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, session.ErrInvalid) {
			t.Errorf("ValidNode(%q) = %v; want ErrInvalid", tc.name, err)
		}
	}
}

// TestPoolStampsNode: a pool with a node creates ids naming it, finds them
// again after a restart, and pages its listing with a cursor from another
// node (a fleet-wide listing's next_cursor) as with its own.
func TestPoolStampsNode(t *testing.T) {
	h := newHarness(t, session.Config{Node: "agentd-1"})
	var ids []session.ID
	for range 3 {
		ids = append(ids, h.create("acme", "alice").ID)
		h.clock.Add(2 * time.Millisecond)
	}
	for _, id := range ids {
		if id.Node() != "agentd-1" {
			t.Fatalf("id %q names node %q; want agentd-1", id, id.Node())
		}
	}
	h.restart()
	if _, err := h.pool.Get(t.Context(), "acme", ids[0]); err != nil {
		t.Fatalf("Get after restart: %v", err)
	}
	// A cursor made on another node between ids[1] and ids[2].
	foreign := session.NewID(h.clock.Now().Add(-3*time.Millisecond), "agentd-0")
	page, next, err := h.pool.List(t.Context(), "acme", session.ListQuery{Before: foreign, Limit: 10})
	if err != nil || len(page) != 2 || page[0].ID != ids[1] || page[1].ID != ids[0] || next != "" {
		t.Errorf("List(before %s) = %v next %q, %v; want ids[1], ids[0]", foreign, page, next, err)
	}
}

func TestPoolRefusesBadNode(t *testing.T) {
	for _, node := range []string{"Bad", "a/b", "-x"} {
		_, err := session.NewPool(nil, nil, (&sessiontest.Hooks{}).Pool(), session.Config{Dir: t.TempDir(), Node: node})
		if err == nil || !errors.Is(err, session.ErrInvalid) {
			t.Errorf("NewPool(Node %q) = %v; want ErrInvalid", node, err)
		}
	}
}
