package rollback

import (
	"context"
	"encoding/json"
	"fmt"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/canary"
)

// revert is one "revert" version: by served version to's document again,
// which takes versions to+1 … by-1 out of service. Sessions assigned under
// one of those are moved by control.Rebind at their next turn.
type revert struct {
	to, by int
	doc    json.RawMessage
	policy *canary.Policy // parsed when first needed
}

// revertedTo returns the version a revert restored.
func revertedTo(v Version) (int, bool) {
	if v.Kind != "revert" {
		return 0, false
	}
	switch n := v.Details["to_version"].(type) {
	case int:
		return n, true
	case float64: // read back from the store
		return int(n), true
	}
	return 0, false
}

// loadReverts reads the reverts of the whole history, oldest first, so
// that a restart still moves the sessions a revert before it reverted.
func (h *History) loadReverts(ctx context.Context) error {
	var out []revert
	for before := 0; ; {
		page, err := h.cfg.Store.List(ctx, before, 500)
		if err != nil {
			return fmt.Errorf("read version history: %w", err)
		}
		for _, v := range page {
			if to, ok := revertedTo(v); ok {
				out = append(out, revert{to: to, by: v.N, doc: v.Canary})
			}
		}
		if len(page) < 500 {
			break
		}
		before = page[len(page)-1].N
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	h.reverts = out
	return nil
}

// RevertedBy tells whether version n was taken out of service by a revert,
// following reverts of reverts: it returns the last such revert's version
// and its policy (what a session assigned under n should now get), or 0
// and nil. A revert whose document no longer validates against the tree
// answers with the served policy.
func (h *History) RevertedBy(n int) (int, *canary.Policy) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var last *revert
	for i := range h.reverts { // oldest first, so one pass follows chains
		r := &h.reverts[i]
		if r.to < n && n < r.by {
			n, last = r.by, r
		}
	}
	if last == nil {
		return 0, nil
	}
	if last.policy == nil {
		p, err := canary.Parse(last.doc, h.cfg.Known())
		if err != nil {
			h.log.Warn("a revert's document no longer validates; sessions it reverted move to the served version", zap.Int("version", last.by), zap.Error(err))
			return last.by, h.policy
		}
		last.policy = p
	}
	return last.by, last.policy
}
